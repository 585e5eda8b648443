import { describe, expect, it } from 'vitest';
import {
  awsCliCommandFor,
  describeIncompleteMove,
  parseVersionSelector,
  parseWeight,
  planRelease,
  releasePointOf,
  renderAliasTable,
  type ActiveDeployment,
  type AliasMove,
  type LiveAlias,
  type ReleasePlan,
  type ResolvedVersion,
} from '../../../infra/release/releasePlan.js';

/** The release decisions on plain data: no AWS API, mocked or not. */

function alias(key: string, stableVersion: string, routing?: [version: string, weight: number]): LiveAlias {
  return {
    functionName: `cablecar-dev-${key}`,
    stableVersion,
    routing: routing ? [{ version: routing[0], weight: routing[1] }] : [],
    revisionId: `revision-${key}`,
  };
}

const idle = (): LiveAlias[] => [alias('connect', '4'), alias('publish', '7'), alias('fanout', '2')];
const shifting = (weight: number): LiveAlias[] => [
  alias('connect', '4', ['5', weight]),
  alias('publish', '7', ['8', weight]),
  alias('fanout', '2', ['3', weight]),
];

const versions = (entries: Record<string, ResolvedVersion>) =>
  new Map(Object.entries(entries).map(([key, resolved]) => [`cablecar-dev-${key}`, resolved]));

const deployment: ActiveDeployment = {
  deploymentId: 'd-ABCDEF123',
  applicationName: 'cablecar-dev-CablecardevDeploymentApplication-1A2B3C',
  deploymentGroupName: 'cablecar-dev-ConnectLambdaFunctionDeploymentGroup',
};

function movesOf(plan: ReleasePlan): Array<{ functionName: string; stable: string; routing?: { version: string; weight: number } }> {
  if (plan.refused) throw new Error(`refused: ${plan.reasons.join('; ')}`);
  return plan.moves.map((m) => ({ functionName: m.from.functionName, stable: m.to.stableVersion, ...(m.to.routing ? { routing: m.to.routing } : {}) }));
}

function reasonsOf(plan: ReleasePlan): string {
  if (!plan.refused) throw new Error(`not refused: ${JSON.stringify(plan.moves)}`);
  return plan.reasons.join('\n');
}

describe('parseWeight', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['0.25', 0.25],
    ['.5', 0.5],
    ['1.0', 1],
  ])('accepts %s', (text, weight) => {
    expect(parseWeight(text)).toEqual({ weight });
  });

  it.each(['', 'abc', '-0.1', '1.5', '2', 'NaN', 'Infinity', '0x1', '1e-1', '10%', ' 0.1'])('refuses "%s"', (text) => {
    expect(parseWeight(text)).toHaveProperty('error');
  });
});

describe('parseVersionSelector', () => {
  it('takes a published version number or latest-published', () => {
    expect(parseVersionSelector('12')).toEqual({ kind: 'version', version: '12' });
    expect(parseVersionSelector('latest-published')).toEqual({ kind: 'latest-published' });
  });

  it.each(['$LATEST', '0', '07', 'v7', 'live', '1.2', ''])('refuses "%s"', (text) => {
    expect(parseVersionSelector(text)).toHaveProperty('error');
  });
});

describe('releasePointOf', () => {
  it('is idle when no function routes traffic to a new version', () => {
    expect(releasePointOf(idle())).toEqual({ kind: 'idle' });
  });

  it('is shifting when every function sends the same weight, whatever each new version number is', () => {
    expect(releasePointOf(shifting(0.1))).toEqual({ kind: 'shifting', weight: 0.1 });
  });

  it('is mixed when some functions route and others do not', () => {
    const point = releasePointOf([alias('connect', '4', ['5', 0.1]), alias('publish', '7')]);
    expect(point).toEqual({
      kind: 'mixed',
      groups: ['10% to the new version: cablecar-dev-connect', 'no traffic to a new version: cablecar-dev-publish'],
    });
  });

  it('is mixed when weights differ', () => {
    expect(releasePointOf([alias('connect', '4', ['5', 0.1]), alias('publish', '7', ['8', 0.5])]).kind).toBe('mixed');
  });
});

describe('planRelease: shift', () => {
  it('starts a release with --to: every function keeps its stable version and sends the weight to the resolved version', () => {
    const plan = planRelease(
      { action: 'shift', weight: 0.1, to: { kind: 'latest-published' } },
      { aliases: idle(), activeDeployments: [], targetVersions: versions({ connect: { version: '5' }, publish: { version: '9' }, fanout: { version: '3' } }) },
    );
    expect(movesOf(plan)).toEqual([
      { functionName: 'cablecar-dev-connect', stable: '4', routing: { version: '5', weight: 0.1 } },
      { functionName: 'cablecar-dev-publish', stable: '7', routing: { version: '9', weight: 0.1 } },
      { functionName: 'cablecar-dev-fanout', stable: '2', routing: { version: '3', weight: 0.1 } },
    ]);
  });

  it('re-weights the release in progress without --to, each function keeping its own new version', () => {
    const plan = planRelease({ action: 'shift', weight: 0.5 }, { aliases: shifting(0.1), activeDeployments: [] });
    expect(movesOf(plan)).toEqual([
      { functionName: 'cablecar-dev-connect', stable: '4', routing: { version: '5', weight: 0.5 } },
      { functionName: 'cablecar-dev-publish', stable: '7', routing: { version: '8', weight: 0.5 } },
      { functionName: 'cablecar-dev-fanout', stable: '2', routing: { version: '3', weight: 0.5 } },
    ]);
  });

  it('re-weights with --to naming the version already in progress', () => {
    const plan = planRelease(
      { action: 'shift', weight: 0.3, to: { kind: 'latest-published' } },
      { aliases: shifting(0.1), activeDeployments: [], targetVersions: versions({ connect: { version: '5' }, publish: { version: '8' }, fanout: { version: '3' } }) },
    );
    expect(movesOf(plan).map((m) => m.routing)).toEqual([
      { version: '5', weight: 0.3 },
      { version: '8', weight: 0.3 },
      { version: '3', weight: 0.3 },
    ]);
  });

  it('has nothing to move when the weight is already the one asked for', () => {
    expect(movesOf(planRelease({ action: 'shift', weight: 0.1 }, { aliases: shifting(0.1), activeDeployments: [] }))).toEqual([]);
  });

  it('refuses a shift without --to when no release is in progress', () => {
    expect(reasonsOf(planRelease({ action: 'shift', weight: 0.1 }, { aliases: idle(), activeDeployments: [] }))).toContain(
      'no release in progress: name the new version with --to',
    );
  });

  it('refuses a version that a function does not have, naming that function', () => {
    const reasons = reasonsOf(
      planRelease(
        { action: 'shift', weight: 0.1, to: { kind: 'version', version: '5' } },
        {
          aliases: [alias('connect', '4'), alias('publish', '4')],
          activeDeployments: [],
          targetVersions: versions({ connect: { version: '5' }, publish: { missing: 'version 5 is not published' } }),
        },
      ),
    );
    expect(reasons).toBe('cablecar-dev-publish: version 5 is not published');
  });

  it('refuses --to equal to the stable version', () => {
    const reasons = reasonsOf(
      planRelease(
        { action: 'shift', weight: 0.1, to: { kind: 'latest-published' } },
        { aliases: idle(), activeDeployments: [], targetVersions: versions({ connect: { version: '5' }, publish: { version: '7' }, fanout: { version: '3' } }) },
      ),
    );
    expect(reasons).toBe('cablecar-dev-publish: version 7 is already the stable version');
  });

  it('refuses to swap the new version of a release in progress', () => {
    const reasons = reasonsOf(
      planRelease(
        { action: 'shift', weight: 0.1, to: { kind: 'latest-published' } },
        { aliases: shifting(0.1), activeDeployments: [], targetVersions: versions({ connect: { version: '6' }, publish: { version: '8' }, fanout: { version: '3' } }) },
      ),
    );
    expect(reasons).toBe('cablecar-dev-connect: a release to version 5 is in progress; promote or roll it back before shifting to version 6');
  });

  it('refuses when some functions route to a new version and others do not', () => {
    const aliases = [alias('connect', '4', ['5', 0.1]), alias('publish', '7'), alias('fanout', '2', ['3', 0.1])];
    const reasons = reasonsOf(planRelease({ action: 'shift', weight: 0.5 }, { aliases, activeDeployments: [] }));
    expect(reasons).toContain('the functions are at different points of a release');
    expect(reasons).toContain('no traffic to a new version: cablecar-dev-publish');
  });

  it('refuses when functions send different weights', () => {
    const aliases = [alias('connect', '4', ['5', 0.1]), alias('publish', '7', ['8', 0.5]), alias('fanout', '2', ['3', 0.1])];
    const reasons = reasonsOf(planRelease({ action: 'shift', weight: 0.5 }, { aliases, activeDeployments: [] }));
    expect(reasons).toContain('50% to the new version: cablecar-dev-publish');
  });

  it('refuses a routing to more than one extra version, which this command does not handle', () => {
    const odd: LiveAlias = { functionName: 'cablecar-dev-connect', stableVersion: '4', routing: [{ version: '5', weight: 0.1 }, { version: '6', weight: 0.1 }] };
    const reasons = reasonsOf(planRelease({ action: 'shift', weight: 0.5 }, { aliases: [odd], activeDeployments: [] }));
    expect(reasons).toContain('traffic to 2 versions besides the stable one');
  });

  it('refuses a weight out of range even when handed one directly', () => {
    expect(reasonsOf(planRelease({ action: 'shift', weight: 1.5 }, { aliases: shifting(0.1), activeDeployments: [] }))).toContain('from 0 to 1');
    expect(reasonsOf(planRelease({ action: 'shift', weight: Number.NaN }, { aliases: shifting(0.1), activeDeployments: [] }))).toContain('from 0 to 1');
  });

  it('refuses while a CodeDeploy deployment is in progress, naming it', () => {
    const reasons = reasonsOf(planRelease({ action: 'shift', weight: 0.5 }, { aliases: shifting(0.1), activeDeployments: [deployment] }));
    expect(reasons).toContain('d-ABCDEF123');
    expect(reasons).toContain('cablecar-dev-ConnectLambdaFunctionDeploymentGroup');
  });
});

describe('planRelease: promote', () => {
  it('makes each new version the stable one, with no routing', () => {
    expect(movesOf(planRelease({ action: 'promote' }, { aliases: shifting(0.5), activeDeployments: [] }))).toEqual([
      { functionName: 'cablecar-dev-connect', stable: '5' },
      { functionName: 'cablecar-dev-publish', stable: '8' },
      { functionName: 'cablecar-dev-fanout', stable: '3' },
    ]);
  });

  it('refuses when no release is in progress', () => {
    expect(reasonsOf(planRelease({ action: 'promote' }, { aliases: idle(), activeDeployments: [] }))).toContain('nothing to promote');
  });

  it('refuses when the functions are at different points', () => {
    const aliases = [alias('connect', '4', ['5', 0.5]), alias('publish', '7')];
    expect(reasonsOf(planRelease({ action: 'promote' }, { aliases, activeDeployments: [] }))).toContain('different points of a release');
  });

  it('refuses while a CodeDeploy deployment is in progress', () => {
    expect(reasonsOf(planRelease({ action: 'promote' }, { aliases: shifting(0.5), activeDeployments: [deployment] }))).toContain('d-ABCDEF123');
  });
});

describe('planRelease: rollback', () => {
  it('removes the routing of the functions that have one, from mixed points too', () => {
    const aliases = [alias('connect', '4', ['5', 0.1]), alias('publish', '7'), alias('fanout', '2', ['3', 0.5])];
    expect(movesOf(planRelease({ action: 'rollback' }, { aliases, activeDeployments: [] }))).toEqual([
      { functionName: 'cablecar-dev-connect', stable: '4' },
      { functionName: 'cablecar-dev-fanout', stable: '2' },
    ]);
  });

  it('has nothing to move when no function routes', () => {
    expect(movesOf(planRelease({ action: 'rollback' }, { aliases: idle(), activeDeployments: [] }))).toEqual([]);
  });

  it('refuses while a CodeDeploy deployment is in progress (it would fight the deployment)', () => {
    expect(reasonsOf(planRelease({ action: 'rollback' }, { aliases: shifting(0.1), activeDeployments: [deployment] }))).toContain('stop-deployment');
  });
});

describe('renderAliasTable', () => {
  it('shows function, stable version, new version and its weight, with - when there is no new version', () => {
    const table = renderAliasTable([alias('connect', '4', ['5', 0.125]), alias('unsubscribe', '12')]);
    expect(table).toBe(
      [
        'FUNCTION                  STABLE  NEW  WEIGHT',
        'cablecar-dev-connect      4       5    0.125 (12.5%)',
        'cablecar-dev-unsubscribe  12      -    -',
      ].join('\n'),
    );
  });
});

describe('describeIncompleteMove', () => {
  const move = (key: string, to: AliasMove['to']): AliasMove => ({ from: alias(key, '4', ['5', 0.1]), to });

  it('says which functions moved and which did not, and how to finish by hand', () => {
    const lines = describeIncompleteMove('shift', {
      moved: [move('connect', { stableVersion: '4', routing: { version: '5', weight: 0.5 } })],
      failed: { move: move('publish', { stableVersion: '4', routing: { version: '5', weight: 0.5 } }), error: 'ThrottlingException: slow down' },
      notAttempted: [move('fanout', { stableVersion: '4', routing: { version: '5', weight: 0.5 } })],
    }).join('\n');
    expect(lines).toContain('FAILED on cablecar-dev-publish: ThrottlingException: slow down');
    expect(lines).toContain('Moved (1): cablecar-dev-connect');
    expect(lines).toContain('Not moved (2): cablecar-dev-publish, cablecar-dev-fanout');
    expect(lines).toContain(
      `aws lambda update-alias --function-name cablecar-dev-fanout --name live --function-version 4 --routing-config '{"AdditionalVersionWeights":{"5":0.5}}'`,
    );
    expect(lines).not.toContain('--function-name cablecar-dev-connect ');
  });

  it('warns after a partial promote that rollback cannot undo the promoted functions', () => {
    const lines = describeIncompleteMove('promote', {
      moved: [move('connect', { stableVersion: '5' })],
      failed: { move: move('publish', { stableVersion: '5' }), error: 'boom' },
      notAttempted: [],
    }).join('\n');
    expect(lines).toContain('`rollback` would not bring them back');
  });

  it('writes the command that removes a routing with an empty weights map', () => {
    expect(awsCliCommandFor(move('connect', { stableVersion: '4' }))).toBe(
      `aws lambda update-alias --function-name cablecar-dev-connect --name live --function-version 4 --routing-config '{"AdditionalVersionWeights":{}}'`,
    );
  });
});
