// Small numeric helpers: percentiles and the formatting used in every table.

/** Percentile `p` (0..100) of numbers, nearest-rank; NaN for an empty list. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (p) => (n === 0 ? Number.NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n, p50: at(50), p99: at(99), max: n ? sorted[n - 1] : Number.NaN, mean: n ? sum / n : Number.NaN };
}

export const MiB = 1024 * 1024;

export function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "n/a";
  if (typeof value !== "number") return String(value);
  if (Math.abs(value) >= 1000 && digits <= 1) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(digits);
}

export const mib = (bytes, digits = 1) => fmt(bytes / MiB, digits);

/** "0.62x": ours / reference (or reference / ours when lower is better). */
export function ratio(ours, reference) {
  if (!Number.isFinite(ours) || !Number.isFinite(reference) || reference === 0) return Number.NaN;
  return ours / reference;
}

export const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : "n/a");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wall clock in ms with sub-ms precision, comparable across processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();
