// One request of the explorer: what it cost and how long it took, its attempts as the path it
// took (each failed attempt with its error class), guardrail actions, feedback, the stored
// bodies, and the replay form: the stored body sent again to another model, both answers shown
// side by side with their cost and latency. The replay is itself a recorded request.

import * as api from '../api.js';
import { keyDirectory, keyLabel, usage } from '../data.js';
import { DAY_MS } from '../range.js';
import { badge, card, clear, empty, failure, fmtInt, fmtMs, fmtScore, fmtTime, fmtUsd, h, kpis, loading } from '../ui.js';
import { pathBadges, statusBadge } from './requests.js';

export async function renderDetail(root, ctx, id) {
  const back = h('div', {}, h('a', { href: '#/requests', 'data-testid': 'back' }, '← All requests'));
  const holder = h('div', { class: 'stack' }, card({ title: 'Request', body: loading(6) }));
  root.append(back, holder);
  let r; let directory;
  try {
    [r, directory] = await Promise.all([api.get(`/admin/requests/${encodeURIComponent(id)}`), keyDirectory().catch(() => new Map())]);
  } catch (e) {
    const body = e.status === 404 ? empty('No such request', `No request “${id}” is in the log: it may be older than the retention, or the id is mistyped.`) : failure(e, 'the request');
    clear(holder).append(card({ title: 'Request', body }));
    return;
  }
  if (!ctx.alive()) return;
  clear(holder).append(
    kpis([
      { id: 'status', label: 'Status', value: r.status >= 200 && r.status < 300 ? `${r.status} OK` : String(r.status), hint: r.error_code || null, tone: r.status >= 400 ? 'bad' : 'ok' },
      { id: 'cost', label: 'Cost', value: fmtUsd(r.cost_usd) },
      { id: 'latency', label: 'Latency', value: fmtMs(r.latency_ms), hint: r.ttft_ms ? `first token ${fmtMs(r.ttft_ms)}` : null },
      { id: 'tokens', label: 'Tokens in / out', value: `${fmtInt(r.prompt_tokens)} / ${fmtInt(r.completion_tokens)}` },
      { id: 'attempts', label: 'Attempts', value: fmtInt((r.attempts || []).length || r.attempts), hint: r.fallbacks ? `${r.fallbacks} fallback` : 'no fallback' },
    ]),
    pathCard(r),
    h('div', { class: 'grid-2' }, facts(r, directory), h('div', { class: 'stack' }, guardCard(r), feedbackCard(r))),
    replayCard(r, ctx),
    bodiesCard(r),
  );
}

function pathCard(r) {
  const attempts = Array.isArray(r.attempts) ? r.attempts : [];
  if (!attempts.length) {
    const why = r.cache_hit ? 'Answered from the cache: no provider was called.'
      : r.error_code ? `Refused before any provider was called: ${r.error_code}.` : 'No provider was called.';
    return card({ title: 'Path', body: h('div', { class: 'muted' }, why), testid: 'path' });
  }
  const hops = [];
  attempts.forEach((a, i) => {
    if (i) hops.push(h('div', { class: 'arrow', 'aria-hidden': 'true' }, '→'));
    const failed = !!a.error_class || (a.status && a.status >= 400);
    hops.push(h('div', { class: 'hop ' + (failed ? 'failed' : 'served'), 'data-testid': 'hop' },
      h('div', { class: 'title' }, a.model || '—'),
      h('div', { class: 'meta' }, a.provider || ''),
      h('div', { class: 'meta' }, failed ? badge(a.error_class || `HTTP ${a.status}`, 'bad') : badge(a.status ? `${a.status} served` : 'served', 'ok'), ' ', fmtMs(a.latency_ms))));
  });
  const desc = r.fallbacks ? `Fell back ${r.fallbacks} time${r.fallbacks > 1 ? 's' : ''} before an answer` : attempts.length > 1 ? 'Retried before an answer' : 'Served on the first attempt';
  return card({ title: 'Path', desc, body: h('div', { class: 'path' }, hops), testid: 'path' });
}

function facts(r, directory) {
  const row = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '—')];
  const link = (id) => h('a', { href: '#/requests/' + encodeURIComponent(id), class: 'mono' }, id);
  return card({
    title: 'Details', testid: 'facts',
    body: h('dl', { class: 'kv' },
      row('Request id', h('span', { class: 'mono', 'data-testid': 'request-id' }, r.request_id)),
      row('Time (UTC)', fmtTime(r.at_ms, { seconds: true })),
      row('Status', statusBadge(r)),
      r.error_class ? row('Last failed attempt', badge(r.error_class, 'bad')) : null,
      row('Model', [r.model || '—', r.provider ? h('span', { class: 'muted' }, ` · ${r.provider}`) : null]),
      row('Route', r.route),
      row('Key', [keyLabel(directory, r.key_id), r.key_id && keyLabel(directory, r.key_id) !== r.key_id ? h('span', { class: 'muted mono' }, ` ${r.key_id}`) : null]),
      row('Team', r.team), row('User', r.user), row('Feature', r.feature),
      row('Path', pathBadges(r)),
      row('Cache', r.cache_hit ? 'hit' : 'miss'),
      r.replay_of ? row('Replay of', h('span', { 'data-testid': 'replay-of' }, link(r.replay_of))) : null,
      (r.replays || []).length ? row('Replays', h('span', { class: 'list' }, r.replays.map((id) => h('div', {}, link(typeof id === 'string' ? id : id.request_id))))) : null),
  });
}

function guardCard(r) {
  const actions = r.guard_actions || r.guardrail_actions || [];
  const body = actions.length
    ? h('ul', { class: 'plain' }, actions.map((a) => {
      const text = typeof a === 'string' ? a : [a.guardrail, a.action, a.detail].filter(Boolean).join(':');
      const [name, action, ...rest] = text.split(':');
      return h('li', {}, badge(action || 'acted', action === 'blocked' ? 'bad' : 'warn'), ' ', h('strong', {}, name), rest.length ? h('span', { class: 'muted mono' }, ' ' + rest.join(':')) : null);
    }))
    : h('div', { class: 'muted' }, 'No guardrail acted on this request.');
  return card({ title: 'Guardrail actions', body, testid: 'guard-actions' });
}

function feedbackCard(r) {
  const items = r.feedback || [];
  const body = items.length
    ? h('ul', { class: 'plain' }, items.map((f) => h('li', {}, h('strong', {}, `Score ${fmtScore(f.score)}`), f.comment ? ` — “${f.comment}”` : '', f.at_ms ? h('span', { class: 'muted' }, ` · ${fmtTime(f.at_ms)}`) : null)))
    : h('div', { class: 'muted' }, 'Nobody rated this answer. Apps send ratings to POST /v1/feedback with this request id.');
  return card({ title: 'Feedback', body, testid: 'feedback' });
}

function pretty(text) {
  if (text === null || text === undefined) return null;
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

function bodiesCard(r) {
  const req = pretty(r.request_body);
  const res = pretty(r.response_body);
  if (!req && !res) {
    return card({ title: 'Bodies', testid: 'bodies', body: h('div', { class: 'muted' }, 'Bodies are not kept for this route. Set record_bodies: true on a route to keep them (and to replay its requests).') });
  }
  return card({
    title: 'Bodies', testid: 'bodies',
    body: h('div', { class: 'grid-2' },
      h('div', {}, h('h3', { class: 'label-h' }, 'Request'), h('pre', { class: 'body' }, req || '—')),
      h('div', {}, h('h3', { class: 'label-h' }, 'Response'), h('pre', { class: 'body' }, res || '—'))),
  });
}

// ---- replay ------------------------------------------------------------------------------

function replayCard(r, ctx) {
  const stored = r.request_body !== null && r.request_body !== undefined;
  if (!ctx.admin) {
    return card({ title: 'Replay', testid: 'replay', body: h('div', { class: 'muted' }, 'Replaying sends a real request: it takes an admin session.') });
  }
  if (!stored) {
    return card({ title: 'Replay', testid: 'replay', body: h('div', { class: 'muted' }, 'This request’s body was not stored, so it cannot be replayed. Set record_bodies: true on its route to replay future requests.') });
  }
  const model = h('input', { type: 'text', name: 'model', list: 'replay-models', placeholder: 'model or route', 'data-testid': 'replay-model', required: true });
  const models = h('datalist', { id: 'replay-models' });
  const button = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'replay-submit' }, 'Replay');
  const result = h('div', { 'data-testid': 'replay-result' });
  const form = h('form', { class: 'replay-form' }, h('span', {}, 'Send this request again to'), model, models, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!model.value.trim()) return;
    button.disabled = true;
    button.textContent = 'Replaying…';
    clear(result).append(loading(3));
    try {
      const answer = await api.post(`/admin/requests/${encodeURIComponent(r.request_id)}/replay`, { model: model.value.trim() });
      clear(result).append(sideBySide(answer));
    } catch (err) {
      clear(result).append(failure(err, 'the replay'));
    } finally {
      button.disabled = false;
      button.textContent = 'Replay';
    }
  });
  fillModels(models);
  return card({
    title: 'Replay', desc: 'The stored request, sent through the gateway again with another model; the replay is recorded and linked to this one', testid: 'replay',
    body: [form, result],
  });
}

async function fillModels(list) {
  try {
    const to = Date.now();
    const report = await usage({ from: to - 30 * DAY_MS, to }, 'model,route', 500);
    const names = new Set();
    for (const row of report.rows) { if (row.model) names.add(row.model); if (row.route) names.add(row.route); }
    for (const n of [...names].sort()) list.append(h('option', { value: n }));
  } catch { /* suggestions only */ }
}

function sideBySide(answer) {
  const side = (title, s, testid) => h('div', { class: 'card answer-card', 'data-testid': testid },
    h('div', { class: 'card-head' }, h('h2', {}, title, h('span', { class: 'desc' }, s.model || '—')),
      s.request_id ? h('a', { href: '#/requests/' + encodeURIComponent(s.request_id), class: 'mono small-link' }, s.request_id) : null),
    h('div', { class: 'card-body' },
      h('div', { class: 'answer', 'data-testid': 'answer' }, s.answer ?? (s.error ? '' : '—')),
      s.error ? h('div', { class: 'banner error' }, typeof s.error === 'string' ? s.error : s.error.message || JSON.stringify(s.error)) : null,
      h('dl', { class: 'kv compact' },
        h('dt', {}, 'Cost'), h('dd', { 'data-testid': 'cost' }, fmtUsd(s.cost_usd)),
        h('dt', {}, 'Latency'), h('dd', {}, fmtMs(s.latency_ms)),
        s.status ? [h('dt', {}, 'Status'), h('dd', {}, String(s.status))] : null)));
  return h('div', { class: 'grid-2 replay-pair' }, side('Original', answer.original || {}, 'replay-original'), side('Replay', answer.replay || {}, 'replay-new'));
}
