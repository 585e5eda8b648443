/**
 * The AWS resources a release of one stage acts on, and how they are named. Names follow what
 * `serverless deploy --stage <stage>` creates (service `cablecar`, no provider.stackName), and what
 * serverless-plugin-canary-deployments 0.8 adds for CodeDeploy.
 */

export const SERVICE_NAME = 'cablecar';

/** The alias every caller invokes (DESIGN.md, Releases); releases move its routing. */
export const LIVE_ALIAS = 'live';

/**
 * Mirrors the `functions:` keys of serverless.yml, in the same order. A release moves all of them
 * together, so a function missing here would be left behind on its old version: keep the two in
 * step (a test compares this list with the generated CloudFormation).
 */
export const FUNCTION_KEYS = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'default', 'publish', 'history', 'fanout', 'authorize', 'sweep', 'retention'] as const;

export type FunctionKey = (typeof FUNCTION_KEYS)[number];

// Lambda function names allow letters, digits, '-' and '_'; anything else in a stage name could
// only come from a typo, and would end up inside the CodeDeploy name patterns below.
const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function isValidStageName(stage: string): boolean {
  return STAGE_NAME.test(stage);
}

export function stackNameOf(stage: string): string {
  return `${SERVICE_NAME}-${stage}`;
}

/** osls names each function `<service>-<stage>-<key>` unless serverless.yml says otherwise (it does not). */
export function functionNameOf(stage: string, key: FunctionKey): string {
  return `${stackNameOf(stage)}-${key}`;
}

export function stageFunctionNames(stage: string): string[] {
  return FUNCTION_KEYS.map((key) => functionNameOf(stage, key));
}

/*
 * CodeDeploy. The canary plugin declares one application per stack, logical id
 * `<alphanumeric stack name>DeploymentApplication` with no ApplicationName, so CloudFormation names it
 * `<stack>-<logical id>-<random suffix>` (e.g. cablecar-prod-CablecarprodDeploymentApplication-1A2B3C4D5E6F).
 * It names each deployment group itself: `<stack>-<Function>LambdaFunctionDeploymentGroup`.
 *
 * Neither name is worth predicting exactly (the application's suffix is random, and either could
 * become CloudFormation-generated), so the release command lists applications whose name starts
 * with `<stack>-`, then keeps the deployment groups that belong to the stack. The group pattern is the
 * strict one: stage `dev` must not pick up stage `dev-2`, whose names also start with `cablecar-dev-`.
 * After `<stack>-` comes a logical id (letters and digits only, ending in DeploymentGroup) and, when
 * CloudFormation generated the name, one `-<suffix>`; another stage's names have a '-' inside.
 */

export function isStageApplicationCandidate(applicationName: string, stage: string): boolean {
  return applicationName.startsWith(`${stackNameOf(stage)}-`);
}

export function isStageDeploymentGroup(deploymentGroupName: string, stage: string): boolean {
  const stack = escapeRegExp(stackNameOf(stage));
  return new RegExp(`^${stack}-[A-Za-z0-9]+DeploymentGroup(-[A-Za-z0-9]+)?$`).test(deploymentGroupName);
}

/** The statuses in which a CodeDeploy deployment may still move a `live` alias. */
export const ACTIVE_DEPLOYMENT_STATUSES = ['Created', 'Queued', 'InProgress', 'Ready'] as const;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
