// Report queries and the shaping the charts share: usage by a dimension over time buckets,
// turned into stacked series (the biggest groups, the rest as "Other"), bucket labels, and the
// names of keys for rows grouped by key id.

import * as api from './api.js';
import { buckets, DAY_MS } from './range.js';
import { PALETTE } from './ui.js';

export const NONE = '(none)';

/** What a row without a value of `dim` stands for: a request with no team, or refused before routing. */
export function noneLabel(dim) {
  return { team: 'no team', user: 'no user', feature: 'no feature', key: 'no key', route: 'no route', model: 'not routed', provider: 'not routed' }[dim] || NONE;
}

/** GET /admin/reports/usage over the page's range. */
export function usage(range, groupBy, limit) {
  return api.get('/admin/reports/usage', { group_by: groupBy, from: range.from, to: range.to, limit });
}

export function latency(range) {
  return api.get('/admin/reports/latency', { from: range.from, to: range.to });
}

export function events(range) {
  return api.get('/admin/reports/events', { from: range.from, to: range.to });
}

/** "14:00" within a day, "Nov 30 14:00" across days, "Nov 30" for day buckets. */
export function bucketLabels(starts, bucket) {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const multiDay = starts.length > 0 && starts[starts.length - 1] - starts[0] >= DAY_MS;
  return starts.map((t) => {
    const d = new Date(t);
    const day = `${months[d.getUTCMonth()]} ${d.getUTCDate()}`;
    if (bucket === 'day') return day;
    const hour = `${String(d.getUTCHours()).padStart(2, '0')}:00`;
    return multiDay ? `${day} ${hour}` : hour;
  });
}

/**
 * Stacked series of `metric` by `dim` over the buckets of the range, from rows grouped by
 * `dim,bucket`: at most `top` named series (largest total first), the rest summed as "Other".
 */
export function stacked(rows, dim, metric, range, bucket, { top = 7, colors = PALETTE, kind = 'bar', none = noneLabel(dim) } = {}) {
  const starts = buckets(range.from, range.to, bucket);
  const index = new Map(starts.map((t, i) => [t, i]));
  const totals = new Map();
  for (const r of rows) {
    const name = r[dim] ?? none;
    totals.set(name, (totals.get(name) || 0) + (r[metric] || 0));
  }
  const names = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const kept = names.slice(0, top);
  const series = new Map(kept.map((n) => [n, new Array(starts.length).fill(0)]));
  if (names.length > top) series.set('Other', new Array(starts.length).fill(0));
  for (const r of rows) {
    const i = index.get(r.bucket_ms);
    if (i === undefined) continue;
    const name = r[dim] ?? none;
    const target = series.get(series.has(name) ? name : 'Other');
    target[i] += r[metric] || 0;
  }
  const datasets = [...series.entries()].map(([label, data], i) => ({
    label, data, backgroundColor: colors[i % colors.length], borderColor: colors[i % colors.length],
    borderWidth: kind === 'line' ? 2 : 0, stack: 'all', pointRadius: 0, tension: 0.25, fill: false,
  }));
  return { labels: bucketLabels(starts, bucket), datasets };
}

/** One value per bucket from rows grouped by the bucket alone. */
export function perBucket(rows, range, bucket, pick) {
  const starts = buckets(range.from, range.to, bucket);
  const byStart = new Map(rows.map((r) => [r.bucket_ms, r]));
  return { labels: bucketLabels(starts, bucket), starts, values: starts.map((t) => (byStart.has(t) ? pick(byStart.get(t)) : null)) };
}

let keyNames = null;

/** id -> {name, prefix} of every key (revoked too), fetched once per page view. */
export async function keyDirectory(fresh = false) {
  if (!keyNames || fresh) {
    const list = await api.get('/admin/keys', { include_revoked: true });
    keyNames = new Map((list.data || []).map((k) => [k.id, k]));
  }
  return keyNames;
}

export function keyLabel(directory, id) {
  if (!id) return NONE;
  const k = directory && directory.get(id);
  return k ? (k.name || k.prefix || id) : id;
}
