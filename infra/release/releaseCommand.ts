/**
 * `npm run release -- <command> --stage <stage> ...`: the command line around releasePlan.ts.
 * Everything is read and checked before anything is written; see HELP for what each command does.
 */

import { parseArgs } from 'node:util';
import { CodeDeployClient } from '@aws-sdk/client-codedeploy';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { findStageDeployments, type StageDeployments } from './codeDeployDeployments.js';
import { applyAliasMoves, readLiveAliases, resolveTargetVersions } from './lambdaAliases.js';
import {
  describeAlias,
  describeIncompleteMove,
  describeReleasePoint,
  describeTarget,
  LATEST_PUBLISHED,
  parseVersionSelector,
  parseWeight,
  planRelease,
  releasePointOf,
  renderAliasTable,
  type LiveAlias,
  type ReleaseRequest,
  type ResolvedVersion,
} from './releasePlan.js';
import { ACTIVE_DEPLOYMENT_STATUSES, FUNCTION_KEYS, isValidStageName, LIVE_ALIAS, stackNameOf, stageFunctionNames } from './stageResources.js';

export const EXIT_OK = 0;
/** Refused before anything was changed: unsafe move, invalid weight or version, or a failed read. */
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
/** An update failed: some aliases may have moved (the output says which). */
export const EXIT_INCOMPLETE = 3;

export const HELP = `Usage: npm run release -- <command> --stage <stage> [options]

Shows and moves the "${LIVE_ALIAS}" alias of every function of a stage, all together:
  ${FUNCTION_KEYS.join(', ')}  (functions ${stackNameOf('<stage>')}-<name>).

Commands
  status                      Table of each function's stable version (the alias's FunctionVersion),
                              new version (the one in its routing, or -) and the new version's weight.
  shift --weight <w> [--to <version>]
                              Send the share w (0 to 1; 0.1 = 10%) of every function's traffic to
                              its new version; the stable version keeps the rest.
                              Without --to: the release already in progress, at a new weight.
                              --to <n>: version n of every function (the same number for all; each
                                must have it published). Suits stages whose versions advance together.
                              --to ${LATEST_PUBLISHED}: each function's highest published version.
                              Either --to starts a release, or re-weights the one in progress if it is
                              to the same version; it refuses a version equal to a function's stable
                              one and a version other than the one a release in progress is shifting to.
  promote                     Make every function's new version its stable version, with all traffic.
  rollback                    Send all traffic back to every function's stable version (remove the
                              routing). Accepted whatever point the functions are at.

Options
  --stage <stage>             Required.
  --region <region>           Otherwise the AWS SDK's default chain (AWS_REGION, profile). Credentials
                              and endpoints come from the default chain too (AWS_ENDPOINT_URL works).
  -h, --help

Safety: all aliases and versions are read and checked before the first update, and nothing is changed
when a check fails: weight not in 0..1, unknown version, --to equal to the stable version, functions at
different points of a release (except for rollback), or a CodeDeploy deployment in progress.
Aliases are then updated one function at a time, each only if unchanged since it was read; a failure
stops the move and reports which functions moved.

CodeDeploy: lists the applications named ${stackNameOf('<stage>')}-... (the canary plugin's application, named
by CloudFormation), keeps their deployment groups named ${stackNameOf('<stage>')}-<LogicalId>DeploymentGroup[-<suffix>],
and looks for deployments that are ${ACTIVE_DEPLOYMENT_STATUSES.join(', ')}. shift, promote and rollback refuse
while there is one (status reports it): stop it with
\`aws deploy stop-deployment --deployment-id <id> --auto-rollback-enabled\`, which also rolls it back.
They also refuse when CodeDeploy cannot be checked.

Exit status: ${EXIT_OK} done, ${EXIT_REFUSED} refused (nothing changed), ${EXIT_USAGE} usage error, ${EXIT_INCOMPLETE} stopped partway (see the report).`;

export interface ReleaseClients {
  lambda: LambdaClient;
  codeDeploy: CodeDeployClient;
}

export interface ReleaseOutput {
  /** May throw once the output is gone (a closed pipe): a move then stops and reports on err. */
  out(line: string): void;
  err(line: string): void;
}

/** The SDK's default credential, region and endpoint chains; only the region can be overridden. */
export function createAwsReleaseClients(region?: string): ReleaseClients {
  const config = region ? { region } : {};
  return { lambda: new LambdaClient(config), codeDeploy: new CodeDeployClient(config) };
}

type ParsedCommand = { help: true } | { help: false; stage: string; region?: string | undefined; request: ReleaseRequest | { action: 'status' } };

class UsageError extends Error {}
class RefusedError extends Error {}

const COMMANDS = ['status', 'shift', 'promote', 'rollback'] as const;

function parseCommand(argv: readonly string[]): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        stage: { type: 'string' },
        weight: { type: 'string' },
        to: { type: 'string' },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };

  const [command, ...extra] = positionals;
  if (!command) throw new UsageError(`a command is required: ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command "${command}": ${COMMANDS.join(', ')}`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (values.stage === undefined) throw new UsageError('--stage is required');
  if (!isValidStageName(values.stage)) throw new UsageError(`invalid stage name "${values.stage}"`);
  if (command !== 'shift' && values.weight !== undefined) throw new UsageError(`--weight only goes with shift`);
  if (command !== 'shift' && values.to !== undefined) throw new UsageError(`--to only goes with shift`);

  const base = { help: false as const, stage: values.stage, region: values.region };
  if (command === 'status' || command === 'promote' || command === 'rollback') return { ...base, request: { action: command } };

  if (values.weight === undefined) throw new UsageError('shift needs --weight');
  const weight = parseWeight(values.weight);
  if ('error' in weight) throw new RefusedError(weight.error);
  const to = values.to === undefined ? undefined : parseVersionSelector(values.to);
  if (to && 'error' in to) throw new RefusedError(to.error);
  return { ...base, request: { action: 'shift', weight: weight.weight, to } };
}

export async function runRelease(
  argv: readonly string[],
  output: ReleaseOutput,
  createClients: (region?: string) => ReleaseClients = createAwsReleaseClients,
): Promise<number> {
  let command: ParsedCommand;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (error instanceof RefusedError) {
      output.err(`Refused: ${error.message}. Nothing was changed.`);
      return EXIT_REFUSED;
    }
    output.err(`${(error as Error).message}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  if (command.help) {
    output.out(HELP);
    return EXIT_OK;
  }

  const { stage, request } = command;
  const clients = createClients(command.region);
  const functionNames = stageFunctionNames(stage);
  if (request.action === 'status') return showStatus(clients, stage, functionNames, output);

  let aliases: LiveAlias[];
  let deployments: StageDeployments;
  let targetVersions: Map<string, ResolvedVersion> | undefined;
  try {
    [aliases, deployments, targetVersions] = await Promise.all([
      readLiveAliases(clients.lambda, functionNames),
      findStageDeployments(clients.codeDeploy, stage).catch((error: unknown) => {
        // Not knowing is treated as a deployment in progress: the move could fight it.
        throw new Error(`could not check CodeDeploy for a deployment in progress (${describe(error)})`);
      }),
      request.action === 'shift' && request.to ? resolveTargetVersions(clients.lambda, functionNames, request.to) : undefined,
    ]);
  } catch (error) {
    output.err(`Refused ${request.action} on stage ${stage}: ${describe(error)}\nNothing was changed.`);
    return EXIT_REFUSED;
  }

  const plan = planRelease(request, { aliases, activeDeployments: deployments.active, targetVersions });
  if (plan.refused) {
    output.err([`Refused ${request.action} on stage ${stage}; nothing was changed:`, ...plan.reasons.map((r) => `- ${r}`), '', renderAliasTable(aliases)].join('\n'));
    return EXIT_REFUSED;
  }
  if (plan.moves.length === 0) {
    output.out(`Nothing to change on stage ${stage}: ${describeReleasePoint(releasePointOf(aliases))}`);
    return EXIT_OK;
  }

  try {
    output.out(`${request.action} on stage ${stage}: moving ${plan.moves.length} of ${aliases.length} functions`);
  } catch (error) {
    output.err(`Refused ${request.action} on stage ${stage}: the output could not be written (${describe(error)}). Nothing was changed.`);
    return EXIT_REFUSED;
  }
  const outcome = await applyAliasMoves(clients.lambda, plan.moves, (move) =>
    output.out(`  moved ${move.from.functionName}: ${describeAlias(move.from)} -> ${describeTarget(move.to)}`),
  );
  if (outcome.failed || outcome.interrupted) {
    output.err(describeIncompleteMove(request.action, outcome).join('\n'));
    return EXIT_INCOMPLETE;
  }
  try {
    output.out(`Done: ${outcome.moved.length} functions moved.`);
  } catch {
    output.err(`Done: ${outcome.moved.length} functions moved (the output could not be written).`);
  }
  return EXIT_OK;
}

async function showStatus(clients: ReleaseClients, stage: string, functionNames: string[], output: ReleaseOutput): Promise<number> {
  const [aliases, deployments] = await Promise.allSettled([readLiveAliases(clients.lambda, functionNames), findStageDeployments(clients.codeDeploy, stage)]);
  if (aliases.status === 'rejected') {
    output.err(`Stage ${stage}: ${describe(aliases.reason)}`);
    return EXIT_REFUSED;
  }
  output.out(`Stage ${stage}, alias "${LIVE_ALIAS}":\n${renderAliasTable(aliases.value)}\n\n${describeReleasePoint(releasePointOf(aliases.value))}`);
  if (deployments.status === 'rejected') {
    output.err(`CodeDeploy: could not check for deployments in progress (${describe(deployments.reason)}).`);
  } else if (deployments.value.deploymentGroups.length === 0) {
    output.out(`CodeDeploy: no deployment group found for stage ${stage}.`);
  } else if (deployments.value.active.length === 0) {
    output.out(`CodeDeploy: no deployment in progress (${deployments.value.deploymentGroups.length} deployment groups).`);
  } else {
    output.out(
      ['CodeDeploy: deployments in progress (release commands refuse until they end):', ...deployments.value.active.map((d) => `  ${d.deploymentId} (${d.deploymentGroupName})`)].join('\n'),
    );
  }
  return EXIT_OK;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.name && error.name !== 'Error' && !error.message.startsWith(error.name) && error.name !== 'AliasReadError' ? `${error.name}: ${error.message}` : error.message;
}
