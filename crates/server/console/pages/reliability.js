// Reliability: how the providers behave. Requests and the error rate over time by provider or
// model; error, retry and fallback rates per model with the error classes of failed attempts;
// latency and TTFT percentiles; requests refused by rate limits and budgets; and the live state
// of each deployment's circuit breaker and each provider's key pool (refreshed every 5 s).

import * as api from '../api.js';
import { events, keyDirectory, keyLabel, latency, perBucket, stacked, usage } from '../data.js';
import {
  badge, card, chart, clear, countAxis, csvButton, empty, failure, fmtInt, fmtMs, fmtPct, h, kpis,
  loading, segmented, table,
} from '../ui.js';
import { noTraffic } from './finance.js';

const view = { dim: 'provider' };
/** A request refused before routing (a limit, a guardrail) has no provider. */
const NOT_ROUTED = 'not routed';

export default {
  title: 'Reliability',
  subtitle: 'Errors, fallbacks, latency and live provider health',
  async render(root, ctx) {
    const top = h('div', {}, loading(2));
    const overTime = h('div', {}, card({ title: 'Requests and error rate', body: loading(6) }));
    const models = h('div', {}, card({ title: 'Errors, retries and fallbacks', body: loading() }));
    const pair = h('div', { class: 'grid-2' }, card({ title: 'Failed attempts by error class', body: loading() }), card({ title: 'Rejected by limits', body: loading() }));
    const lat = h('div', {}, card({ title: 'Latency and time to first token', body: loading() }));
    const liveState = h('div', {}, card({ title: 'Live provider state', body: loading() }));
    root.append(top, overTime, models, pair, lat, liveState);

    const [total, byModel, ev, latencyReport, byKey] = await Promise.allSettled([
      usage(ctx.range, ctx.range.bucket), usage(ctx.range, 'provider,model'), events(ctx.range),
      latency(ctx.range), Promise.all([usage(ctx.range, 'key'), keyDirectory()]),
    ]);
    if (!ctx.alive()) return;
    if (total.status === 'rejected') {
      clear(top).append(failure(total.reason, 'the usage report'));
    } else {
      clear(top).append(summary(total.value.total, latencyReport.value));
    }
    drawOverTime(overTime, ctx, total.value);
    clear(models).append(modelCard(byModel));
    clear(pair).append(attemptErrors(ev), rejections(byKey));
    clear(lat).append(latencyCard(latencyReport));
    drawLive(liveState, ctx);
  },
};

function summary(t, lat) {
  const p95 = lat && lat.rows && lat.rows.length ? Math.max(...lat.rows.map((r) => (r.latency ? r.latency.p95_ms : 0))) : null;
  return kpis([
    { id: 'requests', label: 'Requests', value: fmtInt(t.requests), hint: `${fmtInt(t.errors)} failed` },
    { id: 'error-rate', label: 'Error rate', value: fmtPct(t.error_rate), tone: t.error_rate > 0.05 ? 'bad' : null },
    { id: 'fallback-rate', label: 'Fallback rate', value: fmtPct(t.fallback_rate), hint: `${fmtInt(t.fallbacks)} fell back` },
    { id: 'retry-rate', label: 'Retry rate', value: fmtPct(t.retry_rate), hint: `${fmtInt(t.retried)} retried` },
    { id: 'rejected', label: 'Rejected by limits', value: fmtInt(t.rate_limited + t.budget_exceeded), hint: `${fmtInt(t.rate_limited)} rate · ${fmtInt(t.budget_exceeded)} budget` },
    { id: 'p95', label: 'Slowest p95 latency', value: fmtMs(p95), hint: 'slowest model' },
  ]);
}

async function drawOverTime(holder, ctx, total) {
  const bucket = ctx.range.bucket;
  const tools = [segmented([['provider', 'Provider'], ['model', 'Model']], view.dim, (d) => { view.dim = d; drawOverTime(holder, ctx, total); }, 'reliability-dim')];
  let report;
  try {
    report = await usage(ctx.range, `${view.dim},${bucket}`);
  } catch (e) {
    clear(holder).append(card({ title: 'Requests and error rate', tools, body: failure(e, 'requests over time') }));
    return;
  }
  if (!ctx.alive()) return;
  if (!report.rows.some((r) => r.requests > 0)) {
    clear(holder).append(card({ title: 'Requests and error rate', tools, body: noTraffic() }));
    return;
  }
  const series = stacked(report.rows, view.dim, 'requests', ctx.range, bucket);
  const errors = perBucket(total ? total.rows : [], ctx.range, bucket, (r) => (r.error_rate ?? 0) * 100);
  series.datasets.push({ type: 'line', label: 'Error rate', data: errors.values, borderColor: '#ef4444', backgroundColor: '#ef4444', yAxisID: 'pct', pointRadius: 3, spanGaps: true, borderWidth: 2, order: 0 });
  for (const d of series.datasets) if (d.type !== 'line') Object.assign(d, { order: 1, maxBarThickness: 48 });
  const options = {
    scales: {
      x: { stacked: true, grid: { display: false } }, y: countAxis({ stacked: true }),
      pct: { position: 'right', beginAtZero: true, suggestedMax: 10, grid: { display: false }, ticks: { callback: (v) => v + '%' } },
    },
  };
  clear(holder).append(card({ title: 'Requests and error rate', desc: `Requests stacked by ${view.dim}; the line is the share that failed`, tools, body: chart({ type: 'bar', data: series, options }, { testid: 'requests-chart' }), testid: 'requests-over-time' }));
}

function modelCard(result) {
  if (result.status === 'rejected') return card({ title: 'Errors, retries and fallbacks', body: failure(result.reason, 'the report by model') });
  const rows = result.value.rows.filter((r) => r.requests > 0);
  const columns = [
    { key: 'provider', label: 'Provider', value: (r) => r.provider ?? NOT_ROUTED },
    { key: 'model', label: 'Model', value: (r) => r.model ?? NOT_ROUTED },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
    { key: 'error_rate', label: 'Error rate', num: true, fmt: fmtPct },
    { key: 'retry_rate', label: 'Retry rate', num: true, fmt: fmtPct },
    { key: 'fallbacks', label: 'Fallbacks', num: true, fmt: fmtInt },
    { key: 'fallback_rate', label: 'Fallback rate', num: true, fmt: fmtPct },
    { key: 'rate_limited', label: 'Rate limited', num: true, fmt: fmtInt },
  ];
  const body = rows.length ? table({ columns, rows, testid: 'reliability-table' }) : noTraffic({ command: false });
  return card({
    title: 'Errors, retries and fallbacks', desc: 'By the provider and model that answered; a fallback is a request another model had to serve',
    tools: rows.length ? [csvButton('reliability', columns, rows)] : [], body, flush: true, testid: 'reliability',
  });
}

const CLASS_TONE = { rate_limited: 'warn', timeout: 'warn', server_error: 'bad', overloaded: 'warn', auth: 'bad', connect: 'bad' };

function attemptErrors(result) {
  if (result.status === 'rejected') return card({ title: 'Failed attempts by error class', body: failure(result.reason, 'events') });
  const rows = result.value.attempt_errors || [];
  const columns = [
    { key: 'provider', label: 'Provider' },
    { key: 'model', label: 'Model' },
    { key: 'error_class', label: 'Error class', cell: (r) => badge(r.error_class, CLASS_TONE[r.error_class] || 'bad') },
    { key: 'count', label: 'Attempts', num: true, fmt: fmtInt },
  ];
  const body = rows.length ? table({ columns, rows, testid: 'attempt-errors' })
    : empty('No failed attempts', 'Every upstream attempt in this range succeeded. Retries and fallbacks will show their reasons here.');
  return card({ title: 'Failed attempts by error class', desc: 'Why retries and fallbacks happened', tools: rows.length ? [csvButton('attempt-errors', columns, rows)] : [], body, flush: true, testid: 'attempt-errors-card' });
}

function rejections(result) {
  if (result.status === 'rejected') return card({ title: 'Rejected by limits', body: failure(result.reason, 'rejections') });
  const [report, directory] = result.value;
  const rows = report.rows.filter((r) => r.rate_limited > 0 || r.budget_exceeded > 0);
  const columns = [
    { key: 'key', label: 'Key', value: (r) => keyLabel(directory, r.key) },
    { key: 'rate_limited', label: 'Rate limited', num: true, fmt: fmtInt },
    { key: 'budget_exceeded', label: 'Over budget', num: true, fmt: fmtInt },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
  ];
  const body = rows.length ? table({ columns, rows, testid: 'rejections' })
    : empty('No rejections', 'No request in this range hit a rate limit or a budget.');
  return card({ title: 'Rejected by limits', desc: '429s from key, user and team limits', tools: rows.length ? [csvButton('rejections', columns, rows)] : [], body, flush: true, testid: 'rejections-card' });
}

function latencyCard(result) {
  if (result.status === 'rejected') return card({ title: 'Latency and time to first token', body: failure(result.reason, 'latency') });
  const rows = result.value.rows || [];
  const p = (k, q) => (r) => (r[k] ? r[k][q] : null);
  const columns = [
    { key: 'provider', label: 'Provider' },
    { key: 'model', label: 'Model' },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
    { key: 'p50', label: 'p50', num: true, value: p('latency', 'p50_ms'), fmt: fmtMs },
    { key: 'p95', label: 'p95', num: true, value: p('latency', 'p95_ms'), fmt: fmtMs },
    { key: 'p99', label: 'p99', num: true, value: p('latency', 'p99_ms'), fmt: fmtMs },
    { key: 'ttft_p50', label: 'TTFT p50', num: true, value: p('ttft', 'p50_ms'), fmt: fmtMs },
    { key: 'ttft_p95', label: 'TTFT p95', num: true, value: p('ttft', 'p95_ms'), fmt: fmtMs },
    { key: 'ttft_p99', label: 'TTFT p99', num: true, value: p('ttft', 'p99_ms'), fmt: fmtMs },
  ];
  if (!rows.length) return card({ title: 'Latency and time to first token', body: noTraffic({ command: false }) });
  const labels = rows.map((r) => `${r.model} (${r.provider})`);
  const data = {
    labels,
    datasets: [['p50', '#a5b4fc'], ['p95', '#6366f1'], ['p99', '#3730a3']].map(([q, color]) => ({
      label: q, data: rows.map((r) => (r.latency ? r.latency[`${q}_ms`] : null)), backgroundColor: color, maxBarThickness: 14,
    })),
  };
  const options = { indexAxis: 'y', scales: { x: { beginAtZero: true, ticks: { callback: (v) => v + ' ms' }, grid: { color: '#eef0f3' } }, y: { grid: { display: false } } } };
  return card({
    title: 'Latency and time to first token', desc: 'Whole-request latency and TTFT (streams) percentiles per provider and model',
    tools: [csvButton('latency', columns, rows)], testid: 'latency',
    body: [chart({ type: 'bar', data, options }, { short: true, testid: 'latency-chart' }), table({ columns, rows, testid: 'latency-table' })],
  });
}

const BREAKER_TONE = { closed: 'ok', half_open: 'warn', open: 'bad' };
const KEY_TONE = { ready: 'ok', rejected: 'bad', out_of_quota: 'warn' };

async function drawLive(holder, ctx) {
  let health;
  try {
    health = await api.get('/admin/health');
  } catch (e) {
    if (ctx.alive()) clear(holder).append(card({ title: 'Live provider state', body: failure(e, 'health') }));
    return;
  }
  if (!ctx.alive()) return;
  const deployments = Object.entries(health.deployments || {}).map(([name, d]) => ({ name, ...d }));
  const keys = [];
  for (const [provider, p] of Object.entries(health.providers || {})) {
    for (const k of p.keys || []) keys.push({ provider, ...k });
  }
  const depColumns = [
    { key: 'name', label: 'Deployment', cell: (r) => h('span', {}, r.name, h('span', { class: 'sub' }, `${r.provider} · ${r.upstream_model || ''}`)) },
    { key: 'breaker', label: 'Breaker', cell: (r) => badge(r.breaker.replace('_', '-'), BREAKER_TONE[r.breaker]) },
    { key: 'in_flight', label: 'In flight', num: true, fmt: fmtInt },
    { key: 'window_requests', label: 'Recent requests', num: true, fmt: fmtInt },
    { key: 'window_error_rate', label: 'Recent errors', num: true, fmt: fmtPct },
    { key: 'window_p95_ms', label: 'Recent p95', num: true, fmt: fmtMs },
    { key: 'times_opened', label: 'Times opened', num: true, fmt: fmtInt },
  ];
  const keyColumns = [
    { key: 'provider', label: 'Provider' },
    { key: 'key', label: 'Key', cell: (r) => h('span', { class: 'mono' }, r.key) },
    { key: 'state', label: 'State', cell: (r) => badge(r.state.replace(/_/g, ' '), KEY_TONE[r.state]) },
    { key: 'rate_limited', label: 'Rate limited on', wrap: true, value: (r) => Object.keys(r.rate_limited || {}).join(', ') || '—' },
  ];
  const body = [
    deployments.length ? table({ columns: depColumns, rows: deployments, testid: 'breakers' }) : empty('No deployments', 'Add models to the config to see their breakers.'),
    keys.length ? h('div', {}, h('h3', { class: 'pad-h' }, 'Provider key pools'), table({ columns: keyColumns, rows: keys, testid: 'key-pools' })) : null,
  ];
  clear(holder).append(card({ title: 'Live provider state', desc: 'Circuit breakers and key pools of this replica, refreshed every 5 seconds', body, flush: true, testid: 'live' }));
  setTimeout(() => { if (ctx.alive()) drawLive(holder, ctx); }, 5000);
}
