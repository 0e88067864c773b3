// The time range every page shows: last 24 hours, 7 days, 30 days or a custom span, kept across
// pages (and reloads, in sessionStorage: a range is not a secret). Times are UTC, like the
// report buckets. Also the time buckets of a range, so charts show hours or days with no data.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PRESETS = { '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY };
const STORE = 'switchyard.console.range';

let state = load();
const listeners = [];

function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE) || 'null');
    if (saved && (PRESETS[saved.preset] || (saved.preset === 'custom' && saved.from < saved.to))) return saved;
  } catch { /* a bad saved value: start from the default */ }
  return { preset: '7d' };
}

export function onRangeChange(fn) {
  listeners.push(fn);
}

export function setRange(next) {
  state = next;
  sessionStorage.setItem(STORE, JSON.stringify(state));
  listeners.forEach((fn) => fn(state));
}

export function rangeState() {
  return state;
}

/** {from, to} in epoch ms, and the natural bucket: hours up to two days, days beyond. */
export function currentRange() {
  let from; let to;
  if (state.preset === 'custom') {
    ({ from, to } = state);
  } else {
    // Whole hours: the reports round out to them anyway, and the chart ends on the current hour.
    to = Math.ceil(Date.now() / HOUR) * HOUR;
    from = to - PRESETS[state.preset];
  }
  return { from, to, bucket: to - from <= 2 * DAY ? 'hour' : 'day' };
}

export function rangeLabel() {
  const labels = { '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days' };
  if (labels[state.preset]) return labels[state.preset];
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  return `${day(state.from)} to ${day(state.to - 1)}`;
}

/** Start of every bucket of the range: the x axis of a chart over time. */
export function buckets(from, to, bucket) {
  const size = bucket === 'hour' ? HOUR : DAY;
  const out = [];
  for (let t = Math.floor(from / size) * size; t < to && out.length < 2000; t += size) out.push(t);
  return out;
}

export const HOUR_MS = HOUR;
export const DAY_MS = DAY;
