// Day-2 operations through the kube driver (day2.ts): a rolling restart of reviews-v2 and the weftd
// pod deleted, each during a bounded loop of product-page loads that must not lose one (the counts
// are printed), and pods whose sidecar cannot become ready getting no traffic. The driver installs
// Weft cluster-wide (webhooks with failurePolicy Fail, CRDs) and the weftd test stops weftd behind
// them, so the whole file holds the exclusive cluster lock.
import { holdClusterLock, needsKube, noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { day2Scenarios } from './day2.ts';
import { type KubeDriver, kubeDriverSkipReason, startKubeDriver } from './kube-driver.ts';

const skip = needsKube() ?? noteSkip(kubeDriverSkipReason());

describe.skipIf(skip !== undefined)('BookInfo day 2 on a Kubernetes cluster: rollout, weftd restart, unready sidecars', () => {
  let release: (() => Promise<void>) | undefined;
  let driver: KubeDriver | undefined;
  const get = () => {
    if (!driver) throw new Error('the mesh did not start');
    return driver;
  };
  beforeAll(async () => {
    release = await holdClusterLock('exclusive');
    driver = await startKubeDriver();
  }, 60 * 60_000);
  afterAll(async () => {
    try {
      await driver?.stop();
    } finally {
      await release?.();
    }
  }, 15 * 60_000);

  day2Scenarios(get);

  it('stopping the mesh leaves nothing behind', async () => {
    expect((await get().leftovers()).length).toBeGreaterThan(0);
    await get().stop();
    expect(await get().leftovers()).toEqual([]);
  }, 15 * 60_000);
});
