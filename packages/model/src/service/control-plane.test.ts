import { describe, expect, it } from 'vitest';
import { controlPlaneServerName, controlPlaneTlsName } from './control-plane.ts';

describe('controlPlaneServerName', () => {
  it('names the control plane by its certificate name when dialled by IP', () => {
    expect(controlPlaneServerName('127.0.0.1:15012')).toBe(controlPlaneTlsName);
    expect(controlPlaneServerName('[::1]:15012')).toBe(controlPlaneTlsName);
  });
  it('leaves host names alone and prefers an explicit name', () => {
    expect(controlPlaneServerName('istiod.istio-system.svc:15012')).toBeUndefined();
    expect(controlPlaneServerName('weftd:15012')).toBeUndefined();
    expect(controlPlaneServerName('127.0.0.1:15012', 'weftd')).toBe('weftd');
  });
});
