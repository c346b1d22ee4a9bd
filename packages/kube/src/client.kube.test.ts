// The Kubernetes tier's smoke test: the harness gives a kubeconfig (KUBECONFIG, or kube-local
// brought up as root) and the API server answers through it.
import { VersionApi } from '@kubernetes/client-node';
import { kubeCluster, needsKube } from '@weft/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiServerOf, loadKubeConfig } from './client.ts';

const skip = needsKube();

describe.skipIf(skip !== undefined)('a real API server through a kubeconfig', () => {
  let kubeconfig: string;
  beforeAll(async () => {
    kubeconfig = await kubeCluster();
  }, 20 * 60_000);

  it('answers /version with a Kubernetes version', async () => {
    const kc = loadKubeConfig(kubeconfig);
    expect(apiServerOf(kc)).toMatch(/^https:\/\//);
    const v = await kc.makeApiClient(VersionApi).getCode();
    expect(v.major).toBe('1');
    expect(Number.parseInt(v.minor, 10)).toBeGreaterThanOrEqual(30);
  });
});
