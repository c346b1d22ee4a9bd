import { describe, expect, it } from 'vitest';
import { PilotMetrics } from './metrics.ts';

describe('PilotMetrics', () => {
  it('exposes each proxy type’s push, push-time and reject series at 0 before the first push, so rate() sees the first one', async () => {
    const text = await new PilotMetrics().registry.metrics();
    for (const type of ['cds', 'eds', 'lds', 'rds']) {
      expect(text).toMatch(new RegExp(`^pilot_xds_pushes\\{type="${type}"\\} 0$`, 'm'));
      expect(text).toMatch(new RegExp(`^pilot_xds_push_time_count\\{type="${type}"\\} 0$`, 'm'));
      expect(text).toMatch(new RegExp(`^pilot_total_xds_rejects\\{type="${type}"\\} 0$`, 'm'));
    }
  });
});
