/**
 * The CodeDeploy side of the release command: finds the deployments that may still move this
 * stage's aliases. How the stage's applications and groups are recognised is explained in
 * stageResources.ts.
 */

import { paginateListApplications, paginateListDeploymentGroups, paginateListDeployments, type CodeDeployClient } from '@aws-sdk/client-codedeploy';
import type { ActiveDeployment } from './releasePlan.js';
import { ACTIVE_DEPLOYMENT_STATUSES, isStageApplicationCandidate, isStageDeploymentGroup } from './stageResources.js';

export interface StageDeployments {
  /** `application/group` of every deployment group recognised as the stage's (empty: no CodeDeploy set-up found). */
  deploymentGroups: string[];
  active: ActiveDeployment[];
}

export async function findStageDeployments(codeDeploy: CodeDeployClient, stage: string): Promise<StageDeployments> {
  const applications: string[] = [];
  for await (const page of paginateListApplications({ client: codeDeploy }, {})) {
    applications.push(...(page.applications ?? []).filter((name) => isStageApplicationCandidate(name, stage)));
  }

  const groups: Array<{ applicationName: string; deploymentGroupName: string }> = [];
  for (const applicationName of applications) {
    for await (const page of paginateListDeploymentGroups({ client: codeDeploy }, { applicationName })) {
      for (const deploymentGroupName of page.deploymentGroups ?? []) {
        if (isStageDeploymentGroup(deploymentGroupName, stage)) groups.push({ applicationName, deploymentGroupName });
      }
    }
  }

  const active = await Promise.all(
    groups.map(async ({ applicationName, deploymentGroupName }) => {
      const deploymentIds: string[] = [];
      const pages = paginateListDeployments(
        { client: codeDeploy },
        { applicationName, deploymentGroupName, includeOnlyStatuses: [...ACTIVE_DEPLOYMENT_STATUSES] },
      );
      for await (const page of pages) deploymentIds.push(...(page.deployments ?? []));
      return deploymentIds.map((deploymentId) => ({ deploymentId, applicationName, deploymentGroupName }));
    }),
  );

  return { deploymentGroups: groups.map((g) => `${g.applicationName}/${g.deploymentGroupName}`), active: active.flat() };
}
