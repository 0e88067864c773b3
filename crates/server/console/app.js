// The console's entry point: resumes the session (or shows the sign-in form), draws the shell
// (left nav, header with the shared time-range picker, who is signed in) and routes #/page to
// the page modules. A page module exports {title, subtitle, render(container, ctx)}.

import * as api from './api.js';
import { currentRange, DAY_MS, onRangeChange, rangeLabel, rangeState, setRange } from './range.js';
import { brand, clear, destroyCharts, failure, fmtDateInput, h, icon, segmented } from './ui.js';
import finance from './pages/finance.js';
import reliability from './pages/reliability.js';
import quality from './pages/quality.js';
import keys from './pages/keys.js';
import requests from './pages/requests.js';
import { renderSignIn } from './pages/signin.js';

const PAGES = [
  ['finance', finance],
  ['reliability', reliability],
  ['quality', quality],
  ['keys', keys],
  ['requests', requests],
];

const root = document.getElementById('app');
let shell = null;

async function boot() {
  api.onSignedOut(() => showSignIn('Your session ended. Sign in again.'));
  try {
    const session = await api.resume();
    if (session) showShell();
    else showSignIn();
  } catch (e) {
    root.className = 'boot';
    clear(root).append(failure(e, 'the console session'));
  }
}

function showSignIn(notice) {
  shell = null;
  destroyCharts();
  root.className = '';
  clear(root);
  renderSignIn(root, { notice, onSignedIn: showShell });
}

function showShell() {
  root.className = '';
  clear(root);
  const session = api.currentSession();
  const nav = h('nav', { class: 'nav', 'aria-label': 'Console' },
    brand(),
    PAGES.map(([id, page]) => h('a', { href: '#/' + id, 'data-nav': id }, h('span', { class: 'nav-icon' }, icon(id)), page.title)),
    h('div', { class: 'nav-foot' },
      h('div', { class: 'who', 'data-testid': 'actor' }, session.actor),
      h('div', {}, session.role === 'admin' ? 'Administrator' : 'Read-only viewer'),
      h('button', { type: 'button', class: 'btn small', 'data-testid': 'sign-out', onclick: signOut }, 'Sign out')));
  const title = h('h1');
  const picker = h('div', { class: 'range', 'data-testid': 'range' });
  const content = h('main', { class: 'content', id: 'content' });
  root.append(h('div', { class: 'shell' }, nav, h('div', { class: 'main' }, h('header', { class: 'topbar' }, title, picker), content)));
  shell = { nav, title, picker, content };
  route();
}

async function signOut() {
  try {
    await api.signOut();
  } finally {
    showSignIn('You are signed out.');
  }
}

function drawPicker(page) {
  const el = clear(shell.picker);
  if (page.noRange) return;
  const s = rangeState();
  el.append(segmented([['24h', '24 h'], ['7d', '7 days'], ['30d', '30 days'], ['custom', 'Custom']], s.preset, (preset) => {
    if (preset !== 'custom') return setRange({ preset });
    const { from, to } = currentRange();
    setRange({ preset: 'custom', from: Math.floor(from / DAY_MS) * DAY_MS, to: Math.ceil(to / DAY_MS) * DAY_MS });
  }, 'range-presets'));
  if (s.preset === 'custom') {
    // Whole UTC days, the last one included: a custom range is for looking back, not for minutes.
    const from = h('input', { type: 'date', value: fmtDateInput(s.from), 'aria-label': 'First day (UTC)', 'data-testid': 'range-from' });
    const to = h('input', { type: 'date', value: fmtDateInput(s.to - 1), 'aria-label': 'Last day (UTC)', 'data-testid': 'range-to' });
    const apply = () => {
      const f = Date.parse(from.value + 'T00:00:00Z');
      const t = Date.parse(to.value + 'T00:00:00Z') + DAY_MS;
      if (Number.isFinite(f) && Number.isFinite(t) && f < t) setRange({ preset: 'custom', from: f, to: t });
    };
    el.append(h('div', { class: 'custom' }, from, '→', to, h('button', { type: 'button', class: 'btn small', onclick: apply }, 'Apply')));
  }
  el.append(h('span', { class: 'tz' }, 'UTC'));
}

function parseHash() {
  const [path, query = ''] = window.location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

function route() {
  if (!shell) return;
  const { parts, query } = parseHash();
  const entry = PAGES.find(([id]) => id === parts[0]);
  if (!entry) {
    window.location.replace('#/finance');
    return;
  }
  const [id, page] = entry;
  for (const a of shell.nav.querySelectorAll('a[data-nav]')) a.classList.toggle('active', a.dataset.nav === id);
  clear(shell.title).append(page.title, h('span', { class: 'sub' }, page.noRange ? page.subtitle : `${page.subtitle} · ${rangeLabel()}`));
  drawPicker(page);
  destroyCharts();
  const content = clear(shell.content);
  content.dataset.page = id;
  document.title = `${page.title} · Switchyard Console`;
  const ctx = {
    range: currentRange(),
    params: parts.slice(1),
    query,
    admin: api.isAdmin(),
    session: api.currentSession(),
    alive: () => shell && shell.content === content && content.dataset.page === id && content.isConnected,
    refresh: route,
  };
  Promise.resolve(page.render(content, ctx)).catch((e) => {
    if (ctx.alive()) content.append(failure(e, 'this page'));
  });
}

window.addEventListener('hashchange', route);
onRangeChange(route);
boot();
