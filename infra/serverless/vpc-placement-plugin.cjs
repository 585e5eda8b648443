'use strict';

/**
 * Network placement per stage, without editing serverless.yml (docs/deploy.md).
 *
 * A stage given the params `vpcSubnetIds` and `vpcSecurityGroupIds` (comma lists, or `ssm:<name>`
 * of an SSM parameter holding such a list) gets:
 *
 * 1. `VpcConfig` on the functions that talk to PostgreSQL (custom.databaseFunctions) and on no
 *    other: the rest reach only AWS APIs, and outside the VPC they need no NAT gateway or endpoint
 *    to do so. The settings are given to osls before it compiles the functions, so they are part of
 *    each function's version hash: a change of subnets publishes new versions, which `live` moves to.
 * 2. on the own role of each of those functions, the actions Lambda uses to manage the function's
 *    network interfaces (the Lambda developer guide, "Configuring a Lambda function to access
 *    resources in a VPC", and the AWSLambdaVPCAccessExecutionRole policy, v3), no managed policy.
 *
 * A stage without the params packages as before: no VpcConfig and no ec2 action anywhere.
 * Packaging fails, naming the problem, when only one of the two params is given, an id is not a
 * subnet or security group id, `provider.vpc` is set (it would place every function), or a
 * database function shares its role with a function outside the list.
 *
 * CommonJS because package.json says "type": "module" and osls loads plugins with require().
 */

// Lambda's limits for one function's VpcConfig.
const MAX_SUBNETS = 16;
const MAX_SECURITY_GROUPS = 5;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8,17}$/;

const ENI_POLICY_NAME = 'vpc-network-interfaces';

/** What the role of a function in a VPC needs, and nothing else. */
function networkInterfaceStatements() {
  return [
    // These two only work when allowed on every resource (they take no resource ARN).
    {
      Effect: 'Allow',
      Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      Resource: '*',
    },
    // The developer guide: "Either specify a unique resource ID, or include all resource IDs" for
    // DeleteNetworkInterface; this stage's account and region is the narrowest that always works.
    {
      Effect: 'Allow',
      Action: ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*' },
    },
  ];
}

/** `a, b` or `ssm:<name>` → the ids; '' → []. `readSsm(name)` returns the parameter's value. */
async function resolveIdList(paramName, value, readSsm) {
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (text === '') return [];
  const listed = text.startsWith('ssm:') ? await readSsm(paramName, text.slice('ssm:'.length).trim()) : text;
  return String(listed)
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
}

/** Checks the two lists; returns a problem to report, or undefined. */
function placementProblem(subnetIds, securityGroupIds) {
  if (subnetIds.length === 0 && securityGroupIds.length === 0) return undefined;
  if (subnetIds.length === 0) return 'vpcSecurityGroupIds is set but vpcSubnetIds is not: give both params, or neither';
  if (securityGroupIds.length === 0) return 'vpcSubnetIds is set but vpcSecurityGroupIds is not: give both params, or neither';
  const badSubnets = subnetIds.filter((id) => !SUBNET_ID.test(id));
  if (badSubnets.length > 0) return `vpcSubnetIds: not a subnet id: ${badSubnets.join(', ')}`;
  const badGroups = securityGroupIds.filter((id) => !SECURITY_GROUP_ID.test(id));
  if (badGroups.length > 0) return `vpcSecurityGroupIds: not a security group id: ${badGroups.join(', ')}`;
  if (subnetIds.length > MAX_SUBNETS) return `vpcSubnetIds: Lambda takes at most ${MAX_SUBNETS} subnets`;
  if (securityGroupIds.length > MAX_SECURITY_GROUPS) return `vpcSecurityGroupIds: Lambda takes at most ${MAX_SECURITY_GROUPS} security groups`;
  return undefined;
}

class VpcPlacementPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.provider = serverless.getProvider('aws');
    this.placement = undefined;
    this.hooks = {
      'before:package:compileFunctions': () => this.placeFunctions(),
      // After the resources of infra/iam/ are merged into the template (the roles live there).
      'before:aws:package:finalize:saveServiceState': () => this.grantNetworkInterfaces(),
    };
  }

  error(message) {
    return new this.serverless.classes.Error(`vpc-placement-plugin: ${message}`);
  }

  databaseFunctions() {
    const service = this.serverless.service;
    const names = (service.custom && service.custom.databaseFunctions) || [];
    if (!Array.isArray(names) || names.length === 0) throw this.error('custom.databaseFunctions must list the functions that use PostgreSQL');
    const known = new Set(service.getAllFunctions());
    const unknown = names.filter((name) => !known.has(name));
    if (unknown.length > 0) throw this.error(`custom.databaseFunctions names unknown functions: ${unknown.join(', ')}`);
    return names;
  }

  /**
   * The functions given database settings in their own environment must be exactly the listed
   * ones: one that reads PostgreSQL without being listed would be left outside the VPC, unable to
   * reach the database, and one listed without settings would sit in the VPC for nothing.
   */
  assertOneListOfDatabaseFunctions(databaseFunctions) {
    const service = this.serverless.service;
    const hasDatabaseSettings = (name) =>
      Object.entries(service.getFunction(name).environment || {}).some(([key, value]) => key.startsWith('DATABASE_') && value !== null && value !== undefined && value !== '');
    const withSettings = service.getAllFunctions().filter(hasDatabaseSettings);
    if (withSettings.length === 0) return; // the settings are given to every function at once (provider.environment)
    const listed = new Set(databaseFunctions);
    const unlisted = withSettings.filter((name) => !listed.has(name));
    if (unlisted.length > 0) throw this.error(`database settings go to ${unlisted.join(', ')}, which custom.databaseFunctions does not list`);
    const without = databaseFunctions.filter((name) => !hasDatabaseSettings(name));
    if (without.length > 0) throw this.error(`custom.databaseFunctions lists ${without.join(', ')}, but no database settings go to it`);
  }

  async readSsm(paramName, name) {
    if (!name) throw this.error(`${paramName}: "ssm:" needs a parameter name`);
    try {
      // osls's own dependency (it resolves ${ssm:} with it), loaded only when a param asks for SSM;
      // credentials and region are the deploy's.
      const { SSMClient, GetParameterCommand } = require('@aws-sdk/client-ssm');
      const client = new SSMClient(await this.provider.getAwsSdkV3Config());
      const { Parameter } = await client.send(new GetParameterCommand({ Name: name }));
      return Parameter.Value;
    } catch (error) {
      throw this.error(`${paramName}: cannot read SSM parameter ${name}: ${error.message}`);
    }
  }

  async placeFunctions() {
    const service = this.serverless.service;
    if (service.provider.vpc) {
      throw this.error('provider.vpc would put every function in the VPC: use the stage params vpcSubnetIds and vpcSecurityGroupIds instead');
    }
    const databaseFunctions = this.databaseFunctions();
    this.assertOneListOfDatabaseFunctions(databaseFunctions);
    const settings = (service.custom && service.custom.vpcPlacement) || {};
    const subnetIds = await resolveIdList('vpcSubnetIds', settings.subnetIds, (param, name) => this.readSsm(param, name));
    const securityGroupIds = await resolveIdList('vpcSecurityGroupIds', settings.securityGroupIds, (param, name) => this.readSsm(param, name));
    const problem = placementProblem(subnetIds, securityGroupIds);
    if (problem) throw this.error(problem);

    for (const name of service.getAllFunctions()) {
      const fn = service.getFunction(name);
      if (fn.vpc) throw this.error(`function "${name}" sets vpc itself: placement comes from the stage params only`);
      // osls would otherwise fall back to provider.vpc; `false` says "no VPC" explicitly.
      fn.vpc = false;
    }
    if (subnetIds.length === 0) return;

    this.placement = { subnetIds, securityGroupIds, functions: databaseFunctions };
    for (const name of databaseFunctions) {
      service.getFunction(name).vpc = { subnetIds, securityGroupIds };
    }
  }

  grantNetworkInterfaces() {
    if (!this.placement) return;
    const service = this.serverless.service;
    const resources = service.provider.compiledCloudFormationTemplate.Resources;
    const roleOf = (name) => {
      const role = service.getFunction(name).role;
      if (typeof role !== 'string' || !resources[role] || resources[role].Type !== 'AWS::IAM::Role') {
        throw this.error(`function "${name}" needs its own role in infra/iam/functions.yml to be placed in the VPC`);
      }
      return role;
    };
    const placed = new Set(this.placement.functions);
    const outsideRoles = new Set(
      service
        .getAllFunctions()
        .filter((name) => !placed.has(name))
        .map((name) => service.getFunction(name).role),
    );
    for (const name of this.placement.functions) {
      const roleId = roleOf(name);
      if (outsideRoles.has(roleId)) throw this.error(`role ${roleId} of "${name}" is shared with a function outside the VPC, which would get the network interface actions too`);
      const role = resources[roleId];
      const policies = (role.Properties.Policies = role.Properties.Policies || []);
      if (policies.some((policy) => policy.PolicyName === ENI_POLICY_NAME)) continue; // two database functions sharing a role
      policies.push({ PolicyName: ENI_POLICY_NAME, PolicyDocument: { Version: '2012-10-17', Statement: networkInterfaceStatements() } });
    }
  }
}

module.exports = VpcPlacementPlugin;
module.exports.resolveIdList = resolveIdList;
module.exports.placementProblem = placementProblem;
module.exports.networkInterfaceStatements = networkInterfaceStatements;
