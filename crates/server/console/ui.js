// Building blocks of every page: an element builder that never parses HTML (data is always text,
// so nothing from the API can inject markup), number and time formats, KPI cards, tables with a
// CSV export, Chart.js charts, empty/loading/error states, modals and toasts.

/** h('div', {class: 'x', onclick: f, 'data-testid': 't'}, child, [children], 'text') */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'value') el.value = value;
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// ---- formats ---------------------------------------------------------------------------

const intFmt = new Intl.NumberFormat('en-US');

export function fmtInt(n) {
  return n === null || n === undefined ? '—' : intFmt.format(Math.round(n));
}

/** Dollars with as many digits as a small amount needs: $1,234 · $12.34 · $0.0421 · $0.000034. */
export function fmtUsd(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  let digits = 2;
  if (a === 0) digits = 2;
  else if (a < 0.01) digits = Math.min(8, 1 - Math.floor(Math.log10(a)) + 1); // three significant digits
  else if (a < 1) digits = 4;
  return (v < 0 ? '-$' : '$') + a.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtPct(fraction) {
  if (fraction === null || fraction === undefined) return '—';
  const p = fraction * 100;
  return (p !== 0 && Math.abs(p) < 0.1 ? p.toFixed(2) : p.toFixed(1)) + '%';
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 10000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms) + ' ms';
}

export function fmtScore(v) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(2);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n) => String(n).padStart(2, '0');

/** "Nov 30, 14:05" in UTC, the zone of every report bucket. */
export function fmtTime(ms, { seconds = false } = {}) {
  if (!ms) return '—';
  const d = new Date(ms);
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${seconds ? ':' + pad(d.getUTCSeconds()) : ''}`;
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${time}`;
}

/** "Dec 9", with the year only when it is not this year's. */
export function fmtDay(ms) {
  const d = new Date(ms);
  const year = d.getUTCFullYear() === new Date().getUTCFullYear() ? '' : `, ${d.getUTCFullYear()}`;
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}${year}`;
}

/** YYYY-MM-DD of the UTC day of `ms`, for a date input. */
export function fmtDateInput(ms) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

// ---- states ----------------------------------------------------------------------------

export function loading(lines = 4) {
  const rows = [];
  for (let i = 0; i < lines; i++) rows.push(h('div', { class: 'skeleton' }));
  return h('div', { class: 'card-body', 'data-state': 'loading', 'aria-busy': 'true' }, rows);
}

/** An empty state that says what to do: a title, a line, and optionally a command to copy. */
export function empty(title, text, command) {
  return h('div', { class: 'state', 'data-state': 'empty' },
    h('strong', {}, title), h('div', {}, text), command ? h('div', { class: 'mt' }, ' ', h('code', {}, command)) : null);
}

export function failure(error, what = 'this data') {
  const message = error && error.message ? error.message : String(error);
  return h('div', { class: 'state error', 'data-state': 'error' },
    h('strong', {}, `Could not load ${what}`), h('div', {}, message));
}

// ---- cards -------------------------------------------------------------------------------

export function kpis(items) {
  return h('div', { class: 'kpis' }, items.map((k) =>
    h('div', { class: 'kpi' + (k.tone ? ' ' + k.tone : ''), 'data-kpi': k.id || null },
      h('div', { class: 'label', title: k.label }, k.label),
      h('div', { class: 'value', title: String(k.value) }, k.value),
      k.hint ? h('div', { class: 'hint', title: k.hint }, k.hint) : null)));
}

export function card({ title, desc, tools = [], body, testid, flush = false }) {
  return h('section', { class: 'card', 'data-testid': testid || null },
    h('div', { class: 'card-head' }, h('h2', {}, title, desc ? h('span', { class: 'desc' }, desc) : null), tools),
    h('div', { class: 'card-body' + (flush ? ' flush' : '') }, body));
}

/** A segmented control; `on(value)` when another is chosen. */
export function segmented(options, current, on, testid) {
  const el = h('div', { class: 'seg', role: 'group', 'data-testid': testid || null });
  for (const [value, label] of options) {
    el.append(h('button', {
      type: 'button', class: value === current ? 'on' : null, 'data-value': value,
      onclick: () => { if (value !== current) on(value); },
    }, label));
  }
  return el;
}

export function badge(text, tone) {
  return h('span', { class: 'badge' + (tone ? ' ' + tone : '') }, text);
}

/** A bar filled to `fraction`; a consumption bar (`alarm`) turns amber at 80 % and red when full. */
export function bar(fraction, { alarm = true } = {}) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  const fill = h('span');
  fill.style.width = (f * 100).toFixed(1) + '%';
  return h('div', { class: 'bar' + (!alarm ? '' : f >= 1 ? ' bad' : f >= 0.8 ? ' warn' : '') }, fill);
}

// ---- tables ------------------------------------------------------------------------------

/**
 * A table. columns: [{key, label, num, fmt(value,row), value(row), cell(row) -> Node, csv: false}].
 * Each cell carries data-col and, for numbers, data-value (the raw figure) so that tests and the
 * CSV read what the API said, not the rounded text.
 */
export function table({ columns, rows, onRow, total, testid, scroll = false }) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.label)));
  const body = h('tbody');
  for (const row of rows) body.append(tableRow(columns, row, onRow));
  if (total) {
    const tr = tableRow(columns, total);
    tr.classList.add('total');
    body.append(tr);
  }
  return h('div', { class: 'table-wrap' + (scroll ? ' scroll' : '') },
    h('table', { 'data-testid': testid || null }, h('thead', {}, head), body));
}

function rawOf(c, row) {
  return c.value ? c.value(row) : row[c.key];
}

function tableRow(columns, row, onRow) {
  const tr = h('tr', { class: onRow ? 'clickable' : null });
  if (onRow) tr.addEventListener('click', (e) => { if (!e.target.closest('button, a')) onRow(row); });
  for (const c of columns) {
    const raw = rawOf(c, row);
    const shown = c.cell ? c.cell(row) : c.fmt ? c.fmt(raw, row) : raw ?? '—';
    tr.append(h('td', {
      class: [c.num ? 'num' : '', c.wrap ? 'wrap' : ''].join(' ').trim() || null,
      'data-col': c.key,
      'data-value': c.num && raw !== null && raw !== undefined ? raw : null,
    }, shown));
  }
  return tr;
}

/** A button that downloads `rows` as CSV with the table's columns (raw values, not formatted). */
export function csvButton(name, columns, rows) {
  return h('button', {
    type: 'button', class: 'btn small', 'data-testid': 'csv-' + name,
    onclick: () => download(`${name}.csv`, toCsv(columns.filter((c) => c.csv !== false), rows), 'text/csv'),
  }, '⤓ CSV');
}

export function toCsv(columns, rows) {
  const quote = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  const lines = [columns.map((c) => quote(c.label)).join(',')];
  for (const row of rows) lines.push(columns.map((c) => quote(rawOf(c, row))).join(','));
  return lines.join('\n') + '\n';
}

function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename, class: 'hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- charts ------------------------------------------------------------------------------

export const PALETTE = ['#4f46e5', '#0ea5e9', '#10b981', '#f59e0b', '#ef4444', '#8b5cf6', '#14b8a6', '#f472b6', '#94a3b8'];

const live = new Set();

/** Destroys every chart of the page being left. */
export function destroyCharts() {
  for (const c of live) c.destroy();
  live.clear();
}

/** A Chart.js chart in a box of fixed height; `config` is Chart.js's own. */
export function chart(config, { short = false, testid } = {}) {
  const canvas = h('canvas', { role: 'img', 'aria-label': testid || 'chart' });
  const box = h('div', { class: 'chart-box' + (short ? ' short' : ''), 'data-testid': testid || null }, canvas);
  if (!window.Chart) {
    box.append(h('div', { class: 'state' }, 'The chart library did not load; the table below has the figures.'));
    return box;
  }
  const base = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: 'index', intersect: false },
    plugins: { legend: { position: 'bottom', labels: { boxWidth: 10, boxHeight: 10, usePointStyle: false, font: { size: 12 } } } },
  };
  const options = merge(base, config.options || {});
  // Chart.js measures its parent: wait until the box is in the document.
  requestAnimationFrame(() => {
    if (!canvas.isConnected) return;
    live.add(new window.Chart(canvas, { ...config, options }));
  });
  return box;
}

function merge(a, b) {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' ? merge(a[k], v) : v;
  }
  return out;
}

/** An axis tick: two significant digits are enough to read a chart ($0.00045, $1.5, $120). */
export function fmtUsdTick(v) {
  if (!v) return '$0';
  const a = Math.abs(v);
  return (v < 0 ? '-$' : '$') + (a >= 100 ? Math.round(a).toLocaleString('en-US') : String(Number(a.toPrecision(2))));
}

export function moneyAxis() {
  return { beginAtZero: true, ticks: { callback: (v) => fmtUsdTick(v), maxTicksLimit: 6 }, grid: { color: '#eef0f3' } };
}

export function countAxis(extra = {}) {
  return { beginAtZero: true, ticks: { precision: 0 }, grid: { color: '#eef0f3' }, ...extra };
}

// ---- modal and toast ---------------------------------------------------------------------

/** Opens a modal; returns {close, body}. `onClose` runs however it closes. */
export function modal({ title, body, foot = [], testid, onClose }) {
  const close = () => {
    overlay.remove();
    document.removeEventListener('keydown', onKey);
    if (onClose) onClose();
  };
  const onKey = (e) => { if (e.key === 'Escape') close(); };
  const overlay = h('div', { class: 'overlay', onclick: (e) => { if (e.target === overlay) close(); } },
    h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'data-testid': testid || null },
      h('div', { class: 'modal-head' }, h('h2', {}, title),
        h('button', { type: 'button', class: 'btn link', 'aria-label': 'Close', onclick: close }, '✕')),
      h('div', { class: 'modal-body' }, body),
      foot.length ? h('div', { class: 'modal-foot' }, foot) : null));
  document.addEventListener('keydown', onKey);
  document.body.append(overlay);
  const first = overlay.querySelector('input, select, textarea');
  if (first) first.focus();
  return { close, overlay };
}

export function toast(text) {
  const el = h('div', { class: 'toast', role: 'status' }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 3000);
}

export function field(label, input, help) {
  return h('label', { class: 'field' }, label, input, help ? h('span', { class: 'help' }, help) : null);
}

// ---- icons -------------------------------------------------------------------------------

const ICONS = {
  finance: ['M4 20V11', 'M10 20V5', 'M16 20v-7', 'M21 20H3'],
  reliability: ['M2 12h4l3-8 4 16 3-8h6'],
  quality: ['M12 3l2.8 5.8 6.2.9-4.5 4.4 1.1 6.3L12 17.4l-5.6 3 1.1-6.3L3 9.7l6.2-.9z'],
  keys: ['M10.5 13.5a4.5 4.5 0 1 1-6.4 6.4 4.5 4.5 0 0 1 6.4-6.4z', 'M10.5 13.5L20 4', 'M16 8l3 3', 'M18 6l2 2'],
  requests: ['M9 6h12', 'M9 12h12', 'M9 18h12', 'M4 6h.01', 'M4 12h.01', 'M4 18h.01'],
  logo: ['M5 9h11l-3-3', 'M19 15H8l3 3'],
};

/** A line icon drawn with SVG paths (no icon font, no inline markup). */
export function icon(name, size = 18) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true' })) svg.setAttribute(k, v);
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

export function brand() {
  return h('div', { class: 'brand' }, h('div', { class: 'brand-mark' }, icon('logo', 18)), h('div', {}, 'Switchyard', h('small', {}, 'Console')));
}
