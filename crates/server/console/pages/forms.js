// The forms of the Keys page: limits (requests and tokens per minute, a spend cap per period),
// allowed models, owners; and the one-time display of a new key with its copy button. A form
// reads back into the admin API's own JSON (limits: {rpm, tpm, max_parallel, budgets: [...]}).

import { field, h, modal, toast } from '../ui.js';

export const PERIODS = [['day', 'Daily'], ['week', 'Weekly'], ['month', 'Monthly'], ['total', 'Lifetime']];

function numberInput(name, value, placeholder) {
  return h('input', { type: 'number', min: '0', step: 'any', name, value: value ?? '', placeholder, 'data-field': name });
}

/** Inputs for a Limits value; `read()` gives the Limits back (or throws a message). */
export function limitsFields(limits = {}) {
  const rpm = numberInput('rpm', limits.rpm, 'no limit');
  const tpm = numberInput('tpm', limits.tpm, 'no limit');
  const caps = new Map(PERIODS.map(([p]) => [p, numberInput(`budget_${p}`, (limits.budgets || []).find((b) => b.period === p)?.usd, '—')]));
  const nodes = [
    field('Requests per minute', rpm),
    field('Tokens per minute', tpm),
    h('div', { class: 'wide' }, h('div', { class: 'field' }, 'Spend caps (USD)',
      h('div', { class: 'form-grid quad' }, PERIODS.map(([p, label]) => field(label, caps.get(p)))))),
  ];
  const read = () => {
    const out = {};
    const whole = (input, name) => {
      if (input.value === '') return undefined;
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number`);
      return n;
    };
    const r = whole(rpm, 'Requests per minute');
    const t = whole(tpm, 'Tokens per minute');
    if (r !== undefined) out.rpm = r;
    if (t !== undefined) out.tpm = t;
    if (limits.max_parallel !== undefined) out.max_parallel = limits.max_parallel;
    out.budgets = [];
    for (const [period, input] of caps) {
      if (input.value === '') continue;
      const usd = Number(input.value);
      if (!Number.isFinite(usd) || usd < 0) throw new Error('a spend cap must be a positive amount');
      out.budgets.push({ usd, period });
    }
    return out;
  };
  return { nodes, read };
}

/** "gpt-4o, fast" -> ["gpt-4o", "fast"]; blank -> null (every model). */
export function parseModels(text) {
  const list = text.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
  return list.length ? list : null;
}

export function modelsInput(models) {
  return h('input', { type: 'text', name: 'models', 'data-field': 'models', value: (models || []).join(', '), placeholder: 'every model and route' });
}

export function ownerSelect(name, options, current, none = 'None') {
  const select = h('select', { name, 'data-field': name }, h('option', { value: '' }, none));
  for (const o of options) select.append(h('option', { value: o.id, selected: o.id === current }, o.name ? `${o.name} (${o.id})` : o.id));
  return select;
}

export function limitsSummary(limits) {
  const parts = [];
  if (!limits) return 'none';
  if (limits.rpm !== undefined) parts.push(`${limits.rpm} req/min`);
  if (limits.tpm !== undefined) parts.push(`${limits.tpm} tok/min`);
  if (limits.max_parallel !== undefined) parts.push(`${limits.max_parallel} parallel`);
  for (const b of limits.budgets || []) parts.push(`$${b.usd}/${b.period}`);
  return parts.length ? parts.join(' · ') : 'none';
}

/**
 * A form in a modal: `submit()` may throw (the message shows under the form) and resolves to
 * close it. Returns the modal.
 */
export function formModal({ title, fields, submitLabel, testid, submit }) {
  const error = h('div', { class: 'hidden', role: 'alert', 'data-testid': 'form-error' });
  const button = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'form-submit' }, submitLabel);
  const form = h('form', { class: 'form-grid' }, fields, h('div', { class: 'wide' }, error));
  const m = modal({ title, testid, body: form, foot: [h('button', { type: 'button', class: 'btn', onclick: () => m.close() }, 'Cancel'), button] });
  const run = async (e) => {
    e.preventDefault();
    button.disabled = true;
    try {
      await submit();
      m.close();
    } catch (err) {
      error.className = 'banner error';
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  };
  form.addEventListener('submit', run);
  button.addEventListener('click', run);
  return m;
}

/** Shows a new key once, with a copy button; the key leaves the page when this closes. */
export function showSecretOnce(title, record) {
  const secret = h('code', { 'data-testid': 'new-key-secret' }, record.key);
  const copy = h('button', {
    type: 'button', class: 'btn small', 'data-testid': 'copy-key',
    onclick: () => copyText(record.key).then(() => { copy.textContent = 'Copied'; }, () => toast('Select the key and copy it by hand')),
  }, 'Copy');
  const done = h('button', { type: 'button', class: 'btn primary', 'data-testid': 'new-key-done' }, 'I stored it');
  const m = modal({
    title, testid: 'new-key',
    body: [
      h('div', { class: 'banner warn' }, 'Store this key now: it is shown only once and cannot be shown again.'),
      h('div', { class: 'secret' }, secret, copy),
      h('dl', { class: 'kv' }, h('dt', {}, 'Key id'), h('dd', { class: 'mono' }, record.id), h('dt', {}, 'Prefix'), h('dd', { class: 'mono' }, record.prefix)),
    ],
    foot: [done],
  });
  done.addEventListener('click', () => m.close());
  record.key = null; // nothing else on the page keeps it
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = h('textarea', { class: 'hidden' }, text);
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

/** A yes/no question in a modal; resolves to true on confirm. */
export function confirmModal({ title, text, confirmLabel, danger = true, extra = [] }) {
  return new Promise((resolve) => {
    let answered = false;
    const yes = h('button', { type: 'button', class: danger ? 'btn danger' : 'btn primary', 'data-testid': 'confirm' }, confirmLabel);
    const m = modal({
      title, testid: 'confirm-dialog', body: [h('p', {}, text), extra],
      foot: [h('button', { type: 'button', class: 'btn', onclick: () => m.close() }, 'Cancel'), yes],
      onClose: () => { if (!answered) resolve(false); },
    });
    yes.addEventListener('click', () => { answered = true; m.close(); resolve(true); });
  });
}
