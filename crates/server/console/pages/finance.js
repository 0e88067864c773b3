// Finance: what the gateway's traffic cost. Spend over time stacked by team, feature or model
// (hour or day buckets), the table of those groups with a CSV export, top spending keys, every
// budget against its cap with its reset date, tokens in and out, and what the cache saved.

import * as api from '../api.js';
import { keyDirectory, keyLabel, noneLabel, perBucket, stacked, usage } from '../data.js';
import {
  bar, card, chart, clear, countAxis, csvButton, empty, failure, fmtDay, fmtInt, fmtPct, fmtUsd,
  h, kpis, loading, moneyAxis, segmented, table,
} from '../ui.js';

const view = { dim: 'team', bucket: null };

/** The empty state of a range without traffic; `command`: show the curl line (the page's first card). */
export const noTraffic = ({ command = true } = {}) => empty('No requests in this range',
  command ? 'Send one through the gateway with curl, or widen the range in the top right.' : 'Widen the range in the top right.',
  command ? `curl ${window.location.origin}/v1/chat/completions -H "authorization: Bearer $KEY" -d '{"model":"…","messages":[{"role":"user","content":"hi"}]}'` : null);

export default {
  title: 'Finance',
  subtitle: 'Spend, tokens, budgets and cache savings',
  async render(root, ctx) {
    const top = h('div', {}, loading(2));
    const spend = h('div', {}, card({ title: 'Spend over time', body: loading(6) }));
    const side = h('div', { class: 'grid-2' }, card({ title: 'Top spenders', body: loading() }), card({ title: 'Budgets', body: loading() }));
    const tokens = h('div', {}, card({ title: 'Tokens and cache savings', body: loading(5) }));
    root.append(top, spend, side, tokens);

    let total;
    try {
      total = await usage(ctx.range, ctx.range.bucket);
    } catch (e) {
      clear(top).append(failure(e, 'the usage report'));
      return;
    }
    if (!ctx.alive()) return;
    clear(top).append(summary(total.total));
    drawSpend(spend, ctx);
    drawSide(side, ctx);
    clear(tokens).append(tokenCard(total, ctx));
  },
};

function summary(t) {
  return kpis([
    { id: 'spend', label: 'Spend', value: fmtUsd(t.cost_usd), hint: `${fmtInt(t.requests)} requests` },
    { id: 'avg-cost', label: 'Average per request', value: t.requests ? fmtUsd(t.cost_usd / t.requests) : '—' },
    { id: 'tokens-in', label: 'Tokens in', value: fmtInt(t.prompt_tokens), hint: 'prompt' },
    { id: 'tokens-out', label: 'Tokens out', value: fmtInt(t.completion_tokens), hint: 'completion' },
    { id: 'cache-saved', label: 'Saved by the cache', value: fmtUsd(t.cache_saved_usd), hint: t.requests ? `${fmtPct(t.cache_hit_rate)} of requests hit` : 'no requests', tone: t.cache_saved_usd > 0 ? 'ok' : null },
  ]);
}

async function drawSpend(holder, ctx) {
  const bucket = view.bucket || ctx.range.bucket;
  const redraw = () => { if (ctx.alive()) drawSpend(holder, ctx); };
  const tools = [
    segmented([['team', 'Team'], ['feature', 'Feature'], ['model', 'Model']], view.dim, (d) => { view.dim = d; redraw(); }, 'spend-dim'),
    segmented([['hour', 'Hourly'], ['day', 'Daily']], bucket, (b) => { view.bucket = b; redraw(); }, 'spend-bucket'),
  ];
  const dim = view.dim;
  let overTime; let groups;
  try {
    [overTime, groups] = await Promise.all([usage(ctx.range, `${dim},${bucket}`), usage(ctx.range, dim)]);
  } catch (e) {
    clear(holder).append(card({ title: 'Spend over time', tools, body: failure(e, 'spend') }));
    return;
  }
  if (!ctx.alive()) return;
  const rows = groups.rows.filter((r) => r.requests > 0 || r.cost_usd > 0);
  const columns = [
    { key: dim, label: dim[0].toUpperCase() + dim.slice(1), value: (r) => r[dim] ?? noneLabel(dim) },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
    { key: 'prompt_tokens', label: 'Tokens in', num: true, fmt: fmtInt },
    { key: 'completion_tokens', label: 'Tokens out', num: true, fmt: fmtInt },
    { key: 'cache_saved_usd', label: 'Cache savings', num: true, fmt: fmtUsd },
    { key: 'cost_usd', label: 'Spend', num: true, fmt: fmtUsd },
    { key: 'share', label: 'Share', num: true, value: (r) => (groups.total.cost_usd ? r.cost_usd / groups.total.cost_usd : null), fmt: fmtPct, csv: false },
  ];
  if (!rows.length) {
    clear(holder).append(card({ title: 'Spend over time', tools, body: noTraffic(), testid: 'spend' }));
    return;
  }
  const series = stacked(overTime.rows, dim, 'cost_usd', ctx.range, bucket);
  const body = [
    chart({ type: 'bar', data: { ...series, datasets: series.datasets.map((d) => ({ ...d, maxBarThickness: 48 })) }, options: { scales: { x: { stacked: true, grid: { display: false } }, y: { ...moneyAxis(), stacked: true } }, plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmtUsd(c.parsed.y)}` } } } } }, { testid: 'spend-chart' }),
    table({ columns, rows, total: { [dim]: 'Total', ...groups.total }, testid: 'spend-table' }),
  ];
  clear(holder).append(card({
    title: 'Spend over time', desc: `Stacked by ${dim}, ${bucket === 'hour' ? 'per hour' : 'per day'}; the table sums the whole range.`,
    tools: [...tools, csvButton(`spend-by-${dim}`, columns, rows)], body, testid: 'spend', flush: false,
  }));
}

async function drawSide(holder, ctx) {
  const [spenders, budgets] = await Promise.allSettled([
    Promise.all([usage(ctx.range, 'key', 10), keyDirectory(true)]),
    api.get('/admin/budgets'),
  ]);
  if (!ctx.alive()) return;
  clear(holder).append(topSpenders(spenders), budgetCard(budgets));
}

function topSpenders(result) {
  if (result.status === 'rejected') return card({ title: 'Top spenders', body: failure(result.reason, 'top spenders') });
  const [report, directory] = result.value;
  const rows = report.rows.filter((r) => r.cost_usd > 0);
  const max = Math.max(...rows.map((r) => r.cost_usd), 0);
  const columns = [
    { key: 'key', label: 'Key', value: (r) => keyLabel(directory, r.key), cell: (r) => h('span', {}, keyLabel(directory, r.key), h('span', { class: 'sub mono' }, r.key || 'no key')) },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
    { key: 'share', label: '', csv: false, cell: (r) => bar(max ? r.cost_usd / max : 0, { alarm: false }) },
    { key: 'cost_usd', label: 'Spend', num: true, fmt: fmtUsd },
  ];
  const body = rows.length ? table({ columns, rows, testid: 'top-spenders' })
    : empty('No spend yet', 'Keys appear here once they send requests in this range.');
  return card({ title: 'Top spenders', desc: 'The ten keys that spent most in this range', tools: rows.length ? [csvButton('top-spenders', columns, rows)] : [], body, flush: true, testid: 'top-spenders-card' });
}

function budgetCard(result) {
  if (result.status === 'rejected') return card({ title: 'Budgets', body: failure(result.reason, 'budgets') });
  const rows = result.value.data || result.value.budgets || result.value || [];
  const columns = [
    { key: 'name', label: 'Budget', value: (r) => r.name || r.id, cell: (r) => h('span', {}, r.name || r.id, h('span', { class: 'sub' }, `${r.scope} · ${r.window}`)) },
    { key: 'used', label: 'Used', csv: false, cell: (r) => bar(r.limit_usd ? r.spent_usd / r.limit_usd : 0) },
    { key: 'spent_usd', label: 'Spent', num: true, fmt: fmtUsd },
    { key: 'limit_usd', label: 'Cap', num: true, fmt: fmtUsd },
    { key: 'resets_at_ms', label: 'Resets', value: (r) => r.resets_at_ms, fmt: (v) => (v ? fmtDay(v) : 'never') },
  ];
  const body = rows.length ? table({ columns, rows, testid: 'budgets' })
    : empty('No budgets set', 'Give a key, user or team a spend cap on the Keys page (limits → budget) to see its consumption here.');
  return card({ title: 'Budgets', desc: 'Spend against each cap in its current window', tools: rows.length ? [csvButton('budgets', columns, rows)] : [], body, flush: true, testid: 'budgets-card' });
}

function tokenCard(report, ctx) {
  const bucket = ctx.range.bucket;
  const rows = report.rows.filter((r) => r.requests > 0);
  if (!rows.length) return card({ title: 'Tokens and cache savings', body: noTraffic({ command: false }), testid: 'tokens' });
  const tokensIn = perBucket(report.rows, ctx.range, bucket, (r) => r.prompt_tokens);
  const tokensOut = perBucket(report.rows, ctx.range, bucket, (r) => r.completion_tokens);
  const saved = perBucket(report.rows, ctx.range, bucket, (r) => r.cache_saved_usd);
  const saving = report.total.cache_saved_usd > 0;
  const data = {
    labels: tokensIn.labels,
    datasets: [
      { type: 'bar', label: 'Tokens in', data: tokensIn.values, backgroundColor: '#4f46e5', stack: 't', yAxisID: 'y', maxBarThickness: 48 },
      { type: 'bar', label: 'Tokens out', data: tokensOut.values, backgroundColor: '#a5b4fc', stack: 't', yAxisID: 'y', maxBarThickness: 48 },
    ],
  };
  const scales = { x: { stacked: true, grid: { display: false } }, y: countAxis({ stacked: true }) };
  if (saving) {
    data.datasets.unshift({ type: 'line', label: 'Cache savings', data: saved.values, borderColor: '#10b981', backgroundColor: '#10b981', yAxisID: 'usd', pointRadius: 3, spanGaps: true, order: 0 });
    scales.usd = { ...moneyAxis(), position: 'right', grid: { display: false } };
  }
  const columns = [
    { key: bucket, label: bucket === 'hour' ? 'Hour (UTC)' : 'Day (UTC)', value: (r) => r[bucket] },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
    { key: 'prompt_tokens', label: 'Tokens in', num: true, fmt: fmtInt },
    { key: 'completion_tokens', label: 'Tokens out', num: true, fmt: fmtInt },
    { key: 'cache_hits', label: 'Cache hits', num: true, fmt: fmtInt },
    { key: 'cache_saved_usd', label: 'Cache savings', num: true, fmt: fmtUsd },
    { key: 'cost_usd', label: 'Spend', num: true, fmt: fmtUsd },
  ];
  const sorted = [...rows].sort((a, b) => b.bucket_ms - a.bucket_ms);
  return card({
    title: 'Tokens and cache savings', desc: 'Prompt and completion tokens per bucket, and the spend the cache avoided',
    tools: [csvButton('tokens', columns, sorted)], testid: 'tokens',
    body: [
      chart({ type: 'bar', data, options: { scales } }, { testid: 'tokens-chart' }),
      table({ columns, rows: sorted, scroll: true, testid: 'tokens-table' }),
    ],
  });
}
