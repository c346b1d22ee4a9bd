// Without a cluster: every image the suite's manifests name is one src/images.ts builds, so a newer
// gateway-api (a new echo tag, a new backend image) fails here, naming the image, rather than as
// pods stuck in ErrImagePull on the Kubernetes tier.
import { noteSkip } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { goUnmet, imageFamily, referencedImages } from './images.ts';

describe.skipIf(noteSkip(goUnmet()) !== undefined)("the suite's images", () => {
  it('every image the manifests reference is one this harness builds', async () => {
    const names = await referencedImages();
    console.log(`images the suite references: ${names.join(', ')}`);
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => imageFamily(n) === undefined)).toEqual([]);
    // the three families are all used: one that is not is dead code here
    expect(new Set(names.map(imageFamily))).toEqual(new Set(['echo-basic', 'echo-advanced', 'coredns']));
  }, 120_000);

  it('names outside the three families are not taken for them', () => {
    expect(imageFamily('registry.k8s.io/gateway-api/echo-basic:v1.5.1')).toBe('echo-basic');
    expect(imageFamily('gcr.io/k8s-staging-gateway-api/echo-basic:v20240412')).toBeUndefined();
    expect(imageFamily('registry.k8s.io/coredns/coredns:v1.12.2')).toBe('coredns');
    expect(imageFamily('registry.k8s.io/gateway-api/echo-advanced-x:v1')).toBeUndefined();
  });
});
