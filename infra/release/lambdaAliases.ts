/**
 * The Lambda side of the release command: read the `live` aliases, look up the versions a shift
 * names, and apply planned alias moves. Translates between the SDK's shapes and releasePlan.ts.
 */

import {
  GetAliasCommand,
  GetFunctionCommand,
  paginateListVersionsByFunction,
  UpdateAliasCommand,
  type AliasConfiguration,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import { isAt, type AliasMove, type ApplyOutcome, type LiveAlias, type ResolvedVersion, type VersionSelector } from './releasePlan.js';
import { LIVE_ALIAS } from './stageResources.js';

/** A read that failed for some functions; the message names each of them. */
export class AliasReadError extends Error {
  override readonly name = 'AliasReadError';
}

export async function readLiveAliases(lambda: LambdaClient, functionNames: readonly string[]): Promise<LiveAlias[]> {
  const results = await Promise.allSettled(functionNames.map((functionName) => readLiveAlias(lambda, functionName)));
  const failures = results.flatMap((result, index) =>
    result.status === 'rejected' ? [`  ${functionNames[index]}: ${describeError(result.reason, `no function or no "${LIVE_ALIAS}" alias`)}`] : [],
  );
  if (failures.length > 0) throw new AliasReadError([`could not read the "${LIVE_ALIAS}" alias of:`, ...failures].join('\n'));
  return results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

async function readLiveAlias(lambda: LambdaClient, functionName: string): Promise<LiveAlias> {
  const alias = await lambda.send(new GetAliasCommand({ FunctionName: functionName, Name: LIVE_ALIAS }));
  return liveAliasFrom(functionName, alias);
}

function liveAliasFrom(functionName: string, alias: AliasConfiguration): LiveAlias {
  if (!alias.FunctionVersion) throw new Error(`the "${LIVE_ALIAS}" alias has no FunctionVersion`);
  const weights = alias.RoutingConfig?.AdditionalVersionWeights ?? {};
  return {
    functionName,
    stableVersion: alias.FunctionVersion,
    routing: Object.entries(weights).map(([version, weight]) => ({ version, weight })),
    revisionId: alias.RevisionId,
  };
}

/**
 * `--to <n>`: version n of every function, checked with GetFunction. `--to latest-published`: each
 * function's highest published version number, from ListVersionsByFunction ($LATEST is not a version).
 */
export async function resolveTargetVersions(
  lambda: LambdaClient,
  functionNames: readonly string[],
  selector: VersionSelector,
): Promise<Map<string, ResolvedVersion>> {
  const results = await Promise.allSettled(
    functionNames.map((functionName) =>
      selector.kind === 'version' ? publishedVersion(lambda, functionName, selector.version) : latestPublishedVersion(lambda, functionName),
    ),
  );
  const failures = results.flatMap((result, index) =>
    result.status === 'rejected' ? [`  ${functionNames[index]}: ${describeError(result.reason, 'no such function')}`] : [],
  );
  if (failures.length > 0) throw new AliasReadError(['could not look up the versions of:', ...failures].join('\n'));
  return new Map(functionNames.map((functionName, index) => [functionName, (results[index] as PromiseFulfilledResult<ResolvedVersion>).value]));
}

async function publishedVersion(lambda: LambdaClient, functionName: string, version: string): Promise<ResolvedVersion> {
  try {
    await lambda.send(new GetFunctionCommand({ FunctionName: functionName, Qualifier: version }));
    return { version };
  } catch (error) {
    if (errorName(error) === 'ResourceNotFoundException') return { missing: `version ${version} is not published` };
    throw error;
  }
}

async function latestPublishedVersion(lambda: LambdaClient, functionName: string): Promise<ResolvedVersion> {
  let latest: number | undefined;
  for await (const page of paginateListVersionsByFunction({ client: lambda }, { FunctionName: functionName })) {
    for (const { Version } of page.Versions ?? []) {
      if (Version && /^\d+$/.test(Version) && (latest === undefined || Number(Version) > latest)) latest = Number(Version);
    }
  }
  return latest === undefined ? { missing: 'no published version' } : { version: String(latest) };
}

/**
 * One function at a time, stopping at the first failure, so that the outcome says exactly which
 * aliases moved. Each update carries the revision read before planning: an alias someone else moved
 * in the meantime fails instead of being overwritten.
 */
export async function applyAliasMoves(lambda: LambdaClient, moves: readonly AliasMove[], onMoved: (move: AliasMove) => void): Promise<ApplyOutcome> {
  const moved: AliasMove[] = [];
  for (const [index, move] of moves.entries()) {
    try {
      await lambda.send(
        new UpdateAliasCommand({
          FunctionName: move.from.functionName,
          Name: LIVE_ALIAS,
          FunctionVersion: move.to.stableVersion,
          // An empty map is how UpdateAlias removes the routing.
          RoutingConfig: { AdditionalVersionWeights: move.to.routing ? { [move.to.routing.version]: move.to.routing.weight } : {} },
          RevisionId: move.from.revisionId,
        }),
      );
    } catch (error) {
      // The SDK retries: an update that landed but whose answer was lost fails its retry on the
      // revision. Reading the alias again tells which of the two happened.
      const nowAt = await readLiveAlias(lambda, move.from.functionName).catch(() => undefined);
      if (!nowAt || !isAt(nowAt, move.to)) {
        return { moved, failed: { move, error: describeError(error, 'update refused'), nowAt }, notAttempted: moves.slice(index + 1) };
      }
    }
    moved.push(move);
    try {
      onMoved(move);
    } catch (error) {
      // The report of the moves could not be written (a closed pipe: `| head`): go no further, so
      // that what moved is exactly what the caller then reports where it still can.
      return { moved, interrupted: error instanceof Error ? error.message : String(error), notAttempted: moves.slice(index + 1) };
    }
  }
  return { moved, notAttempted: [] };
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function describeError(error: unknown, notFound: string): string {
  const name = errorName(error);
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'ResourceNotFoundException') return `${notFound} (${message})`;
  if (name === 'PreconditionFailedException') return `the alias changed since it was read (${message})`;
  return name && !message.startsWith(name) ? `${name}: ${message}` : message;
}
