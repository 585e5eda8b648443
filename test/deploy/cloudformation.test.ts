import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_KEYS } from '../../infra/release/stageResources.js';
import { zipEntries } from '../support/zipEntries.js';

/**
 * What `serverless package --stage prod` generates for AWS, checked without credentials: every
 * caller reaches the functions through their `live` alias, releases shift that alias with alarms
 * that roll back, and every role is scoped to what its holder does (DESIGN.md, Releases).
 */

// CloudFormation is untyped JSON, read by path.
type Json = any;
interface Resource {
  Type: string;
  Properties: Json;
  DependsOn?: string | string[];
  UpdatePolicy?: Json;
}
interface Template {
  Resources: Record<string, Resource>;
  Outputs: Record<string, { Value: Json }>;
}

const ROOT = join(import.meta.dirname, '..', '..');
const STAGE = 'prod';
// The release command's list of a stage's functions: the template must hold exactly these.
const FUNCTIONS: readonly string[] = FUNCTION_KEYS;

// What a stage that keeps its PostgreSQL settings in Secrets Manager passes (README, "Secrets").
const DATABASE_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:cablecar-prod-db-AbCdEf';
const DATABASE_HOST = 'cablecar-prod.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com';
// The functions that use PostgreSQL (serverless.yml custom.databaseFunctions), and the network
// they are placed in (docs/deploy.md).
const DATABASE_FUNCTIONS = ['subscribe', 'publish', 'history', 'sweep', 'retention'];
const SUBNETS = ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'];
const SECURITY_GROUPS = ['sg-0123456789abcdef0'];
// What Lambda needs to manage a VPC function's network interfaces; the describes take no resource.
const ENI_ACTIONS = ['ec2:AssignPrivateIpAddresses', 'ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:UnassignPrivateIpAddresses'];
const ONLY_ON_EVERY_RESOURCE = ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'];
const STAGE_PARAMS = {
  databaseSecretArn: DATABASE_SECRET_ARN,
  databaseHost: DATABASE_HOST,
  vpcSubnetIds: SUBNETS.join(', '),
  vpcSecurityGroupIds: SECURITY_GROUPS.join(','),
};
// In the deploying shell, as it was once the way to configure a stage: it must reach no function.
const LOCAL_DATABASE_URL = 'postgres://cablecar:pa55word@db.invalid:5432/cablecar';

async function packageStage(packageDir: string, params: Record<string, string>): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: LOCAL_DATABASE_URL,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    // Packaging must not need an AWS account: nothing to find credentials with.
    AWS_SHARED_CREDENTIALS_FILE: join(packageDir, 'no-credentials'),
    AWS_CONFIG_FILE: join(packageDir, 'no-config'),
  };
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'WEBSOCKET_API_ENDPOINT', 'JWT_SECRET_ARN', 'CABLECAR_JWT_SECRET']) delete env[name];
  const cli = join(ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js');
  const paramArgs = Object.entries(params).flatMap(([name, value]) => ['--param', `${name}=${value}`]);
  const child = spawn(process.execPath, [cli, 'package', '--stage', STAGE, '--package', packageDir, ...paramArgs], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`serverless package exited with ${code}:\n${output}`);
}

/** Each function's package: its files and contents (zipEntries). */
type Packages = Map<string, Map<string, Buffer>>;

/** The generated template of the prod stage, packaged with these stage parameters, and the packages. */
async function packagedTemplate(params: Record<string, string>, packages?: Packages): Promise<Template> {
  const packageDir = await mkdtemp(join(tmpdir(), 'cablecar-package-'));
  try {
    try {
      await packageStage(packageDir, params);
    } catch {
      // The .esbuild folder is shared with anything else building at the same moment; a real
      // failure fails again.
      await packageStage(packageDir, params);
    }
    for (const file of packages ? await readdir(packageDir) : []) {
      if (file.endsWith('.zip')) packages!.set(file.replace(/\.zip$/, ''), await zipEntries(join(packageDir, file)));
    }
    return JSON.parse(await readFile(join(packageDir, 'cloudformation-template-update-stack.json'), 'utf8'));
  } finally {
    await rm(packageDir, { recursive: true, force: true });
  }
}

let template: Template;
const packages: Packages = new Map();
/** The same stage packaged without any of the optional parameters. */
let bareTemplate: Template;
let resources: Record<string, Resource>;

const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);

/** Every logical id a value refers to (Ref, Fn::GetAtt, ${Id} in Fn::Sub). */
function referencedIds(value: Json, ids = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((item) => referencedIds(item, ids));
  else if (value !== null && typeof value === 'object') {
    if (typeof value.Ref === 'string') ids.add(value.Ref);
    if (Array.isArray(value['Fn::GetAtt'])) ids.add(value['Fn::GetAtt'][0]);
    const sub = value['Fn::Sub'];
    const text: unknown = Array.isArray(sub) ? sub[0] : sub;
    if (typeof text === 'string') for (const match of text.matchAll(/\$\{([A-Za-z0-9]+)[.}]/g)) ids.add(match[1]!);
    Object.values(value).forEach((item) => referencedIds(item, ids));
  }
  return ids;
}

/** Every IAM statement anywhere in the template (roles, policies, bucket policies). */
function statements(): Array<{ owner: string; statement: Json }> {
  const found: Array<{ owner: string; statement: Json }> = [];
  const visit = (owner: string, value: Json) => {
    if (Array.isArray(value)) value.forEach((item) => visit(owner, item));
    else if (value !== null && typeof value === 'object') {
      // A statement under Fn::If counts as granted (either branch may hold); AWS::NoValue grants nothing.
      const unwrap = (statement: Json): Json[] =>
        statement?.['Fn::If'] ? statement['Fn::If'].slice(1).flatMap(unwrap) : statement?.Ref === 'AWS::NoValue' ? [] : [statement];
      if (Array.isArray(value.Statement)) for (const statement of value.Statement.flatMap(unwrap)) found.push({ owner, statement });
      Object.values(value).forEach((item) => visit(owner, item));
    }
  };
  for (const [id, resource] of Object.entries(resources)) visit(id, resource.Properties);
  return found;
}

const list = (value: Json): Json[] => (Array.isArray(value) ? value : [value]);

/** sls function name → its Lambda function, version and `live` alias logical ids. */
function liveFunction(name: string) {
  const [functionId] = ofType('AWS::Lambda::Function').find(([, fn]) => fn.Properties.FunctionName === `cablecar-${STAGE}-${name}`) ?? [];
  const versions = ofType('AWS::Lambda::Version').filter(([, version]) => version.Properties.FunctionName?.Ref === functionId);
  const aliases = ofType('AWS::Lambda::Alias').filter(([, alias]) => alias.Properties.FunctionName?.Ref === functionId);
  return { functionId, versionIds: versions.map(([id]) => id), aliases };
}

beforeAll(async () => {
  // One after the other: both use the project's .esbuild folder.
  template = await packagedTemplate(STAGE_PARAMS, packages);
  bareTemplate = await packagedTemplate({});
  resources = template.Resources;
});

describe('functions behind the live alias', () => {
  it('has exactly the functions of cablecar (the release command\'s FUNCTION_KEYS)', () => {
    const names = ofType('AWS::Lambda::Function').map(([, fn]) => String(fn.Properties.FunctionName).replace(`cablecar-${STAGE}-`, ''));
    expect(names.sort()).toEqual([...FUNCTIONS].sort());
  });

  it.each(FUNCTIONS)('publishes %s as a version behind a "live" alias that CodeDeploy shifts', (name) => {
    const { functionId, versionIds, aliases } = liveFunction(name);
    expect(functionId).toBeDefined();
    expect(versionIds).toHaveLength(1);
    expect(aliases).toHaveLength(1);
    const [, alias] = aliases[0]!;
    expect(alias.Properties.Name).toBe('live');
    expect(alias.Properties.FunctionVersion).toEqual({ 'Fn::GetAtt': [versionIds[0], 'Version'] });
    const deploymentGroup = alias.UpdatePolicy?.CodeDeployLambdaAliasUpdate?.DeploymentGroupName?.Ref;
    expect(resources[deploymentGroup]?.Type).toBe('AWS::CodeDeploy::DeploymentGroup');
  });

  it('points every API Gateway integration at an alias, never at a function or a version', () => {
    const aliasIds = new Set(ofType('AWS::Lambda::Alias').map(([id]) => id));
    const integrations = ofType('AWS::ApiGatewayV2::Integration');
    // five WebSocket routes, two HTTP routes
    expect(integrations).toHaveLength(7);
    for (const [id, integration] of integrations) {
      const targets = [...referencedIds(integration.Properties.IntegrationUri)].filter((ref) => resources[ref]);
      expect(targets, id).toHaveLength(1);
      expect(aliasIds.has(targets[0]!), `${id} → ${targets[0]}`).toBe(true);
    }
  });

  it('grants every invoke permission on an alias only, to its own API or schedule', () => {
    const permissions = ofType('AWS::Lambda::Permission');
    // seven routes, the $connect authorizer, and two schedules (sweep, retention)
    expect(permissions).toHaveLength(10);
    const rules = new Set(ofType('AWS::Events::Rule').map(([id]) => id));
    for (const [id, permission] of permissions) {
      const target = permission.Properties.FunctionName?.Ref;
      expect(resources[target]?.Type, `${id} → ${JSON.stringify(permission.Properties.FunctionName)}`).toBe('AWS::Lambda::Alias');
      if (permission.Properties.Principal === 'events.amazonaws.com') {
        const [rule] = [...referencedIds(permission.Properties.SourceArn)].filter((ref) => rules.has(ref));
        expect(rule, id).toBeDefined();
        continue;
      }
      const api = id.endsWith('Websockets') ? 'WebsocketsApi' : 'HttpApi';
      expect(referencedIds(permission.Properties.SourceArn), id).toContain(api);
    }
  });

  it('lets PostgreSQL invoke the fanout alias only, and says which ARN that is', () => {
    const { aliases } = liveFunction('fanout');
    const fanoutAlias = aliases[0]![0];
    expect(template.Outputs.FanoutLiveAliasArn?.Value).toEqual({ Ref: fanoutAlias });
    const invokes = statements().filter(({ statement }) => list(statement.Action).includes('lambda:InvokeFunction'));
    // PostgreSQL, the sweep that dispatches again as PostgreSQL does, and fanout starting its shards.
    expect(invokes.map(({ owner }) => owner).sort()).toEqual(['FanoutRole', 'RdsInvokeFanoutRole', 'SweepRole']);
    for (const owner of ['RdsInvokeFanoutRole', 'SweepRole']) {
      expect(list(invokes.find((invoke) => invoke.owner === owner)!.statement.Resource), owner).toEqual([{ Ref: fanoutAlias }]);
    }
  });

  it('lets fanout start shards on its own versions only (never another function, never by reference)', () => {
    const invokes = statements().filter(({ owner, statement }) => owner === 'FanoutRole' && list(statement.Action).includes('lambda:InvokeFunction'));
    expect(invokes).toHaveLength(1);
    expect(list(invokes[0]!.statement.Action)).toEqual(['lambda:InvokeFunction']);
    expect(list(invokes[0]!.statement.Resource)).toEqual([
      { 'Fn::Sub': `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:cablecar-${STAGE}-fanout:*` },
    ]);
    expect(resources.RdsInvokeFanoutRole!.Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service).toBe('rds.amazonaws.com');
  });
});

describe('releases', () => {
  it('has one deployment group per function, shifting linearly in prod and rolling back on alarms', () => {
    const groups = ofType('AWS::CodeDeploy::DeploymentGroup');
    expect(groups).toHaveLength(FUNCTIONS.length);
    for (const [id, group] of groups) {
      const { AlarmConfiguration, AutoRollbackConfiguration, DeploymentConfigName } = group.Properties;
      expect(AlarmConfiguration?.Enabled, id).toBe(true);
      expect(AlarmConfiguration.Alarms.length, id).toBeGreaterThanOrEqual(3);
      for (const alarm of AlarmConfiguration.Alarms) expect(resources[alarm.Name?.Ref]?.Type, id).toBe('AWS::CloudWatch::Alarm');
      expect(AutoRollbackConfiguration.Enabled).toBe(true);
      expect(AutoRollbackConfiguration.Events).toContain('DEPLOYMENT_STOP_ON_ALARM');
      expect(DeploymentConfigName).toEqual({ 'Fn::Sub': ['CodeDeployDefault.Lambda${ConfigName}', { ConfigName: 'Linear10PercentEvery1Minute' }] });
      expect(group.Properties.ServiceRoleArn).toEqual({ 'Fn::GetAtt': ['CodeDeployRole', 'Arn'] });
    }
  });

  it('watches fanout errors, server errors of the HTTP and WebSocket routes and throttles, each on the version being released', () => {
    const [[, group]] = ofType('AWS::CodeDeploy::DeploymentGroup') as [[string, Resource]];
    const alarms = new Map<string, Json>(group.Properties.AlarmConfiguration.Alarms.map((alarm: Json) => [alarm.Name.Ref, resources[alarm.Name.Ref]!.Properties]));
    const newVersion = (name: string) => ({ 'Fn::GetAtt': [liveFunction(name).versionIds[0], 'Version'] });
    const dimensions = (metric: Json) => Object.fromEntries(metric.Dimensions.map((d: Json) => [d.Name, d.Value]));

    const fanoutErrors = alarms.get('FanoutErrorsAlarm');
    expect(fanoutErrors.MetricName).toBe('Errors');
    expect(dimensions(fanoutErrors)).toEqual({ FunctionName: `cablecar-${STAGE}-fanout`, Resource: `cablecar-${STAGE}-fanout:live`, ExecutedVersion: newVersion('fanout') });

    // Counted by functions/lib/metrics.ts with exactly these dimensions.
    const serverErrors = alarms.get('ServerErrorsAlarm');
    const httpWatched = serverErrors.Metrics.filter((query: Json) => query.MetricStat).map((query: Json) => query.MetricStat.Metric);
    const serverErrorFunctions = ['publish', 'history', 'connect', 'subscribe', 'unsubscribe', 'default'];
    expect(httpWatched.map((metric: Json) => [metric.Namespace, metric.MetricName])).toEqual(serverErrorFunctions.map(() => ['cablecar', 'ServerErrors']));
    expect(httpWatched.map(dimensions)).toEqual(
      serverErrorFunctions.map((name) => ({ service: 'cablecar', FunctionName: `cablecar-${STAGE}-${name}`, FunctionVersion: newVersion(name) })),
    );

    const throttles = alarms.get('ThrottlesAlarm');
    const watched = throttles.Metrics.filter((query: Json) => query.MetricStat);
    // Every function that serves clients but fanout, whose throttling is its reserved concurrency
    // doing its job; not the scheduled sweep and retention either (a throttled run is the next run).
    const throttled = FUNCTIONS.filter((name) => !['fanout', 'sweep', 'retention'].includes(name));
    expect(watched.map((query: Json) => query.MetricStat.Metric.MetricName)).toEqual(throttled.map(() => 'Throttles'));
    const byId = (versions: Json[]) => versions.map((version) => version['Fn::GetAtt'][0]).sort();
    expect(byId(watched.map((query: Json) => dimensions(query.MetricStat.Metric).ExecutedVersion))).toEqual(byId(throttled.map(newVersion)));
    expect(throttles.Metrics.filter((query: Json) => query.ReturnData)).toHaveLength(1);

    // The alarms must already follow the new version when CodeDeploy starts shifting.
    const { aliases } = liveFunction('fanout');
    expect(aliases[0]![1].DependsOn).toEqual(expect.arrayContaining(['FanoutErrorsAlarm']));
    expect(liveFunction('publish').aliases[0]![1].DependsOn).toEqual(expect.arrayContaining(['ServerErrorsAlarm', 'ThrottlesAlarm']));
  });

  it('keeps DynamoDB items expiring (TTL on the table)', () => {
    const [[, table]] = ofType('AWS::DynamoDB::Table') as [[string, Resource]];
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
  });
});

describe('nothing dispatched is lost', () => {
  it("configures fanout:live's asynchronous invocations: 2 retries, 1 h maximum age, failures to an SQS queue", () => {
    const configs = ofType('AWS::Lambda::EventInvokeConfig').filter(([, config]) => config.Properties.Qualifier === 'live');
    expect(configs).toHaveLength(1);
    const [, config] = configs[0]!;
    expect(config.Properties).toEqual({
      FunctionName: `cablecar-${STAGE}-fanout`,
      Qualifier: 'live',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['FanoutFailuresQueue', 'Arn'] } } },
    });
    expect(list(config.DependsOn)).toContain(liveFunction('fanout').aliases[0]![0]);
    expect(resources.FanoutFailuresQueue).toMatchObject({ Type: 'AWS::SQS::Queue', Properties: { QueueName: `cablecar-${STAGE}-fanout-failures` } });
  });

  it('gives the fanout version it publishes the same settings, so a shard (invoked on that version) that fails lands in the queue too', () => {
    const configs = ofType('AWS::Lambda::EventInvokeConfig');
    const [versionId] = liveFunction('fanout').versionIds as [string];
    const onVersion = configs.filter(([, config]) => config.Properties.Qualifier?.['Fn::GetAtt']?.[0] === versionId);
    expect(onVersion).toHaveLength(1);
    const [versionConfigId, versionConfig] = onVersion[0]!;
    const [, liveConfig] = configs.find(([, config]) => config.Properties.Qualifier === 'live')!;
    // The same settings as live's (infra/fanout-failures.yml), on the version: nothing else differs.
    expect(versionConfig.Properties).toEqual({ ...liveConfig.Properties, Qualifier: { 'Fn::GetAtt': [versionId, 'Version'] } });
    expect(versionConfig.Properties.DestinationConfig.OnFailure.Destination).toEqual({ 'Fn::GetAtt': ['FanoutFailuresQueue', 'Arn'] });
    // Kept when the next deploy publishes another version: the shards of this one may still be
    // retried after it is released (and its logical id, like the version's, changes per deploy).
    expect(versionConfig).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(versionConfigId).toContain(versionId);
    // No traffic reaches the version before its settings exist.
    expect(list(liveFunction('fanout').aliases[0]![1].DependsOn)).toContain(versionConfigId);
    // Only fanout invokes its own versions, and only it has settings on live to copy.
    expect(configs).toHaveLength(2);
  });

  it('alarms as soon as one failed fan-out waits in the queue', () => {
    const alarm = resources.FanoutFailuresAlarm!;
    expect(alarm.Type).toBe('AWS::CloudWatch::Alarm');
    expect(alarm.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['FanoutFailuresQueue', 'QueueName'] } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it.each([
    ['sweep', 'rate(5 minutes)'],
    ['retention', 'rate(1 hour)'],
  ])('runs %s on an EventBridge schedule (%s), through its live alias', (name, rate) => {
    const aliasId = liveFunction(name).aliases[0]![0];
    const rules = ofType('AWS::Events::Rule').filter(([, rule]) => rule.Properties.Targets.some((t: Json) => referencedIds(t.Arn).has(aliasId)));
    expect(rules).toHaveLength(1);
    expect(rules[0]![1].Properties.ScheduleExpression).toBe(rate);
    expect(rules[0]![1].Properties.State ?? 'ENABLED').toBe('ENABLED');
  });

  it('gives retention its settings from the stage parameters, and sweep the fanout function it dispatches to', () => {
    const env = (name: string) => resources[liveFunction(name).functionId!]!.Properties.Environment.Variables;
    expect(env('retention')).toMatchObject({ MESSAGE_RETENTION_SECONDS: '2592000', MESSAGE_RETENTION_COUNT: '100000' });
    expect(env('sweep')).toMatchObject({ FANOUT_FUNCTION_NAME: `cablecar-${STAGE}-fanout` });
  });
});

describe('least privilege', () => {
  it('grants no wildcard action and no action on every resource', () => {
    // A Deny on s3:* (the deployment bucket refusing plain HTTP) takes nothing away from anyone.
    const allows = statements().filter(({ statement }) => statement.Effect === 'Allow');
    expect(allows.length).toBeGreaterThan(0);
    for (const { owner, statement } of allows) {
      for (const action of list(statement.Action)) expect(String(action), owner).not.toContain('*');
      // except the two describes of the VPC functions, which AWS allows on every resource only
      if (statement.Principal === undefined && list(statement.Action).some((action) => !ONLY_ON_EVERY_RESOURCE.includes(action))) {
        expect(list(statement.Resource), owner).not.toContain('*');
      }
    }
  });

  it('attaches no AWSLambda_FullAccess (or any managed policy) and keeps the canary plugin role out', () => {
    expect(JSON.stringify(template)).not.toContain('AWSLambda_FullAccess');
    for (const [id, role] of ofType('AWS::IAM::Role')) expect(role.Properties.ManagedPolicyArns, id).toBeUndefined();
    expect(resources.CodeDeployServiceRole).toBeUndefined();
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
  });

  it('lets CodeDeploy read and move the live aliases and read the alarms, nothing else', () => {
    const actions = statements()
      .filter(({ owner, statement }) => owner === 'CodeDeployRole' && statement.Effect === 'Allow' && !statement.Principal)
      .flatMap(({ statement }) => list(statement.Action));
    expect(actions.sort()).toEqual(['cloudwatch:DescribeAlarms', 'lambda:GetAlias', 'lambda:GetProvisionedConcurrencyConfig', 'lambda:UpdateAlias']);
  });

  const expected: Record<string, string[]> = {
    authorize: ['secretsmanager:GetSecretValue'],
    connect: ['dynamodb:PutItem'],
    disconnect: ['dynamodb:DeleteItem', 'dynamodb:Query'],
    subscribe: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', ...ENI_ACTIONS, 'execute-api:ManageConnections', 'secretsmanager:GetSecretValue'],
    unsubscribe: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    default: [],
    // in the VPC, with the network params: their network interfaces too
    publish: [...ENI_ACTIONS, 'secretsmanager:GetSecretValue'],
    history: [...ENI_ACTIONS, 'secretsmanager:GetSecretValue'],
    fanout: ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Query', 'execute-api:ManageConnections', 'lambda:InvokeFunction', 'sqs:SendMessage'],
    sweep: ['dynamodb:BatchGetItem', ...ENI_ACTIONS, 'lambda:InvokeFunction', 'secretsmanager:GetSecretValue'],
    retention: [...ENI_ACTIONS, 'secretsmanager:GetSecretValue'],
  };

  it.each(FUNCTIONS)('gives %s its own role with only what it uses', (name) => {
    const { functionId } = liveFunction(name);
    const roleId = resources[functionId!]!.Properties.Role['Fn::GetAtt'][0];
    const others = FUNCTIONS.filter((other) => other !== name).map((other) => resources[liveFunction(other).functionId!]!.Properties.Role['Fn::GetAtt'][0]);
    expect(others).not.toContain(roleId);

    const granted = statements().filter(({ owner, statement }) => owner === roleId && statement.Effect === 'Allow' && !statement.Principal);
    const logs = granted.filter(({ statement }) => list(statement.Action).some((action: string) => action.startsWith('logs:')));
    expect(logs.flatMap(({ statement }) => list(statement.Action)).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    const logGroup = `${name[0]!.toUpperCase()}${name.slice(1)}LogGroup`;
    for (const { statement } of logs) expect(list(statement.Resource)).toEqual([{ 'Fn::GetAtt': [logGroup, 'Arn'] }]);

    const rest = granted.filter((entry) => !logs.includes(entry));
    expect([...new Set(rest.flatMap(({ statement }) => list(statement.Action)))].sort()).toEqual(expected[name]);
    for (const { statement } of rest) {
      const targets = list(statement.Resource).flatMap((resource) => [...referencedIds(resource)]);
      const service = String(list(statement.Action)[0]).split(':')[0]!;
      // fanout's own versions are named, not referenced (see "lets fanout start shards ..."); the
      // sweep's is fanout's live alias (see "lets PostgreSQL invoke the fanout alias only ...")
      if (service === 'lambda') continue;
      if (service === 'ec2') expect(networkInterfaceResources(statement), JSON.stringify(statement)).toBe(true);
      else if (service === 'secretsmanager') {
        // The token secret (a reference to it) or the database secret (the ARN the stage names), one per statement.
        expect(list(statement.Resource)).toHaveLength(1);
        expect(list(statement.Resource)[0] === DATABASE_SECRET_ARN || targets.includes('JwtSecret')).toBe(true);
      } else expect(targets).toContain({ dynamodb: 'ConnectionsTable', sqs: 'FanoutFailuresQueue' }[service] ?? 'WebsocketsApi');
    }
  });
});

describe('tokens', () => {
  const environment = (name: string): Record<string, Json> => resources[liveFunction(name).functionId!]!.Properties.Environment?.Variables ?? {};

  it('puts the authorize function, a REQUEST authorizer reading ?token=, on $connect and on no other route', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route');
    const connect = routes.find(([, route]) => route.Properties.RouteKey === '$connect')![1].Properties;
    expect(connect.AuthorizationType).toBe('CUSTOM');
    const authorizer = resources[connect.AuthorizerId.Ref]!;
    expect(authorizer.Type).toBe('AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.Properties).toMatchObject({ AuthorizerType: 'REQUEST', IdentitySource: ['route.request.querystring.token'] });
    expect(referencedIds(authorizer.Properties.ApiId)).toEqual(new Set(['WebsocketsApi']));
    // Through the live alias, like every other caller.
    const [aliasId] = liveFunction('authorize').aliases[0]!;
    expect([...referencedIds(authorizer.Properties.AuthorizerUri)].filter((ref) => resources[ref])).toEqual([aliasId]);
    for (const [id, route] of routes.filter(([, r]) => r.Properties.RouteKey !== '$connect')) {
      expect(route.Properties.AuthorizerId, id).toBeUndefined();
    }
  });

  it('runs the authorizer on a runtime that supports callback handlers (it answers "Unauthorized" through the callback)', () => {
    const runtime = String(resources[liveFunction('authorize').functionId!]!.Properties.Runtime);
    expect(Number(/^nodejs(\d+)\.x$/.exec(runtime)?.[1])).toBeLessThanOrEqual(22);
  });

  it('makes the HS256 secret in Secrets Manager unless the stage names one, and outputs its ARN', () => {
    expect(resources.JwtSecret).toMatchObject({
      Type: 'AWS::SecretsManager::Secret',
      Condition: 'CreateJwtSecret',
      Properties: { GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } },
    });
    expect(referencedIds(template.Outputs.JwtSecretArn!.Value)).toEqual(new Set(['JwtSecret']));
  });

  it('gives the token settings to the functions that verify tokens only, and never a secret value', () => {
    const verifying = ['authorize', 'publish', 'history'];
    for (const name of FUNCTIONS) {
      const variables = environment(name);
      const tokenSettings = Object.keys(variables).filter((key) => /^(JWT_|JWKS_)/.test(key)).sort();
      expect(tokenSettings, name).toEqual(verifying.includes(name) ? ['JWKS_URL', 'JWT_AUDIENCE', 'JWT_ISSUER', 'JWT_SECRET_ARN'] : []);
      expect(variables.CABLECAR_JWT_SECRET, name).toBeUndefined();
      // The secret's ARN, as a reference to it: the value is read at run time.
      if (verifying.includes(name)) expect(referencedIds(variables.JWT_SECRET_ARN)).toEqual(new Set(['JwtSecret']));
    }
  });

  it('lets only the roles of authorize, publish and history read the token secret', () => {
    const reads = statements().filter(({ statement }) => list(statement.Resource).some((resource) => referencedIds(resource).has('JwtSecret')));
    expect(reads.map(({ owner }) => owner).sort()).toEqual(['AuthorizeRole', 'HistoryRole', 'PublishRole']);
    for (const { owner, statement } of reads) {
      expect(list(statement.Action), owner).toEqual(['secretsmanager:GetSecretValue']);
      expect(list(statement.Resource).flatMap((resource) => [...referencedIds(resource)]), owner).toEqual(['JwtSecret']);
    }
  });
});

describe('small functions (docs/performance.md, "Small functions")', () => {
  // Every function, fanout and subscribe included: they post over the undici that Node carries for
  // fetch(), never a bundled copy (its pool alone is 283 KB, its HTTP parser twice as WebAssembly).
  const BUDGET_KB = 200;
  const USES_POSTGRES = new Set(['publish', 'history', 'subscribe', 'sweep', 'retention']);

  it.each(FUNCTIONS)('packages %s alone: one minified bundle within its budget, with only what it uses', (name) => {
    const entries = packages.get(name)!;
    const bundles = [...entries.keys()].filter((file) => file.endsWith('.cjs'));
    expect(bundles).toHaveLength(1);
    // nothing shipped beside the bundle but its source map (the SDK comes with the runtime)
    expect([...entries.keys()].filter((file) => !file.endsWith('.cjs') && !file.endsWith('.cjs.map'))).toEqual([]);
    const code = entries.get(bundles[0]!)!.toString('utf8');
    expect(code.length / 1024, `${name}: ${(code.length / 1024).toFixed(0)} KB`).toBeLessThanOrEqual(BUDGET_KB);
    // minified (long lines; a readable build averages ~40 characters a line), and no inline source
    // map: maps are files, never read by Node
    expect(code.length / code.split('\n').length).toBeGreaterThan(1000);
    expect(code).not.toContain('sourceMappingURL=data:');
    // pg's SCRAM authentication and undici's error class and HTTP parser mark those libraries
    expect(code.includes('SCRAM-SHA-256'), `${name} bundles pg`).toBe(USES_POSTGRES.has(name));
    expect(/UndiciError|llhttp/.test(code), `${name} bundles undici`).toBe(false);
    expect(code).not.toMatch(/require\("@aws-sdk\/client-apigatewaymanagementapi"\)/);
  });

  it('runs without --enable-source-maps (source maps would cost at load and on every stack trace)', () => {
    for (const [id, fn] of ofType('AWS::Lambda::Function')) {
      expect(String(fn.Properties.Environment?.Variables?.NODE_OPTIONS ?? ''), id).not.toContain('source-maps');
    }
  });
});

describe('secrets and database settings', () => {
  const environmentOf = (from: Template, name: string): Record<string, Json> =>
    Object.values(from.Resources).find((resource) => resource.Type === 'AWS::Lambda::Function' && resource.Properties.FunctionName === `cablecar-${STAGE}-${name}`)!
      .Properties.Environment?.Variables ?? {};

  it.each([
    ['with', () => template],
    ['without', () => bareTemplate],
  ])('puts no password or secret in any function\'s environment (%s the database parameters)', (_label, from) => {
    for (const name of FUNCTIONS) {
      const environment = environmentOf(from(), name);
      expect(Object.keys(environment).filter((key) => /PASSWORD|SECRET(?!_ARN$)|TOKEN|KEY/i.test(key)), name).toEqual([]);
      const text = JSON.stringify(environment);
      expect(text, name).not.toContain('pa55word');
      expect(text, name).not.toMatch(/postgres(ql)?:\/\//);
      expect(environment.DATABASE_URL, name).toBeUndefined();
    }
    // Nowhere in the template either.
    expect(JSON.stringify(from())).not.toContain('pa55word');
  });

  it('gives the database settings to the functions that use PostgreSQL, and to no other', () => {
    for (const name of FUNCTIONS) {
      const database = Object.keys(environmentOf(template, name)).filter((key) => key.startsWith('DATABASE_') || key === 'NODE_EXTRA_CA_CERTS');
      if (DATABASE_FUNCTIONS.includes(name)) expect(database.sort(), name).toEqual(['DATABASE_HOST', 'DATABASE_SECRET_ARN', 'NODE_EXTRA_CA_CERTS']);
      else expect(database, name).toEqual([]);
    }
    expect(environmentOf(template, 'publish')).toMatchObject({ DATABASE_SECRET_ARN, DATABASE_HOST, NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem' });
  });

  it('lets only those functions\' roles read the database secret, that ARN only, when the stage has one', () => {
    const reads = statements().filter(({ statement }) => list(statement.Resource).includes(DATABASE_SECRET_ARN) || list(statement.Action).some((action: string) => action.startsWith('kms:')));
    expect(reads.map(({ owner }) => owner).sort()).toEqual(['HistoryRole', 'PublishRole', 'RetentionRole', 'SubscribeRole', 'SweepRole']);
    for (const { statement } of reads) {
      expect(list(statement.Action)).toEqual(['secretsmanager:GetSecretValue']);
      expect(list(statement.Resource)).toEqual([DATABASE_SECRET_ARN]);
    }
    // The grant's condition holds with the parameter, and does not without it.
    const holds = (from: Template) => {
      const [left, right] = (from as Json).Conditions.HasDatabaseSecret['Fn::Not'][0]['Fn::Equals'];
      return left !== right;
    };
    expect(holds(template)).toBe(true);
    expect(holds(bareTemplate)).toBe(false);
    expect(Object.keys(environmentOf(bareTemplate, 'publish')).filter((key) => key.startsWith('DATABASE_'))).toEqual([]);
  });
});

describe('limits', () => {
  it('throttles every route of both APIs\' stages, as the prod parameters say', () => {
    expect(resources.HttpApiStage!.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 });
    expect(resources.WebsocketsDeploymentStage!.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 });
    expect(ofType('AWS::ApiGatewayV2::Stage')).toHaveLength(2);
  });

  it('reserves concurrency for fanout, and for no other function', () => {
    const reserved = Object.fromEntries(
      ofType('AWS::Lambda::Function')
        .filter(([, fn]) => fn.Properties.ReservedConcurrentExecutions !== undefined)
        .map(([, fn]) => [fn.Properties.FunctionName, fn.Properties.ReservedConcurrentExecutions]),
    );
    expect(reserved).toEqual({ [`cablecar-${STAGE}-fanout`]: 100 });
  });

  it('allows no cross-origin browser on prod unless configured, with the headers a browser client needs', () => {
    const [[, api]] = ofType('AWS::ApiGatewayV2::Api').filter(([, a]) => a.Properties.ProtocolType === 'HTTP') as [[string, Resource]];
    expect(api.Properties.CorsConfiguration).toEqual({
      AllowOrigins: [],
      AllowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
      AllowMethods: ['GET', 'POST', 'OPTIONS'],
      ExposeHeaders: ['Retry-After', 'Idempotent-Replayed'],
      MaxAge: 600,
    });
  });
});

/** An ec2 statement of a VPC function: the describes on every resource, the rest within the stage's account and region. */
function networkInterfaceResources(statement: Json): boolean {
  const actions: string[] = list(statement.Action);
  if (actions.every((action) => ONLY_ON_EVERY_RESOURCE.includes(action))) return statement.Resource === '*';
  return (
    actions.every((action) => ENI_ACTIONS.includes(action) && !ONLY_ON_EVERY_RESOURCE.includes(action)) &&
    JSON.stringify(list(statement.Resource)) === JSON.stringify([{ 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*' }])
  );
}

describe('network placement (params vpcSubnetIds, vpcSecurityGroupIds)', () => {
  const functionsOf = (from: Template) => Object.values(from.Resources).filter((resource) => resource.Type === 'AWS::Lambda::Function');

  it('puts exactly the functions that use PostgreSQL in the given subnets and security groups', () => {
    const placed = FUNCTIONS.filter((name) => resources[liveFunction(name).functionId!]!.Properties.VpcConfig);
    expect(placed.sort()).toEqual([...DATABASE_FUNCTIONS].sort());
    for (const name of DATABASE_FUNCTIONS) {
      expect(resources[liveFunction(name).functionId!]!.Properties.VpcConfig, name).toEqual({ SubnetIds: SUBNETS, SecurityGroupIds: SECURITY_GROUPS });
    }
  });

  it('gives the network interface actions to the roles of those functions only', () => {
    const rolesWithEc2 = new Set(statements().filter(({ statement }) => list(statement.Action).some((action: string) => action.startsWith('ec2:'))).map(({ owner }) => owner));
    const databaseRoles = DATABASE_FUNCTIONS.map((name) => resources[liveFunction(name).functionId!]!.Properties.Role['Fn::GetAtt'][0]);
    expect([...rolesWithEc2].sort()).toEqual([...databaseRoles].sort());
  });

  it('without the params places no function in a VPC and grants no ec2 action', () => {
    expect(functionsOf(bareTemplate)).toHaveLength(FUNCTIONS.length);
    for (const fn of functionsOf(bareTemplate)) expect(fn.Properties.VpcConfig, fn.Properties.FunctionName).toBeUndefined();
    expect(JSON.stringify(bareTemplate)).not.toContain('ec2:');
  });
});
