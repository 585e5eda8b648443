import { createRequire } from 'node:module';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * infra/serverless/vpc-placement-plugin.cjs on a stand-in for osls's service object: what it refuses
 * and how it reads the params. test/deploy checks what it does to a real packaged template.
 */
const require = createRequire(import.meta.url);
// The SDK's notice about Node 20 is noise here (Lambda runs nodejs22.x).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const VpcPlacementPlugin = require('../../infra/serverless/vpc-placement-plugin.cjs');
// The plugin loads the SDK (osls's own dependency) with require(): mock that same CommonJS class.
const { SSMClient, GetParameterCommand } = require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm');

const SUBNETS = 'subnet-0123456789abcdef0,subnet-0fedcba9876543210';
const GROUP = 'sg-0123456789abcdef0';

class ServerlessError extends Error {}

const DATABASE_SETTINGS = { DATABASE_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db', DATABASE_HOST: null };

function fakeServerless({
  subnetIds = '',
  securityGroupIds = '',
  providerVpc = undefined as unknown,
  roles = {} as Record<string, string>,
  environments = { publish: DATABASE_SETTINGS, history: DATABASE_SETTINGS } as Record<string, object>,
} = {}) {
  const functions: Record<string, any> = {
    connect: { role: roles.connect ?? 'ConnectRole', environment: environments.connect },
    publish: { role: roles.publish ?? 'PublishRole', environment: environments.publish },
    history: { role: roles.history ?? 'HistoryRole', environment: environments.history },
  };
  const resources: Record<string, any> = {};
  for (const fn of Object.values(functions)) resources[fn.role] = { Type: 'AWS::IAM::Role', Properties: { Policies: [] } };
  const serverless = {
    classes: { Error: ServerlessError },
    getProvider: () => ({ getAwsSdkV3Config: async () => ({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }) }),
    service: {
      provider: { vpc: providerVpc, compiledCloudFormationTemplate: { Resources: resources } },
      custom: { databaseFunctions: ['publish', 'history'], vpcPlacement: { subnetIds, securityGroupIds } },
      getAllFunctions: () => Object.keys(functions),
      getFunction: (name: string) => functions[name],
    },
  };
  return { serverless, functions, resources };
}

async function packageWith(options: Parameters<typeof fakeServerless>[0]) {
  const fake = fakeServerless(options);
  const plugin = new VpcPlacementPlugin(fake.serverless);
  await plugin.hooks['before:package:compileFunctions']();
  plugin.hooks['before:aws:package:finalize:saveServiceState']();
  return fake;
}

const ssm = mockClient(SSMClient);
afterEach(() => ssm.reset());

describe('vpc-placement-plugin', () => {
  it('places only the database functions, and grants their roles the network interface actions', async () => {
    const { functions, resources } = await packageWith({ subnetIds: `${SUBNETS} `, securityGroupIds: GROUP });
    expect(functions.publish.vpc).toEqual({ subnetIds: SUBNETS.split(','), securityGroupIds: [GROUP] });
    expect(functions.history.vpc).toEqual({ subnetIds: SUBNETS.split(','), securityGroupIds: [GROUP] });
    expect(functions.connect.vpc).toBe(false);
    expect(resources.PublishRole.Properties.Policies.map((p: any) => p.PolicyName)).toEqual(['vpc-network-interfaces']);
    expect(resources.ConnectRole.Properties.Policies).toEqual([]);
  });

  it('accepts database settings given to every function at once (provider.environment)', async () => {
    const { functions } = await packageWith({ environments: {} });
    expect(functions.publish.vpc).toBe(false);
  });

  it('changes nothing but "no VPC" without the params', async () => {
    const { functions, resources } = await packageWith({});
    for (const fn of Object.values(functions)) expect(fn.vpc).toBe(false);
    for (const role of Object.values<any>(resources)) expect(role.Properties.Policies).toEqual([]);
  });

  it.each([
    [{ subnetIds: SUBNETS }, /vpcSecurityGroupIds is not/],
    [{ securityGroupIds: GROUP }, /vpcSubnetIds is not/],
    [{ subnetIds: 'subnet-0123456789abcdef0,vpc-0123456789abcdef0', securityGroupIds: GROUP }, /not a subnet id: vpc-0123456789abcdef0/],
    [{ subnetIds: SUBNETS, securityGroupIds: 'default' }, /not a security group id: default/],
    [{ subnetIds: SUBNETS, securityGroupIds: GROUP, providerVpc: { subnetIds: ['subnet-0123456789abcdef0'] } }, /provider\.vpc would put every function/],
    [{ subnetIds: SUBNETS, securityGroupIds: GROUP, roles: { publish: 'SharedRole', connect: 'SharedRole' } }, /SharedRole of "publish" is shared with a function outside the VPC/],
    [{ environments: { connect: { DATABASE_HOST: 'proxy' }, publish: DATABASE_SETTINGS, history: DATABASE_SETTINGS } }, /database settings go to connect, which custom\.databaseFunctions does not list/],
    [{ environments: { publish: DATABASE_SETTINGS, history: { DATABASE_HOST: null, DATABASE_SECRET_ARN: '' } } }, /lists history, but no database settings go to it/],
  ])('refuses %j', async (options, reason) => {
    await expect(packageWith(options)).rejects.toThrow(reason);
  });

  it('reads "ssm:<name>" params from SSM Parameter Store (mocked)', async () => {
    ssm.on(GetParameterCommand, { Name: '/cablecar/prod/subnets' }).resolves({ Parameter: { Value: SUBNETS } });
    ssm.on(GetParameterCommand, { Name: '/cablecar/prod/security-groups' }).resolves({ Parameter: { Value: GROUP } });
    const { functions } = await packageWith({ subnetIds: 'ssm:/cablecar/prod/subnets', securityGroupIds: 'ssm: /cablecar/prod/security-groups' });
    expect(functions.publish.vpc).toEqual({ subnetIds: SUBNETS.split(','), securityGroupIds: [GROUP] });
  });

  it('names the param and the SSM parameter it cannot read (mocked)', async () => {
    ssm.on(GetParameterCommand).rejects(new Error('ParameterNotFound'));
    await expect(packageWith({ subnetIds: 'ssm:/missing', securityGroupIds: GROUP })).rejects.toThrow('vpcSubnetIds: cannot read SSM parameter /missing: ParameterNotFound');
  });
});
