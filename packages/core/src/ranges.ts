/** The dashboard's time ranges, each counted back from now. */
export const RANGES = ['1h', '6h', '24h', '3d', '7d', '30d'] as const;
export type Range = (typeof RANGES)[number];

const HOUR = 3_600_000;

export const RANGE_MS: Record<Range, number> = {
  '1h': HOUR,
  '6h': 6 * HOUR,
  '24h': 24 * HOUR,
  '3d': 72 * HOUR,
  '7d': 168 * HOUR,
  '30d': 720 * HOUR,
};
