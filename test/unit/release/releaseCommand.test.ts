import {
  CodeDeployClient,
  ListApplicationsCommand,
  ListDeploymentGroupsCommand,
  ListDeploymentsCommand,
} from '@aws-sdk/client-codedeploy';
import {
  GetAliasCommand,
  GetFunctionCommand,
  LambdaClient,
  ListVersionsByFunctionCommand,
  PreconditionFailedException,
  ResourceNotFoundException,
  UpdateAliasCommand,
  type UpdateAliasCommandInput,
} from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAwsReleaseClients, runRelease, type ReleaseClients } from '../../../infra/release/releaseCommand.js';
import { FUNCTION_KEYS } from '../../../infra/release/stageResources.js';

/**
 * The release command end to end, from its argv to the requests it sends. The AWS control plane
 * (Lambda and CodeDeploy APIs) is the only thing mocked, with aws-sdk-client-mock: a small in-memory
 * model of the stage's aliases, published versions and CodeDeploy applications answers the requests.
 */

const lambda = mockClient(LambdaClient);
const codeDeploy = mockClient(CodeDeployClient);

const STAGE = 'dev';
const name = (key: string, stage = STAGE) => `cablecar-${stage}-${key}`;
const ALL = FUNCTION_KEYS.map((key) => name(key));

interface AliasModel {
  FunctionVersion: string;
  weights: Record<string, number>;
  RevisionId: string;
}

let aliases: Map<string, AliasModel>;
let published: Map<string, string[]>;
let applications: Record<string, string[]>;
let activeDeployments: Record<string, string[]>;
let revisionCounter: number;

function notFound(message: string) {
  return new ResourceNotFoundException({ message, $metadata: {} });
}

/** Every function at `stable` (stable+1 published), optionally sending `weight` to stable+1. */
function stageAt(stable: number, weight?: number) {
  aliases = new Map();
  published = new Map();
  for (const fn of ALL) {
    aliases.set(fn, { FunctionVersion: String(stable), weights: weight === undefined ? {} : { [String(stable + 1)]: weight }, RevisionId: `rev-${fn}-0` });
    published.set(fn, ['$LATEST', ...Array.from({ length: stable + 1 }, (_, i) => String(i + 1))]);
  }
}

function setAlias(fn: string, alias: Partial<AliasModel>) {
  const current = aliases.get(fn);
  if (!current) throw new Error(`no ${fn}`);
  aliases.set(fn, { ...current, ...alias });
}

beforeEach(() => {
  lambda.reset();
  codeDeploy.reset();
  revisionCounter = 0;
  stageAt(4);
  applications = {
    'cablecar-dev-CablecardevDeploymentApplication-1A2B3C4D': FUNCTION_KEYS.map(
      (key) => `cablecar-dev-${key[0]!.toUpperCase()}${key.slice(1)}LambdaFunctionDeploymentGroup`,
    ),
    // Stage dev-2 shares the `cablecar-dev-` prefix; its groups must not count for dev.
    'cablecar-dev-2-Cablecardev2DeploymentApplication-9Z8Y7X': ['cablecar-dev-2-ConnectLambdaFunctionDeploymentGroup'],
    'someone-elses-app': ['cablecar-dev-ConnectLambdaFunctionDeploymentGroup'],
  };
  activeDeployments = {};

  lambda.on(GetAliasCommand).callsFake((input: { FunctionName: string; Name: string }) => {
    const alias = input.Name === 'live' ? aliases.get(input.FunctionName) : undefined;
    if (!alias) throw notFound(`Alias not found: ${input.FunctionName}:${input.Name}`);
    return { Name: 'live', FunctionVersion: alias.FunctionVersion, RoutingConfig: { AdditionalVersionWeights: alias.weights }, RevisionId: alias.RevisionId };
  });
  lambda.on(UpdateAliasCommand).callsFake((input: UpdateAliasCommandInput) => {
    const alias = aliases.get(input.FunctionName!);
    if (!alias || input.Name !== 'live') throw notFound('no alias');
    if (input.RevisionId !== alias.RevisionId) throw new PreconditionFailedException({ message: 'revision changed', $metadata: {} });
    aliases.set(input.FunctionName!, {
      FunctionVersion: input.FunctionVersion ?? alias.FunctionVersion,
      weights: input.RoutingConfig?.AdditionalVersionWeights ?? alias.weights,
      RevisionId: `rev-${input.FunctionName}-${++revisionCounter}`,
    });
    return {};
  });
  lambda.on(GetFunctionCommand).callsFake((input: { FunctionName: string; Qualifier: string }) => {
    if (!published.get(input.FunctionName)?.includes(input.Qualifier)) throw notFound(`Function not found: ${input.FunctionName}:${input.Qualifier}`);
    return { Configuration: { FunctionName: input.FunctionName, Version: input.Qualifier } };
  });
  // Two versions per page, to go through the paginator.
  lambda.on(ListVersionsByFunctionCommand).callsFake((input: { FunctionName: string; Marker?: string }) => {
    const versions = published.get(input.FunctionName);
    if (!versions) throw notFound('Function not found');
    const start = Number(input.Marker ?? 0);
    const page = versions.slice(start, start + 2);
    return { Versions: page.map((Version) => ({ Version })), NextMarker: start + 2 < versions.length ? String(start + 2) : undefined };
  });

  codeDeploy.on(ListApplicationsCommand).callsFake(() => ({ applications: Object.keys(applications) }));
  codeDeploy.on(ListDeploymentGroupsCommand).callsFake((input: { applicationName: string }) => ({
    applicationName: input.applicationName,
    deploymentGroups: applications[input.applicationName] ?? [],
  }));
  codeDeploy.on(ListDeploymentsCommand).callsFake((input: { deploymentGroupName: string }) => ({ deployments: activeDeployments[input.deploymentGroupName] ?? [] }));
});

afterEach(() => {
  vi.restoreAllMocks();
});

interface Run {
  code: number;
  out: string;
  err: string;
  regions: Array<string | undefined>;
}

async function release(...argv: string[]): Promise<Run> {
  return releaseWithOutput(Infinity, ...argv);
}

/** Like `release`, but writing stdout fails after `outLines` lines, as a closed pipe (`| head`) does. */
async function releaseWithOutput(outLines: number, ...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const regions: Array<string | undefined> = [];
  const createClients = (region?: string): ReleaseClients => {
    regions.push(region);
    return { lambda: new LambdaClient({ region: 'us-east-1' }), codeDeploy: new CodeDeployClient({ region: 'us-east-1' }) };
  };
  const write = (line: string) => {
    if (out.length >= outLines) throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    out.push(line);
  };
  const code = await runRelease(argv, { out: write, err: (line) => err.push(line) }, createClients);
  return { code, out: out.join('\n'), err: err.join('\n'), regions };
}

const updates = () => lambda.commandCalls(UpdateAliasCommand).map((call) => call.args[0].input);

describe('release status (Lambda and CodeDeploy APIs mocked)', () => {
  it('prints each function with its stable version, new version and weight, and changes nothing', async () => {
    stageAt(4, 0.1);
    setAlias(name('fanout'), { FunctionVersion: '9', weights: {} });

    const run = await release('status', '--stage', 'dev');

    expect(run.code).toBe(0);
    expect(run.out).toContain('cablecar-dev-connect      4       5    0.1 (10%)');
    expect(run.out).toContain('cablecar-dev-fanout       9       -    -');
    for (const fn of ALL) expect(run.out).toContain(fn);
    expect(run.out).toContain('different points of a release');
    expect(run.out).toContain(`CodeDeploy: no deployment in progress (${ALL.length} deployment groups)`);
    expect(updates()).toEqual([]);
  });

  it('still prints the table when CodeDeploy cannot be read, with a warning', async () => {
    codeDeploy.on(ListApplicationsCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException' }));
    const run = await release('status', '--stage', 'dev');
    expect(run.code).toBe(0);
    expect(run.out).toContain('cablecar-dev-history');
    expect(run.err).toContain('CodeDeploy: could not check for deployments in progress (AccessDeniedException: not allowed)');
  });
});

describe('release shift (Lambda and CodeDeploy APIs mocked)', () => {
  it('--to latest-published sends the weight to each function’s highest published version, one UpdateAlias per function', async () => {
    // Numeric, not string order: 10 is after 9.
    published.set(name('history'), ['$LATEST', '1', '2', '3', '4', '9', '10']);

    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', 'latest-published');

    expect(run.code).toBe(0);
    expect(updates()).toEqual(
      ALL.map((fn) => ({
        FunctionName: fn,
        Name: 'live',
        FunctionVersion: '4',
        RoutingConfig: { AdditionalVersionWeights: { [fn === name('history') ? '10' : '5']: 0.1 } },
        RevisionId: `rev-${fn}-0`,
      })),
    );
    expect(run.out.split('\n').filter((line) => line.includes('moved '))).toHaveLength(ALL.length);
    expect(run.out).toContain('moved cablecar-dev-connect: 4 (100%) -> 4 (90%) + 5 (10%)');
  });

  it('--to <n> checks version n of every function with GetFunction, then shifts to it', async () => {
    const run = await release('shift', '--stage', 'dev', '--weight', '0.25', '--to', '5');
    expect(run.code).toBe(0);
    expect(lambda.commandCalls(GetFunctionCommand).map((c) => c.args[0].input)).toEqual(ALL.map((fn) => ({ FunctionName: fn, Qualifier: '5' })));
    expect(updates().map((u) => u.RoutingConfig)).toEqual(ALL.map(() => ({ AdditionalVersionWeights: { '5': 0.25 } })));
  });

  it('without --to re-weights the release in progress', async () => {
    stageAt(4, 0.1);
    const run = await release('shift', '--stage', 'dev', '--weight', '0.5');
    expect(run.code).toBe(0);
    expect(updates().map((u) => [u.FunctionName, u.FunctionVersion, u.RoutingConfig])).toEqual(
      ALL.map((fn) => [fn, '4', { AdditionalVersionWeights: { '5': 0.5 } }]),
    );
    expect(aliases.get(name('fanout'))?.weights).toEqual({ '5': 0.5 });
  });

  it('sends nothing when the weight is already the one asked for', async () => {
    stageAt(4, 0.5);
    const run = await release('shift', '--stage', 'dev', '--weight', '0.5');
    expect(run.code).toBe(0);
    expect(run.out).toContain('Nothing to change');
    expect(updates()).toEqual([]);
  });

  // `--weight=` so that parseArgs takes -0.1 as a value rather than as an option.
  it.each(['1.5', '-0.1', 'abc', '10%', ''])('refuses --weight=%s before calling any AWS API', async (weight) => {
    const run = await release('shift', '--stage', 'dev', `--weight=${weight}`, '--to', '5');
    expect(run.code).toBe(1);
    expect(run.err).toContain('--weight');
    expect(run.err).toContain('Nothing was changed');
    expect(lambda.calls()).toHaveLength(0);
    expect(codeDeploy.calls()).toHaveLength(0);
  });

  it('refuses a version one function does not have, naming it, and updates no alias', async () => {
    published.set(name('publish'), ['$LATEST', '1', '2', '3', '4']);
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', '5');
    expect(run.code).toBe(1);
    expect(run.err).toContain('cablecar-dev-publish: version 5 is not published');
    expect(updates()).toEqual([]);
  });

  it('refuses --to equal to the stable version and updates no alias', async () => {
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', '4');
    expect(run.code).toBe(1);
    expect(run.err).toContain('cablecar-dev-connect: version 4 is already the stable version');
    expect(updates()).toEqual([]);
  });

  it('refuses when functions are at different weights, and updates no alias', async () => {
    stageAt(4, 0.1);
    setAlias(name('publish'), { weights: { '5': 0.5 } });
    const run = await release('shift', '--stage', 'dev', '--weight', '0.5');
    expect(run.code).toBe(1);
    expect(run.err).toContain('different points of a release');
    expect(run.err).toContain('50% to the new version: cablecar-dev-publish');
    expect(updates()).toEqual([]);
  });

  it('refuses without --to when no release is in progress', async () => {
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1');
    expect(run.code).toBe(1);
    expect(run.err).toContain('name the new version with --to');
    expect(updates()).toEqual([]);
  });

  it('refuses while a CodeDeploy deployment of the stage is in progress, and updates no alias', async () => {
    activeDeployments['cablecar-dev-PublishLambdaFunctionDeploymentGroup'] = ['d-RUNNING01'];
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', '5');
    expect(run.code).toBe(1);
    expect(run.err).toContain('d-RUNNING01');
    expect(updates()).toEqual([]);

    const listed = codeDeploy.commandCalls(ListDeploymentsCommand).map((c) => c.args[0].input);
    expect(listed).toContainEqual({
      applicationName: 'cablecar-dev-CablecardevDeploymentApplication-1A2B3C4D',
      deploymentGroupName: 'cablecar-dev-PublishLambdaFunctionDeploymentGroup',
      includeOnlyStatuses: ['Created', 'Queued', 'InProgress', 'Ready'],
    });
    // Only the stage's own application and groups are asked about.
    expect(codeDeploy.commandCalls(ListDeploymentGroupsCommand).map((c) => c.args[0].input.applicationName).sort()).toEqual([
      'cablecar-dev-2-Cablecardev2DeploymentApplication-9Z8Y7X',
      'cablecar-dev-CablecardevDeploymentApplication-1A2B3C4D',
    ]);
    expect(listed.map((input) => input.deploymentGroupName)).not.toContain('cablecar-dev-2-ConnectLambdaFunctionDeploymentGroup');
    expect(listed).toHaveLength(ALL.length);
  });

  it("is not held back by another stage's deployment whose names share the prefix", async () => {
    activeDeployments['cablecar-dev-2-ConnectLambdaFunctionDeploymentGroup'] = ['d-OTHERSTAGE'];
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', '5');
    expect(run.code).toBe(0);
    expect(updates()).toHaveLength(ALL.length);
  });

  it('refuses when CodeDeploy cannot be checked, and updates no alias', async () => {
    codeDeploy.on(ListApplicationsCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException' }));
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', '5');
    expect(run.code).toBe(1);
    expect(run.err).toContain('could not check CodeDeploy');
    expect(updates()).toEqual([]);
  });

  it('refuses when a function has no live alias, and updates no other', async () => {
    aliases.delete(name('unsubscribe'));
    const run = await release('shift', '--stage', 'dev', '--weight', '0.1', '--to', '5');
    expect(run.code).toBe(1);
    expect(run.err).toContain('cablecar-dev-unsubscribe: no function or no "live" alias');
    expect(updates()).toEqual([]);
  });
});

describe('release promote (Lambda and CodeDeploy APIs mocked)', () => {
  it('makes the new version stable with no routing left', async () => {
    stageAt(4, 0.5);
    const run = await release('promote', '--stage', 'dev');
    expect(run.code).toBe(0);
    expect(updates()).toEqual(
      ALL.map((fn) => ({ FunctionName: fn, Name: 'live', FunctionVersion: '5', RoutingConfig: { AdditionalVersionWeights: {} }, RevisionId: `rev-${fn}-0` })),
    );
    expect(run.out).toContain('moved cablecar-dev-fanout: 4 (50%) + 5 (50%) -> 5 (100%)');
  });

  it('refuses when some functions are not in the release, and updates no alias', async () => {
    stageAt(4, 0.5);
    setAlias(name('default'), { weights: {} });
    const run = await release('promote', '--stage', 'dev');
    expect(run.code).toBe(1);
    expect(updates()).toEqual([]);
  });
});

describe('release rollback (Lambda and CodeDeploy APIs mocked)', () => {
  it('removes the routing of every function that has one, even from mixed points', async () => {
    stageAt(4, 0.1);
    setAlias(name('publish'), { weights: { '5': 0.5 } });
    setAlias(name('history'), { weights: {} });

    const run = await release('rollback', '--stage', 'dev');

    expect(run.code).toBe(0);
    expect(updates()).toEqual(
      ALL.filter((fn) => fn !== name('history')).map((fn) => ({
        FunctionName: fn,
        Name: 'live',
        FunctionVersion: '4',
        RoutingConfig: { AdditionalVersionWeights: {} },
        RevisionId: `rev-${fn}-0`,
      })),
    );
    for (const fn of ALL) expect(aliases.get(fn)).toMatchObject({ FunctionVersion: '4', weights: {} });
  });

  it('refuses while a CodeDeploy deployment of the stage is in progress', async () => {
    stageAt(4, 0.1);
    activeDeployments['cablecar-dev-FanoutLambdaFunctionDeploymentGroup'] = ['d-RUNNING02'];
    const run = await release('rollback', '--stage', 'dev');
    expect(run.code).toBe(1);
    expect(run.err).toContain('stop-deployment');
    expect(updates()).toEqual([]);
  });
});

describe('a move that fails partway (Lambda and CodeDeploy APIs mocked)', () => {
  it('stops at the failing function and reports which functions moved and which did not', async () => {
    stageAt(4, 0.1);
    lambda
      .on(UpdateAliasCommand, { FunctionName: name('default') })
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' }));

    const run = await release('shift', '--stage', 'dev', '--weight', '0.5');

    expect(run.code).toBe(3);
    // connect..unsubscribe moved, default failed, publish..authorize were not attempted.
    expect(updates().map((u) => u.FunctionName)).toEqual([name('connect'), name('disconnect'), name('subscribe'), name('unsubscribe'), name('default')]);
    expect(run.err).toContain('FAILED on cablecar-dev-default: TooManyRequestsException: Rate exceeded');
    expect(run.err).toContain('Moved (4): cablecar-dev-connect, cablecar-dev-disconnect, cablecar-dev-subscribe, cablecar-dev-unsubscribe');
    expect(run.err).toContain(`Not moved (${ALL.length - 4}): ${ALL.slice(4).join(', ')}`);
    expect(run.err).toContain('aws lambda update-alias --function-name cablecar-dev-retention');
    expect(run.out.split('\n').filter((line) => line.includes('moved '))).toHaveLength(4);
  });

  it('counts an update whose answer was lost but which landed as moved (the alias is read again)', async () => {
    stageAt(4, 0.1);
    const landedButLost = { name: name('publish') };
    lambda.on(UpdateAliasCommand, { FunctionName: landedButLost.name }).callsFake((input: UpdateAliasCommandInput) => {
      setAlias(landedButLost.name, { weights: input.RoutingConfig!.AdditionalVersionWeights!, RevisionId: 'rev-after' });
      throw new PreconditionFailedException({ message: 'revision changed', $metadata: {} });
    });

    const run = await release('shift', '--stage', 'dev', '--weight', '0.5');

    expect(run.code).toBe(0);
    expect(updates()).toHaveLength(ALL.length);
    expect(run.out).toContain('moved cablecar-dev-publish');
  });

  it('reports an alias changed by someone else since it was read as not moved', async () => {
    stageAt(4, 0.1);
    lambda.on(UpdateAliasCommand, { FunctionName: name('connect') }).callsFake(() => {
      setAlias(name('connect'), { weights: { '5': 0.2 }, RevisionId: 'rev-someone-else' });
      throw new PreconditionFailedException({ message: 'revision changed', $metadata: {} });
    });

    const run = await release('shift', '--stage', 'dev', '--weight', '0.5');

    expect(run.code).toBe(3);
    expect(run.err).toContain('FAILED on cablecar-dev-connect: the alias changed since it was read');
    expect(run.err).toContain('cablecar-dev-connect is now at 4 (80%) + 5 (20%)');
    expect(run.err).toContain('Moved: none.');
    expect(updates()).toHaveLength(1);
  });
});

describe('output that cannot be written (Lambda and CodeDeploy APIs mocked)', () => {
  it('stdout closed after two lines (| head -2): stops, exit 3, and stderr reports what moved', async () => {
    stageAt(4, 0.1);
    const run = await releaseWithOutput(2, 'shift', '--stage', 'dev', '--weight', '0.5');
    expect(run.code).toBe(3);
    // The header and the first move were written; the second move's line failed, so no third move.
    expect(updates().map((u) => u.FunctionName)).toEqual([name('connect'), name('disconnect')]);
    expect(run.err).toContain('STOPPED: the output could not be written (write EPIPE)');
    expect(run.err).toContain('Moved (2): cablecar-dev-connect, cablecar-dev-disconnect');
    expect(run.err).toContain('aws lambda update-alias --function-name cablecar-dev-fanout');
  });

  it('stdout closed before the first move: refused, nothing changed', async () => {
    stageAt(4, 0.1);
    const run = await releaseWithOutput(0, 'promote', '--stage', 'dev');
    expect(run.code).toBe(1);
    expect(run.err).toContain('Nothing was changed');
    expect(updates()).toEqual([]);
  });
});

describe('an alias reversed by hand (Lambda and CodeDeploy APIs mocked)', () => {
  // fanout's newer version 5 is its stable one with 90 %, the older 4 gets 10 %: the others send 10 % to 5.
  const reverseFanout = () => {
    stageAt(4, 0.1);
    setAlias(name('fanout'), { FunctionVersion: '5', weights: { '4': 0.1 } });
  };

  it.each([[['promote']], [['shift', '--weight', '0.5']], [['shift', '--weight', '0.5', '--to', 'latest-published']]])(
    '%j refuses, naming the reversed function, and updates no alias',
    async (argv) => {
      reverseFanout();
      const run = await release(...argv, '--stage', 'dev');
      expect(run.code).toBe(1);
      expect(run.err).toContain('cablecar-dev-fanout: its alias points the other way');
      expect(run.err).not.toContain('cablecar-dev-connect: its alias');
      expect(updates()).toEqual([]);
    },
  );

  it('rollback is still accepted', async () => {
    reverseFanout();
    expect((await release('rollback', '--stage', 'dev')).code).toBe(0);
  });
});

describe('release command line (AWS APIs mocked)', () => {
  it.each([
    [['frob', '--stage', 'dev']],
    [['status']],
    [['shift', '--stage', 'dev']],
    [['promote', '--stage', 'dev', '--to', '5']],
    [['rollback', '--stage', 'dev', '--weight', '0']],
    [['status', '--stage', 'dev', '--bogus']],
    [['status', '--stage', 'dev/x']],
  ])('%j is a usage error and calls no AWS API', async (argv) => {
    const run = await release(...argv);
    expect(run.code).toBe(2);
    expect(run.err).toContain('Usage: npm run release');
    expect(lambda.calls()).toHaveLength(0);
    expect(codeDeploy.calls()).toHaveLength(0);
  });

  it('--help documents --to and the CodeDeploy check', async () => {
    const run = await release('--help');
    expect(run.code).toBe(0);
    expect(run.out).toContain('--to latest-published');
    expect(run.out).toContain('Created, Queued, InProgress, Ready');
  });

  it('hands --region to the clients, and leaves the default chain alone without it', async () => {
    expect((await release('status', '--stage', 'dev', '--region', 'eu-west-3')).regions).toEqual(['eu-west-3']);
    expect((await release('status', '--stage', 'dev')).regions).toEqual([undefined]);
    await expect(createAwsReleaseClients('eu-west-3').lambda.config.region()).resolves.toBe('eu-west-3');
    await expect(createAwsReleaseClients('eu-west-3').codeDeploy.config.region()).resolves.toBe('eu-west-3');
  });
});
