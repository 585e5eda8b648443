'use strict';

/**
 * Everything through `live` (DESIGN.md, Releases). serverless-plugin-canary-deployments (0.8)
 * creates a `live` alias and a CodeDeploy deployment group for each function that has
 * `deploymentSettings`, and moves the callers it knows (API Gateway v1/v2 integrations and
 * authorizers, Lambda permissions, event source mappings, SNS, S3, ...) onto the alias; a function
 * without `deploymentSettings` silently stays on $LATEST, and so would a caller it does not know.
 * This plugin runs on the compiled template after it, before the template is written, and:
 *
 * 1. fails packaging when a function has no `live` alias;
 * 2. scopes the WebSocket API's invoke permissions to that API (osls leaves SourceArn out);
 * 3. adds the rollback alarms measured on the version being released (custom.newVersionAlarms),
 *    which need the version number osls only knows at package time, and makes each alias wait for
 *    them, so that they already watch the new version when CodeDeploy starts shifting;
 * 4. gives the version being published the asynchronous-invocation settings its `live` alias has
 *    (retries, maximum event age, on-failure destination), for a function that invokes its own
 *    version (fanout starting the shards of a big channel), which the alias's settings do not reach;
 * 5. fails packaging when any other resource still names a function or one of its versions
 *    instead of its alias (outputs are not callers and are not checked).
 *
 * CommonJS because package.json says "type": "module" and osls loads plugins with require().
 */

// The only resources that may name a function or its version rather than its alias: the alias
// itself, the version, the alarms that watch the version being released and the version's
// asynchronous-invocation settings (none of them calls the function).
const MAY_NAME_FUNCTION = new Set(['AWS::Lambda::Alias', 'AWS::Lambda::Version']);
const MAY_NAME_VERSION = new Set(['AWS::Lambda::Alias', 'AWS::CloudWatch::Alarm', 'AWS::Lambda::EventInvokeConfig']);

// CloudWatch takes at most 10 metrics per alarm, one of them the sum.
const MAX_METRICS_PER_ALARM = 9;

class LiveAliasPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.provider = serverless.getProvider('aws');
    this.hooks = {
      // The canary plugin works at after:aws:package:finalize:mergeCustomProviderResources.
      'before:aws:package:finalize:saveServiceState': () => this.finalizeTemplate(),
    };
  }

  error(message) {
    return new this.serverless.classes.Error(`live-alias-plugin: ${message}`);
  }

  finalizeTemplate() {
    const service = this.serverless.service;
    const resources = service.provider.compiledCloudFormationTemplate.Resources;
    const aliasName = service.custom && service.custom.deploymentSettings && service.custom.deploymentSettings.alias;
    if (!aliasName) throw this.error('custom.deploymentSettings.alias is not set');

    const functions = service.getAllFunctions().map((name) => this.liveFunction(resources, name, aliasName));
    this.scopeWebsocketPermissions(resources, functions);
    this.addNewVersionAlarms(resources, functions, aliasName, (service.custom && service.custom.newVersionAlarms) || {});
    this.addVersionEventInvokeConfigs(resources, functions, aliasName);
    this.assertNothingBypassesAliases(resources, functions);
  }

  liveFunction(resources, name, aliasName) {
    const functionId = this.provider.naming.getLambdaLogicalId(name);
    const ofFunction = (type) =>
      Object.keys(resources).filter((id) => resources[id].Type === type && refOf(resources[id].Properties.FunctionName) === functionId);
    const aliasIds = ofFunction('AWS::Lambda::Alias').filter((id) => resources[id].Properties.Name === aliasName);
    if (aliasIds.length !== 1) {
      throw this.error(`function "${name}" has no "${aliasName}" alias: give it deploymentSettings (serverless.yml)`);
    }
    const versionIds = ofFunction('AWS::Lambda::Version');
    if (versionIds.length !== 1) throw this.error(`function "${name}" has ${versionIds.length} versions in the template, expected 1`);
    return { name, functionName: this.serverless.service.getFunction(name).name, functionId, aliasId: aliasIds[0], versionId: versionIds[0] };
  }

  scopeWebsocketPermissions(resources, functions) {
    const apiId = this.provider.naming.getWebsocketsApiLogicalId();
    if (!resources[apiId]) return;
    for (const { name } of functions) {
      const permission = resources[this.provider.naming.getLambdaWebsocketsPermissionLogicalId(name)];
      if (!permission || permission.Properties.SourceArn) continue;
      permission.Properties.SourceArn = {
        'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':', { Ref: apiId }, '/*']],
      };
    }
  }

  addNewVersionAlarms(resources, functions, aliasName, alarms) {
    const stackName = this.provider.naming.getStackName();
    for (const [alarmId, spec] of Object.entries(alarms)) {
      if (resources[alarmId]) throw this.error(`${alarmId} is defined twice`);
      const except = spec.except || [];
      for (const name of except) {
        if (!functions.some((f) => f.name === name)) throw this.error(`custom.newVersionAlarms.${alarmId}.except: unknown function "${name}"`);
      }
      const names = (spec.functions === 'all' ? functions.map((f) => f.name) : spec.functions || []).filter((name) => !except.includes(name));
      const watched = names.map((name) => {
        const fn = functions.find((f) => f.name === name);
        if (!fn) throw this.error(`custom.newVersionAlarms.${alarmId}: unknown function "${name}"`);
        return fn;
      });
      if (watched.length === 0 || watched.length > MAX_METRICS_PER_ALARM) {
        throw this.error(`custom.newVersionAlarms.${alarmId} must watch 1 to ${MAX_METRICS_PER_ALARM} functions`);
      }
      if (!spec.metric || typeof spec.threshold !== 'number') throw this.error(`custom.newVersionAlarms.${alarmId} needs metric and threshold`);

      const newVersion = (fn) => ({ 'Fn::GetAtt': [fn.versionId, 'Version'] });
      const namespace = spec.namespace || 'AWS/Lambda';
      // Lambda reports invocations through an alias per executed version: these dimensions see
      // the new version's share of the traffic only, never the old version's. The application's
      // own metrics (functions/lib/metrics.ts) carry the version the same way.
      const metric = (fn) => ({
        Namespace: namespace,
        MetricName: spec.metric,
        Dimensions:
          namespace === 'AWS/Lambda'
            ? [
                { Name: 'FunctionName', Value: fn.functionName },
                { Name: 'Resource', Value: `${fn.functionName}:${aliasName}` },
                { Name: 'ExecutedVersion', Value: newVersion(fn) },
              ]
            : [
                { Name: 'service', Value: this.serverless.service.service },
                { Name: 'FunctionName', Value: fn.functionName },
                { Name: 'FunctionVersion', Value: newVersion(fn) },
              ],
      });
      const measure =
        watched.length === 1
          ? { ...metric(watched[0]), Statistic: 'Sum', Period: 60 }
          : {
              Metrics: [
                ...watched.map((fn) => ({ Id: `fn_${fn.name.replace(/\W/g, '_')}`, MetricStat: { Metric: metric(fn), Period: 60, Stat: 'Sum' }, ReturnData: false })),
                // SUM over the series skips functions without data (no traffic is not a failure).
                { Id: 'total', Expression: 'SUM(METRICS())', Label: `${spec.metric} of the new versions`, ReturnData: true },
              ],
            };
      resources[alarmId] = {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmName: `${stackName}-${kebab(alarmId.replace(/Alarm$/, ''))}-new-version`,
          AlarmDescription: spec.description || `${spec.metric} of the version being released`,
          ...measure,
          EvaluationPeriods: 1,
          Threshold: spec.threshold,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
        },
      };
      for (const fn of watched) dependOn(resources[fn.aliasId], alarmId);
    }
  }

  /**
   * An asynchronous invocation takes the settings (retries, maximum event age, destinations) of the
   * qualifier it was invoked with, and only those: the ones on `live` (infra/fanout-failures.yml)
   * do not reach an invocation of a version. fanout invokes its own version for the shards of a big
   * channel (delivery/shardInvoker.ts), so without settings on the version a shard that failed
   * after Lambda's retries was dropped, the message lost for that shard's subscribers. Here every
   * event invoke config on a function's `live` alias is copied onto the version being published:
   * the settings stay written once, on the alias, and cannot drift apart.
   *
   * The copy's logical id follows the version's (osls names the version after a hash of its code
   * and configuration, so both change with every deploy that publishes a new version). Qualifier is
   * create-only: CloudFormation would delete a config whose logical id disappears from the template,
   * or replace one whose qualifier changes, once the update is done. Yet version N's shards may
   * still be running or waiting in Lambda's queue for their retries (up to the maximum event age)
   * after N+1 is released, and a config deleted under them leaves them with Lambda's defaults, no
   * destination. So the copy is retained like the version itself (osls retains versions): each
   * published version keeps its settings for as long as it exists, and deleting the function (the
   * stack) removes them with it.
   *
   * The alias waits for the copy, so that no traffic reaches a version before its settings do.
   */
  addVersionEventInvokeConfigs(resources, functions, aliasName) {
    for (const fn of functions) {
      const onAlias = Object.entries(resources).filter(
        ([, resource]) =>
          resource.Type === 'AWS::Lambda::EventInvokeConfig' &&
          resource.Properties.Qualifier === aliasName &&
          (resource.Properties.FunctionName === fn.functionName || refOf(resource.Properties.FunctionName) === fn.functionId),
      );
      if (onAlias.length > 1) throw this.error(`function "${fn.name}" has ${onAlias.length} event invoke configs on "${aliasName}", expected at most 1`);
      if (onAlias.length === 0) continue;
      const [[aliasConfigId, aliasConfig]] = onAlias;
      const versionConfigId = `${fn.versionId}EventInvokeConfig`;
      if (resources[versionConfigId]) throw this.error(`${versionConfigId} is defined twice`);
      resources[versionConfigId] = {
        Type: 'AWS::Lambda::EventInvokeConfig',
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Metadata: { Description: `${aliasConfigId} (the settings of ${fn.functionName}:${aliasName}) on the version this deploy publishes` },
        Properties: { ...structuredClone(aliasConfig.Properties), Qualifier: { 'Fn::GetAtt': [fn.versionId, 'Version'] } },
      };
      dependOn(resources[fn.aliasId], versionConfigId);
    }
  }

  assertNothingBypassesAliases(resources, functions) {
    const problems = [];
    for (const [id, resource] of Object.entries(resources)) {
      const named = referencedIds(resource);
      for (const fn of functions) {
        if (named.has(fn.functionId) && !MAY_NAME_FUNCTION.has(resource.Type)) problems.push(`${id} (${resource.Type}) names ${fn.functionId}`);
        if (named.has(fn.versionId) && !MAY_NAME_VERSION.has(resource.Type)) problems.push(`${id} (${resource.Type}) names ${fn.versionId}`);
      }
    }
    if (problems.length > 0) {
      throw this.error(`these resources reach a function outside its alias:\n  ${problems.join('\n  ')}`);
    }
  }
}

const isRef = (node) => node !== null && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length === 1 && typeof node.Ref === 'string';
const refOf = (node) => (isRef(node) ? node.Ref : undefined);
const kebab = (id) => id.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
/** Adds `id` to a resource's DependsOn, once. */
const dependOn = (resource, id) => {
  resource.DependsOn = [...new Set([...[].concat(resource.DependsOn || []), id])];
};

/**
 * Logical ids a resource's values refer to: Ref, Fn::GetAtt and ${Id} / ${Id.Attr} in Fn::Sub.
 * Not DependsOn: ordering is not a call (osls makes WebSocket permissions depend on the function).
 */
function referencedIds(resource) {
  const ids = new Set();
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    if (typeof node.Ref === 'string') ids.add(node.Ref);
    if (Array.isArray(node['Fn::GetAtt'])) ids.add(node['Fn::GetAtt'][0]);
    if (typeof node['Fn::GetAtt'] === 'string') ids.add(node['Fn::GetAtt'].split('.')[0]);
    const sub = node['Fn::Sub'];
    const subText = typeof sub === 'string' ? sub : Array.isArray(sub) ? sub[0] : undefined;
    for (const match of (subText || '').matchAll(/\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}/g)) ids.add(match[1]);
    Object.values(node).forEach(visit);
  };
  visit(resource.Properties);
  visit(resource.UpdatePolicy);
  return ids;
}

module.exports = LiveAliasPlugin;
