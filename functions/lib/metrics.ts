import { Metrics } from '@aws-lambda-powertools/metrics';

/** CloudWatch metrics in the embedded metric format (written to the log, no API call). */
export const metrics = new Metrics({ namespace: 'cablecar', serviceName: 'cablecar' });
