/**
 * The decisions of the release command, on plain data: what state the `live` aliases of a stage are
 * in, whether a move is safe, which alias changes it takes, and how to show all of that. No AWS calls
 * here; the SDK layer (lambdaAliases.ts, codeDeployDeployments.ts) gathers the facts and applies the
 * moves.
 */

import { LIVE_ALIAS } from './stageResources.js';

/** Traffic sent to a version besides the stable one (one entry of AdditionalVersionWeights). */
export interface VersionWeight {
  version: string;
  weight: number;
}

/** A function's `live` alias as read from Lambda. */
export interface LiveAlias {
  functionName: string;
  /** FunctionVersion: the version that gets whatever the routing does not take. */
  stableVersion: string;
  /** Lambda allows one entry today; more are reported as a state the command does not handle. */
  routing: readonly VersionWeight[];
  /** Passed back on update so that Lambda refuses it if the alias changed since it was read. */
  revisionId?: string | undefined;
}

export interface AliasTarget {
  stableVersion: string;
  routing?: VersionWeight | undefined;
}

export interface AliasMove {
  from: LiveAlias;
  to: AliasTarget;
}

export type VersionSelector = { kind: 'version'; version: string } | { kind: 'latest-published' };

export type ReleaseRequest =
  | { action: 'shift'; weight: number; to?: VersionSelector | undefined }
  | { action: 'promote' }
  | { action: 'rollback' };

export type ReleaseAction = ReleaseRequest['action'];

export interface ActiveDeployment {
  deploymentId: string;
  applicationName: string;
  deploymentGroupName: string;
}

/** What `--to` means for one function: a published version, or why there is none. */
export type ResolvedVersion = { version: string } | { missing: string };

export interface ReleaseFacts {
  aliases: readonly LiveAlias[];
  activeDeployments: readonly ActiveDeployment[];
  /** By function name; needed only for `shift --to`. */
  targetVersions?: ReadonlyMap<string, ResolvedVersion> | undefined;
}

export type ReleasePlan = { refused: false; moves: AliasMove[] } | { refused: true; reasons: string[] };

// Weights go through JSON doubles on the way to Lambda and back.
const WEIGHT_TOLERANCE = 1e-9;

const sameWeight = (a: number, b: number): boolean => Math.abs(a - b) < WEIGHT_TOLERANCE;

/** `1e-1`, `0x1`, `10%` and '' are refused rather than guessed at: a weight decides real traffic. */
export function parseWeight(text: string): { weight: number } | { error: string } {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) {
    return { error: `--weight must be a decimal number from 0 to 1 (0.1 sends 10% of the traffic), not "${text}"` };
  }
  const weight = Number(text);
  if (!(weight >= 0 && weight <= 1)) return { error: `--weight must be from 0 to 1, not ${text}` };
  return { weight };
}

export const LATEST_PUBLISHED = 'latest-published';

export function parseVersionSelector(text: string): VersionSelector | { error: string } {
  if (text === LATEST_PUBLISHED) return { kind: 'latest-published' };
  // $LATEST cannot take alias traffic, and neither can another alias: only published version numbers.
  if (/^[1-9]\d*$/.test(text)) return { kind: 'version', version: text };
  return { error: `--to must be a published version number or "${LATEST_PUBLISHED}", not "${text}"` };
}

/**
 * Where the stage stands. `shifting` means every function sends the same weight to a new version
 * (each function its own version number: Lambda numbers versions per function).
 */
export type ReleasePoint = { kind: 'idle' } | { kind: 'shifting'; weight: number } | { kind: 'mixed'; groups: string[] };

export function releasePointOf(aliases: readonly LiveAlias[]): ReleasePoint {
  const byPoint = new Map<string, string[]>();
  for (const alias of aliases) {
    const point = pointLabel(alias);
    byPoint.set(point, [...(byPoint.get(point) ?? []), alias.functionName]);
  }
  const points = [...byPoint.keys()];
  if (points.length === 1) {
    const only = aliases[0];
    if (only && only.routing.length === 0) return { kind: 'idle' };
    if (only && only.routing.length === 1 && only.routing[0]) return { kind: 'shifting', weight: only.routing[0].weight };
  }
  return { kind: 'mixed', groups: [...byPoint].map(([point, names]) => `${point}: ${names.join(', ')}`) };
}

function pointLabel(alias: LiveAlias): string {
  if (alias.routing.length === 0) return 'no traffic to a new version';
  if (alias.routing.length > 1) return `traffic to ${alias.routing.length} versions besides the stable one (not handled by this command)`;
  return `${formatPercent(alias.routing[0]?.weight ?? 0)} to the new version`;
}

export function planRelease(request: ReleaseRequest, facts: ReleaseFacts): ReleasePlan {
  const reasons: string[] = [];
  const { aliases } = facts;

  // A deployment still running would move the same aliases under our feet, and roll back to where
  // it started from when its alarms fire; stopping it is the way to take over.
  if (facts.activeDeployments.length > 0) {
    reasons.push(
      'a CodeDeploy deployment is in progress for this stage:',
      ...facts.activeDeployments.map(
        (d) => `  ${d.deploymentId} (application ${d.applicationName}, deployment group ${d.deploymentGroupName})`,
      ),
      '  wait for it to finish, or stop it (`aws deploy stop-deployment --deployment-id <id> --auto-rollback-enabled`' +
        ' also rolls its aliases back) before moving aliases by hand',
    );
  }

  if (request.action === 'rollback') {
    // Allowed from any state: it is the way out of a half-done move.
    if (reasons.length > 0) return { refused: true, reasons };
    return {
      refused: false,
      moves: aliases.filter((a) => a.routing.length > 0).map((from) => ({ from, to: { stableVersion: from.stableVersion } })),
    };
  }

  if (request.action === 'shift' && !(request.weight >= 0 && request.weight <= 1)) {
    reasons.push(`the weight must be from 0 to 1, not ${request.weight}`);
  }

  // Lambda numbers versions upwards, so routing to a version below the stable one means the alias
  // was set the other way round (by hand): promoting or re-weighting it would move it backwards.
  for (const alias of aliases.filter(isReversed)) {
    const older = alias.routing[0]!;
    reasons.push(
      `${alias.functionName}: its alias points the other way — version ${alias.stableVersion}, the newer one, holds ` +
        `${formatPercent(1 - older.weight)} and the older version ${older.version} gets ${formatPercent(older.weight)}; ` +
        `set it back by hand (\`aws lambda update-alias --function-name ${alias.functionName} --name ${LIVE_ALIAS} --function-version ${older.version}` +
        ` --routing-config '${JSON.stringify({ AdditionalVersionWeights: { [alias.stableVersion]: Number((1 - older.weight).toFixed(6)) } })}'\`)`,
    );
  }

  const point = releasePointOf(aliases);
  if (point.kind === 'mixed') {
    reasons.push(
      'the functions are at different points of a release:',
      ...point.groups.map((group) => `  ${group}`),
      '  `release rollback` puts every function back on its stable version',
    );
  }

  const moves: AliasMove[] = [];
  if (request.action === 'promote') {
    if (point.kind === 'idle') reasons.push('no release in progress: nothing to promote');
    for (const from of aliases) {
      const candidate = from.routing[0];
      if (candidate) moves.push({ from, to: { stableVersion: candidate.version } });
    }
  } else if (request.to === undefined) {
    if (point.kind === 'idle') reasons.push('no release in progress: name the new version with --to');
    for (const from of aliases) {
      const candidate = from.routing[0];
      if (candidate) moves.push({ from, to: { stableVersion: from.stableVersion, routing: { version: candidate.version, weight: request.weight } } });
    }
  } else {
    for (const from of aliases) {
      const resolved = facts.targetVersions?.get(from.functionName);
      if (resolved === undefined) {
        reasons.push(`${from.functionName}: the version to shift to was not looked up`);
        continue;
      }
      if ('missing' in resolved) {
        reasons.push(`${from.functionName}: ${resolved.missing}`);
        continue;
      }
      const { version } = resolved;
      if (version === from.stableVersion) {
        reasons.push(`${from.functionName}: version ${version} is already the stable version`);
        continue;
      }
      const inProgress = from.routing[0];
      // Swapping the new version mid-release would cut the old candidate's share off at once.
      if (point.kind === 'shifting' && inProgress && inProgress.version !== version) {
        reasons.push(
          `${from.functionName}: a release to version ${inProgress.version} is in progress; promote or roll it back before shifting to version ${version}`,
        );
        continue;
      }
      moves.push({ from, to: { stableVersion: from.stableVersion, routing: { version, weight: request.weight } } });
    }
  }

  if (reasons.length > 0) return { refused: true, reasons };
  return { refused: false, moves: moves.filter((move) => !isAt(move.from, move.to)) };
}

/** The alias sends its routed share to a version older than its stable one. */
export function isReversed(alias: LiveAlias): boolean {
  const routed = alias.routing[0];
  return routed !== undefined && /^\d+$/.test(routed.version) && /^\d+$/.test(alias.stableVersion) && Number(routed.version) < Number(alias.stableVersion);
}

export function isAt(alias: LiveAlias, target: AliasTarget): boolean {
  if (alias.stableVersion !== target.stableVersion) return false;
  if (!target.routing) return alias.routing.length === 0;
  const [only, ...others] = alias.routing;
  return others.length === 0 && only !== undefined && only.version === target.routing.version && sameWeight(only.weight, target.routing.weight);
}

export function formatPercent(weight: number): string {
  return `${Number((weight * 100).toFixed(4))}%`;
}

function formatWeight(weight: number): string {
  return `${Number(weight.toFixed(6))} (${formatPercent(weight)})`;
}

/** `4` alone, or `4 (90%) + 5 (10%)` while a release splits the traffic. */
export function describeTarget(target: AliasTarget): string {
  if (!target.routing) return `${target.stableVersion} (100%)`;
  return `${target.stableVersion} (${formatPercent(1 - target.routing.weight)}) + ${target.routing.version} (${formatPercent(target.routing.weight)})`;
}

export function describeAlias(alias: LiveAlias): string {
  if (alias.routing.length <= 1) return describeTarget({ stableVersion: alias.stableVersion, routing: alias.routing[0] });
  return `${alias.stableVersion} + ${alias.routing.map((r) => `${r.version} (${formatPercent(r.weight)})`).join(' + ')}`;
}

export function renderAliasTable(aliases: readonly LiveAlias[]): string {
  const header = ['FUNCTION', 'STABLE', 'NEW', 'WEIGHT'];
  const rows = aliases.map((alias) => [
    alias.functionName,
    alias.stableVersion,
    alias.routing.length === 0 ? '-' : alias.routing.map((r) => r.version).join(', '),
    alias.routing.length === 0 ? '-' : alias.routing.map((r) => formatWeight(r.weight)).join(', '),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function describeReleasePoint(point: ReleasePoint): string {
  if (point.kind === 'idle') return 'No release in progress: every function serves its stable version only.';
  if (point.kind === 'shifting') return `Release in progress: every function sends ${formatPercent(point.weight)} of its traffic to its new version.`;
  return ['The functions are at different points of a release:', ...point.groups.map((g) => `  ${g}`)].join('\n');
}

/** The command that puts one alias where a move meant it to be, for finishing a move by hand. */
export function awsCliCommandFor(move: AliasMove): string {
  const weights = move.to.routing ? { [move.to.routing.version]: move.to.routing.weight } : {};
  return (
    `aws lambda update-alias --function-name ${move.from.functionName} --name ${LIVE_ALIAS}` +
    ` --function-version ${move.to.stableVersion} --routing-config '${JSON.stringify({ AdditionalVersionWeights: weights })}'`
  );
}

export interface ApplyOutcome {
  moved: AliasMove[];
  failed?: { move: AliasMove; error: string; nowAt?: LiveAlias | undefined } | undefined;
  /** The move stopped after a success because its report could not be written. */
  interrupted?: string | undefined;
  notAttempted: AliasMove[];
}

/** What an operator needs after a move stopped partway: what moved, what did not, how to go on. */
export function describeIncompleteMove(action: ReleaseAction, outcome: ApplyOutcome): string[] {
  const { moved, failed, interrupted, notAttempted } = outcome;
  const lines: string[] = [];
  if (interrupted) lines.push(`STOPPED: the output could not be written (${interrupted}); no further alias was moved.`);
  if (failed) {
    lines.push(`FAILED on ${failed.move.from.functionName}: ${failed.error}`);
    if (failed.nowAt) lines.push(`  ${failed.move.from.functionName} is now at ${describeAlias(failed.nowAt)}`);
  }
  lines.push(
    moved.length === 0 ? 'Moved: none.' : `Moved (${moved.length}): ${moved.map((m) => m.from.functionName).join(', ')}`,
    `Not moved (${notAttempted.length + (failed ? 1 : 0)}): ${[...(failed ? [failed.move] : []), ...notAttempted].map((m) => m.from.functionName).join(', ')}`,
  );
  if (moved.length > 0) {
    lines.push('The stage is now at mixed points of a release, so only `rollback` is accepted until it is consistent again.');
  }
  if (action === 'promote' && moved.length > 0) {
    lines.push('The promoted functions serve only their new version; `rollback` would not bring them back, it only removes the routing of the others.');
  }
  lines.push('To finish this move by hand:', ...[...(failed ? [failed.move] : []), ...notAttempted].map((m) => `  ${awsCliCommandFor(m)}`));
  return lines;
}
