import { describe, expect, it } from 'vitest';
import { routingClaim } from './routing-claim.ts';

describe('routingClaim (Istio: jwt.ToRoutingClaim)', () => {
  it('reads the claim path of `.` and `[]` forms, case-insensitively on the prefix, and nothing else', () => {
    expect(routingClaim('@request.auth.claims.group')).toEqual(['group']);
    expect(routingClaim('@request.auth.claims.group.id')).toEqual(['group', 'id']);
    expect(routingClaim('@Request.Auth.Claims[group][id]')).toEqual(['group', 'id']);
    expect(routingClaim('@request.auth.claims[a.b]')).toEqual(['a.b']);
    for (const name of ['@request.auth.claims', '@request.auth.claims.', '@request.auth.claims[]', '@request.auth.claims-x', 'request.auth.claims.x', 'x-jwt-group']) {
      expect(routingClaim(name), name).toBeUndefined();
    }
  });
});
