// Requests: the request explorer. Filters (kept in the URL, so a view can be shared) over the
// request log with cursor paging; a request's detail — its attempts as the fallback path with
// each error, tokens, cost, latency, guardrail actions, feedback, bodies — and, where the body
// was stored, a replay against another model with both answers side by side.

import * as api from '../api.js';
import { keyDirectory, keyLabel, usage } from '../data.js';
import { DAY_MS } from '../range.js';
import {
  badge, card, clear, csvButton, empty, failure, fmtInt, fmtMs, fmtTime, fmtUsd, h, loading, table,
} from '../ui.js';
import { renderDetail } from './request_detail.js';

const FILTERS = [
  ['key', 'Key'], ['team', 'Team'], ['user', 'User'], ['feature', 'Feature'], ['model', 'Model'],
  ['provider', 'Provider'], ['route', 'Route'], ['error_class', 'Error class'],
];
const STATUSES = [['', 'Any status'], ['ok', 'Succeeded'], ['error', 'Failed'], ['400', '400'], ['401', '401'], ['403', '403'], ['429', '429 rate limited'], ['500', '500'], ['502', '502'], ['503', '503'], ['504', '504']];
const PAGE = 50;

export default {
  title: 'Requests',
  subtitle: 'Explore the request log, open a request, replay it',
  async render(root, ctx) {
    if (ctx.params[0]) return renderDetail(root, ctx, ctx.params[0]);
    return renderList(root, ctx);
  },
};

/** The HTTP status as a badge; `short` (the list) puts the error code on a line of its own. */
export function statusBadge(r, { short = false } = {}) {
  if (r.status === undefined || r.status === null) return badge('—');
  const ok = r.status >= 200 && r.status < 300;
  const tone = ok ? 'ok' : r.status === 429 ? 'warn' : 'bad';
  if (short) return h('span', {}, badge(String(r.status), tone), ok || !r.error_code ? null : h('span', { class: 'sub truncate narrow', title: r.error_code }, r.error_code));
  return badge(ok ? `${r.status} ok` : `${r.status} ${r.error_code || ''}`.trim(), tone);
}

async function renderList(root, ctx) {
  const filters = Object.fromEntries([...FILTERS.map(([k]) => k), 'status'].map((k) => [k, ctx.query.get(k) || '']));
  const form = await filterForm(filters, ctx);
  const results = h('div', {}, card({ title: 'Requests', body: loading(8) }));
  root.append(form, results);
  const state = { rows: [], next: null, directory: null };
  try {
    state.directory = await keyDirectory();
  } catch { state.directory = new Map(); }
  await loadPage(results, ctx, filters, state, null);
}

async function filterForm(filters, ctx) {
  const inputs = {};
  const lists = await suggestions();
  const cells = FILTERS.map(([name, label]) => {
    const list = lists[name];
    const input = h('input', { type: 'text', name, value: filters[name], 'data-filter': name, placeholder: 'any', list: list ? `list-${name}` : null });
    inputs[name] = input;
    return h('label', { class: 'field' }, label, input, list ? h('datalist', { id: `list-${name}` }, list.map((v) => h('option', { value: v }))) : null);
  });
  const status = h('select', { name: 'status', 'data-filter': 'status' }, STATUSES.map(([v, l]) => h('option', { value: v, selected: v === filters.status }, l)));
  inputs.status = status;
  const apply = (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, input] of Object.entries(inputs)) if (input.value.trim()) q.set(k, input.value.trim());
    const target = '#/requests' + (q.toString() ? '?' + q : '');
    if (window.location.hash === target) ctx.refresh();
    else window.location.hash = target;
  };
  const reset = () => { window.location.hash = '#/requests'; };
  const form = h('form', { class: 'filters', 'data-testid': 'filters' }, cells, h('label', { class: 'field' }, 'Status', status),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'apply-filters' }, 'Filter'),
      h('button', { type: 'button', class: 'btn', onclick: reset }, 'Clear')));
  form.addEventListener('submit', apply);
  return h('section', { class: 'card' }, form);
}

/** Values seen in the last 30 days, offered as completions in the filter fields. */
async function suggestions() {
  try {
    const to = Date.now();
    const report = await usage({ from: to - 30 * DAY_MS, to }, 'team,feature,model,provider,route', 500);
    const seen = (dim) => [...new Set(report.rows.map((r) => r[dim]).filter(Boolean))].sort();
    return { team: seen('team'), feature: seen('feature'), model: seen('model'), provider: seen('provider'), route: seen('route') };
  } catch {
    return {};
  }
}

async function loadPage(holder, ctx, filters, state, before) {
  let page;
  try {
    page = await api.get('/admin/requests', { ...filters, from: ctx.range.from, to: ctx.range.to, limit: PAGE, before });
  } catch (e) {
    clear(holder).append(card({ title: 'Requests', body: failure(e, 'requests') }));
    return;
  }
  if (!ctx.alive()) return;
  state.rows = state.rows.concat(page.rows || []);
  state.next = page.next || null;
  drawList(holder, ctx, filters, state);
}

function drawList(holder, ctx, filters, state) {
  const d = state.directory;
  const open = (r) => { window.location.hash = '#/requests/' + encodeURIComponent(r.request_id); };
  const columns = [
    { key: 'at_ms', label: 'Time (UTC)', fmt: (v) => fmtTime(v, { seconds: true }) },
    { key: 'status', label: 'Status', value: (r) => r.status, cell: (r) => statusBadge(r, { short: true }) },
    { key: 'model', label: 'Model', value: (r) => r.model || '', cell: (r) => h('span', {}, r.model || '—', h('span', { class: 'sub' }, [r.provider, r.route && r.route !== r.model ? `via ${r.route}` : null].filter(Boolean).join(' · '))) },
    { key: 'team', label: 'Team / feature', value: (r) => r.team || '', cell: (r) => h('span', {}, r.team || '—', h('span', { class: 'sub' }, r.feature || 'no feature')) },
    { key: 'feature', label: 'Feature', value: (r) => r.feature || '', cell: null, hidden: true },
    { key: 'key_id', label: 'Key', value: (r) => keyLabel(d, r.key_id), cell: (r) => h('span', { class: 'truncate narrow', title: r.key_id || '' }, keyLabel(d, r.key_id)) },
    { key: 'tokens', label: 'Tokens', num: true, value: (r) => (r.prompt_tokens || 0) + (r.completion_tokens || 0), cell: (r) => `${fmtInt(r.prompt_tokens)} / ${fmtInt(r.completion_tokens)}` },
    { key: 'cost_usd', label: 'Cost', num: true, fmt: fmtUsd },
    { key: 'latency_ms', label: 'Latency', num: true, fmt: fmtMs },
    { key: 'path', label: 'Path', value: (r) => `${r.attempts} attempts, ${r.fallbacks} fallbacks`, cell: pathBadges },
  ];
  const tools = [csvButton('requests', columns.concat([{ key: 'request_id', label: 'Request id' }]), state.rows)];
  const shown = columns.filter((c) => !c.hidden);
  if (!state.rows.length) {
    const filtered = Object.values(filters).some(Boolean);
    const body = filtered ? empty('No request matches these filters', 'Clear a filter or widen the range in the top right.')
      : empty('No requests in this range', 'Send one with curl, or widen the range in the top right.',
        `curl ${window.location.origin}/v1/chat/completions -H "authorization: Bearer $KEY" -d '{"model":"…","messages":[{"role":"user","content":"hi"}]}'`);
    clear(holder).append(card({ title: 'Requests', body, testid: 'requests' }));
    return;
  }
  const more = state.next ? h('div', { class: 'more' }, h('button', {
    type: 'button', class: 'btn', 'data-testid': 'load-more',
    onclick: (e) => { e.target.disabled = true; loadPage(holder, ctx, filters, state, state.next); },
  }, `Load ${PAGE} more`)) : null;
  clear(holder).append(card({
    title: 'Requests', desc: `${fmtInt(state.rows.length)} shown, newest first; click one to open it`, tools, flush: true, testid: 'requests',
    body: [table({ columns: shown, rows: state.rows, onRow: open, testid: 'requests-table' }), more],
  }));
}

export function pathBadges(r) {
  const attempts = Array.isArray(r.attempts) ? r.attempts.length : r.attempts;
  const out = [];
  if (r.cache_hit) out.push(badge('cache', 'ok'));
  if (r.fallbacks > 0) out.push(badge(r.fallbacks > 1 ? `fallback ×${r.fallbacks}` : 'fallback', 'warn'));
  else if (attempts > 1) out.push(badge(`${attempts} attempts`, 'warn'));
  if (r.replay_of) out.push(badge('replay', 'info'));
  if (!out.length) out.push(h('span', { class: 'muted' }, 'direct'));
  return h('span', { class: 'badges' }, out);
}
