import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { runningFunction } from './config.js';

/** CloudWatch metrics in the embedded metric format (written to the log, no API call). */
export const metrics = new Metrics({ namespace: 'cablecar', serviceName: 'cablecar' });

/**
 * One `ServerErrors` count for this function and version (dimensions service, FunctionName,
 * FunctionVersion). API Gateway's own 5xx metric cannot tell the two versions of a release apart;
 * this one can, and the rollback alarm of serverless.yml (custom.newVersionAlarms) watches it.
 */
export function countServerError(): void {
  const { AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION } = runningFunction();
  const metric = metrics.singleMetric();
  metric.addDimension('FunctionName', AWS_LAMBDA_FUNCTION_NAME ?? 'unknown');
  metric.addDimension('FunctionVersion', AWS_LAMBDA_FUNCTION_VERSION ?? 'unknown');
  metric.addMetric('ServerErrors', MetricUnit.Count, 1);
}
