// Quality: what users think of the answers and what the guardrails did. Average feedback score
// over time by model, route or feature (scores are whatever scale the apps send: thumbs as ±1,
// stars as 1–5), the table of those groups, and guardrail actions by guardrail and action,
// grounding checks included where they run.

import { bucketLabels, events, noneLabel, usage } from '../data.js';
import { buckets } from '../range.js';
import {
  badge, card, chart, clear, countAxis, csvButton, empty, failure, fmtInt, fmtPct, fmtScore, h, kpis,
  loading, PALETTE, segmented, table,
} from '../ui.js';

const view = { dim: 'model' };

const noFeedback = () => empty('No feedback in this range',
  'Apps rate answers with POST /v1/feedback, giving the x-request-id of the answer and a score.',
  `curl ${window.location.origin}/v1/feedback -H "authorization: Bearer $KEY" -d '{"request_id":"…","score":1}'`);

export default {
  title: 'Quality',
  subtitle: 'Feedback scores and guardrail actions',
  async render(root, ctx) {
    const top = h('div', {}, loading(2));
    const scores = h('div', {}, card({ title: 'Feedback score over time', body: loading(6) }));
    const guards = h('div', {}, card({ title: 'Guardrail actions', body: loading() }));
    root.append(top, scores, guards);
    const [total, ev] = await Promise.allSettled([usage(ctx.range, ''), events(ctx.range)]);
    if (!ctx.alive()) return;
    if (total.status === 'rejected') clear(top).append(failure(total.reason, 'the usage report'));
    else clear(top).append(summary(total.value.total, ev.value));
    drawScores(scores, ctx);
    clear(guards).append(guardrailCard(ev));
  },
};

function summary(t, ev) {
  const actions = ev ? ev.guardrails || [] : [];
  const count = (pred) => actions.filter(pred).reduce((n, a) => n + a.count, 0);
  return kpis([
    { id: 'feedback', label: 'Answers rated', value: fmtInt(t.feedback_count), hint: t.requests ? `${fmtPct(t.feedback_count / t.requests)} of requests` : null },
    { id: 'score', label: 'Average score', value: fmtScore(t.feedback_avg) },
    { id: 'guard-actions', label: 'Guardrail actions', value: fmtInt(count(() => true)) },
    { id: 'blocked', label: 'Blocked', value: fmtInt(count((a) => a.action === 'blocked')), tone: count((a) => a.action === 'blocked') ? 'bad' : null },
    { id: 'redacted', label: 'Redacted', value: fmtInt(count((a) => a.action === 'redacted')) },
  ]);
}

async function drawScores(holder, ctx) {
  const dim = view.dim;
  const bucket = ctx.range.bucket;
  const tools = [segmented([['model', 'Model'], ['route', 'Route'], ['feature', 'Feature']], dim, (d) => { view.dim = d; drawScores(holder, ctx); }, 'quality-dim')];
  let overTime; let groups;
  try {
    [overTime, groups] = await Promise.all([usage(ctx.range, `${dim},${bucket}`), usage(ctx.range, dim)]);
  } catch (e) {
    clear(holder).append(card({ title: 'Feedback score over time', tools, body: failure(e, 'feedback') }));
    return;
  }
  if (!ctx.alive()) return;
  const rows = groups.rows.filter((r) => r.requests > 0).sort((a, b) => b.feedback_count - a.feedback_count);
  const columns = [
    { key: dim, label: dim[0].toUpperCase() + dim.slice(1), value: (r) => r[dim] ?? noneLabel(dim) },
    { key: 'requests', label: 'Requests', num: true, fmt: fmtInt },
    { key: 'feedback_count', label: 'Rated', num: true, fmt: fmtInt },
    { key: 'feedback_avg', label: 'Average score', num: true, fmt: fmtScore },
    { key: 'error_rate', label: 'Error rate', num: true, fmt: fmtPct },
  ];
  if (!rows.some((r) => r.feedback_count > 0)) {
    const body = [noFeedback(), rows.length ? table({ columns, rows, testid: 'quality-table' }) : null];
    clear(holder).append(card({ title: 'Feedback score over time', tools, body, testid: 'scores' }));
    return;
  }
  const top = Math.max(1, ...rows.map((r) => Math.ceil(r.feedback_avg ?? 0)));
  const options = { scales: { y: { suggestedMin: 0, suggestedMax: top, grid: { color: '#eef0f3' } }, x: { grid: { display: false } } } };
  const body = [chart({ type: 'line', data: scoreSeries(overTime.rows, dim, ctx.range, bucket), options }, { testid: 'scores-chart' }),
    table({ columns, rows, testid: 'quality-table' })];
  clear(holder).append(card({
    title: 'Feedback score over time', desc: `Average score per ${bucket} by ${dim}; gaps are buckets nobody rated`,
    tools: [...tools, csvButton(`feedback-by-${dim}`, columns, rows)], body, testid: 'scores',
  }));
}

/** One line per group (the most rated first): its average score in each bucket. */
function scoreSeries(rows, dim, range, bucket) {
  const starts = buckets(range.from, range.to, bucket);
  const index = new Map(starts.map((t, i) => [t, i]));
  const series = new Map();
  for (const r of rows) {
    if (!r.feedback_count) continue;
    const name = r[dim] ?? noneLabel(dim);
    if (!series.has(name)) series.set(name, { data: new Array(starts.length).fill(null), rated: 0 });
    const s = series.get(name);
    const i = index.get(r.bucket_ms);
    if (i !== undefined) s.data[i] = r.feedback_avg;
    s.rated += r.feedback_count;
  }
  const ordered = [...series.entries()].sort((a, b) => b[1].rated - a[1].rated).slice(0, 8);
  return {
    labels: bucketLabels(starts, bucket),
    datasets: ordered.map(([label, s], i) => ({
      label, data: s.data, borderColor: PALETTE[i], backgroundColor: PALETTE[i], spanGaps: true, pointRadius: 3, borderWidth: 2, tension: 0.2,
    })),
  };
}

const ACTION_TONE = { blocked: 'bad', redacted: 'warn', restricted: 'warn', monitored: 'info', flagged: 'info' };

function guardrailCard(result) {
  if (result.status === 'rejected') return card({ title: 'Guardrail actions', body: failure(result.reason, 'guardrail actions') });
  const rows = result.value.guardrails || [];
  const columns = [
    { key: 'guardrail', label: 'Guardrail (category)' },
    { key: 'action', label: 'Action', cell: (r) => badge(r.action, ACTION_TONE[r.action]) },
    { key: 'count', label: 'Requests', num: true, fmt: fmtInt },
  ];
  if (!rows.length) {
    return card({
      title: 'Guardrail actions', testid: 'guardrails',
      body: empty('No guardrail acted in this range', 'Guardrails (PII, secrets, injection, grounding…) are set under guardrails: in the config; their blocks and redactions show here.'),
    });
  }
  const names = [...new Set(rows.map((r) => r.guardrail))];
  const actions = [...new Set(rows.map((r) => r.action))];
  const data = {
    labels: names,
    datasets: actions.map((a, i) => ({
      label: a, data: names.map((n) => rows.filter((r) => r.guardrail === n && r.action === a).reduce((s, r) => s + r.count, 0)),
      backgroundColor: a === 'blocked' ? '#ef4444' : a === 'redacted' ? '#f59e0b' : PALETTE[(i + 1) % PALETTE.length], stack: 'g', maxBarThickness: 28,
    })),
  };
  const options = { indexAxis: 'y', scales: { x: countAxis({ stacked: true }), y: { stacked: true, grid: { display: false } } } };
  const grounding = rows.some((r) => /ground/i.test(r.guardrail)) ? null
    : h('div', { class: 'banner info' }, 'Grounding scores appear here once a grounding guardrail runs on a route.');
  return card({
    title: 'Guardrail actions', desc: 'What each guardrail did to requests and answers, by category',
    tools: [csvButton('guardrails', columns, rows)], testid: 'guardrails',
    body: h('div', { class: 'grid-2' }, chart({ type: 'bar', data, options }, { short: true, testid: 'guardrails-chart' }),
      h('div', {}, table({ columns, rows, testid: 'guardrails-table' }), grounding)),
  });
}
