// Keys: the virtual keys (create — the key shown once —, edit limits and allowed models, rotate,
// revoke), the users and teams they belong to with their limits and current spend, and the
// audit log of every change. Viewers see the same lists without the buttons that change them.

import * as api from '../api.js';
import { usage } from '../data.js';
import { DAY_MS } from '../range.js';
import {
  badge, bar, card, clear, csvButton, empty, failure, field, fmtInt, fmtTime, fmtUsd, h, loading, table, toast,
} from '../ui.js';
import {
  confirmModal, formModal, limitsFields, limitsSummary, modelsInput, ownerSelect, parseModels, showSecretOnce,
} from './forms.js';

const TABS = [['', 'Keys'], ['users', 'Users'], ['teams', 'Teams'], ['audit', 'Audit log']];
const view = { showRevoked: false };

export default {
  title: 'Keys',
  subtitle: 'Virtual keys, users, teams and the audit log',
  noRange: true,
  async render(root, ctx) {
    const tab = ctx.params[0] || '';
    root.append(h('nav', { class: 'tabs' }, TABS.map(([id, label]) =>
      h('a', { href: '#/keys' + (id ? '/' + id : ''), class: id === tab ? 'on' : null, 'data-tab': id || 'keys' }, label))));
    const holder = h('div', {}, card({ title: TABS.find(([id]) => id === tab)?.[1] || 'Keys', body: loading(6) }));
    root.append(holder);
    const draw = { '': drawKeys, users: (hd, c) => drawMembers(hd, c, 'user'), teams: (hd, c) => drawMembers(hd, c, 'team'), audit: drawAudit }[tab] || drawKeys;
    await draw(holder, ctx);
  },
};

function statusOf(k) {
  const now = Date.now();
  if (k.revoked_at_ms) return badge('revoked', 'bad');
  if (k.expires_at_ms && k.expires_at_ms <= now) return badge('expired', 'bad');
  if (k.expires_at_ms) return badge(`expires ${fmtTime(k.expires_at_ms)}`, 'warn');
  return badge('active', 'ok');
}

async function drawKeys(holder, ctx) {
  let keys; let users; let teams;
  try {
    [keys, users, teams] = await Promise.all([
      api.get('/admin/keys', { include_revoked: view.showRevoked }), api.get('/admin/users'), api.get('/admin/teams')]);
  } catch (e) {
    clear(holder).append(card({ title: 'Keys', body: failure(e, 'keys') }));
    return;
  }
  if (!ctx.alive()) return;
  const owners = { users: users.data || [], teams: teams.data || [] };
  const redraw = () => drawKeys(holder, ctx);
  const rows = (keys.data || []).sort((a, b) => b.created_at_ms - a.created_at_ms);
  const columns = [
    { key: 'name', label: 'Name', value: (k) => k.name || '', cell: (k) => h('span', {}, k.name || 'unnamed', h('span', { class: 'sub mono' }, k.id)) },
    { key: 'prefix', label: 'Prefix', cell: (k) => h('span', { class: 'mono' }, k.prefix) },
    { key: 'owner', label: 'Team / user', value: (k) => [k.team_id, k.user_id].filter(Boolean).join(' / '),
      cell: (k) => h('span', {}, k.team_id || 'no team', h('span', { class: 'sub truncate narrow', title: k.user_id || '' }, k.user_id || 'no user')) },
    { key: 'models', label: 'Models', value: (k) => (k.models ? k.models.join(' ') : 'all'), cell: (k) => h('span', { class: 'truncate mid', title: (k.models || []).join(', ') }, k.models ? k.models.join(', ') : 'all') },
    { key: 'limits', label: 'Limits', value: (k) => limitsSummary(k.limits), cell: (k) => h('span', { class: 'truncate mid', title: limitsSummary(k.limits) }, limitsSummary(k.limits)) },
    { key: 'status', label: 'Status', value: (k) => (k.revoked_at_ms ? 'revoked' : 'active'), cell: statusOf },
    { key: 'created_at_ms', label: 'Created', fmt: (v) => fmtTime(v) },
  ];
  if (ctx.admin) {
    columns.push({ key: 'actions', label: '', csv: false, cell: (k) => (k.revoked_at_ms ? '' : h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'btn small', 'data-action': 'edit', onclick: () => editKey(k, owners, redraw) }, 'Edit'),
      h('button', { type: 'button', class: 'btn small', 'data-action': 'rotate', onclick: () => rotateKey(k, redraw) }, 'Rotate'),
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'revoke', onclick: () => revokeKey(k, redraw) }, 'Revoke'))) });
  }
  const showRevoked = h('input', { type: 'checkbox', checked: view.showRevoked, 'data-testid': 'show-revoked', onchange: (e) => { view.showRevoked = e.target.checked; redraw(); } });
  const tools = [
    h('label', { class: 'check' }, showRevoked, 'Show revoked'),
    csvButton('keys', columns, rows),
    ctx.admin ? h('button', { type: 'button', class: 'btn primary', 'data-testid': 'create-key', onclick: () => createKey(owners, redraw) }, '+ Create key') : null,
  ];
  const body = rows.length ? table({ columns, rows, testid: 'keys-table' })
    : empty('No keys yet', ctx.admin ? 'Create one with “Create key”, or from a shell:' : 'An administrator creates keys from here or from a shell:', 'switchyard keys create --name my-app');
  clear(holder).append(card({ title: 'Virtual keys', desc: 'Keys apps use on /v1/…; the key itself is shown once, at creation', tools, body, flush: true, testid: 'keys' }));
}

function keyFields(k, owners) {
  const name = h('input', { type: 'text', name: 'name', 'data-field': 'name', value: k.name || '', placeholder: 'e.g. checkout-service' });
  const team = ownerSelect('team_id', owners.teams, k.team_id);
  const user = ownerSelect('user_id', owners.users, k.user_id);
  const models = modelsInput(k.models);
  const limits = limitsFields(k.limits);
  const nodes = [
    h('div', { class: 'wide' }, field('Name', name)),
    field('Team', team), field('User', user),
    h('div', { class: 'wide' }, field('Allowed models and routes', models, 'Comma-separated; leave empty to allow every model.')),
    limits.nodes,
  ];
  const read = () => ({
    name: name.value.trim() || null, team_id: team.value || null, user_id: user.value || null,
    models: parseModels(models.value), limits: limits.read(),
  });
  return { nodes, read };
}

function createKey(owners, redraw) {
  const f = keyFields({}, owners);
  const expires = h('input', { type: 'text', name: 'expires_in', 'data-field': 'expires_in', placeholder: 'never (or 30d, 12h)' });
  formModal({
    title: 'Create a key', submitLabel: 'Create key', testid: 'key-form',
    fields: [f.nodes, h('div', { class: 'wide' }, field('Expires in', expires))],
    submit: async () => {
      const body = f.read();
      for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
      if (expires.value.trim()) body.expires_in = expires.value.trim();
      const created = await api.post('/admin/keys', body);
      redraw();
      showSecretOnce(`Key “${created.name || created.id}” created`, created);
    },
  });
}

function editKey(k, owners, redraw) {
  const f = keyFields(k, owners);
  formModal({
    title: `Edit ${k.name || k.id}`, submitLabel: 'Save', testid: 'key-form', fields: f.nodes,
    submit: async () => {
      await api.patch(`/admin/keys/${encodeURIComponent(k.id)}`, f.read());
      toast('Key saved');
      redraw();
    },
  });
}

async function revokeKey(k, redraw) {
  const yes = await confirmModal({
    title: `Revoke ${k.name || k.id}?`, confirmLabel: 'Revoke key',
    text: 'Apps using this key are refused within seconds, on every replica. This cannot be undone.',
  });
  if (!yes) return;
  try {
    await api.post(`/admin/keys/${encodeURIComponent(k.id)}/revoke`);
    toast('Key revoked');
  } catch (e) {
    toast(e.message);
  }
  redraw();
}

async function rotateKey(k, redraw) {
  const grace = h('select', { 'data-field': 'grace' }, [['0s', 'at once'], ['1h', 'in 1 hour'], ['24h', 'in 24 hours'], ['7d', 'in 7 days']].map(([v, l]) =>
    h('option', { value: v, selected: v === '1h' }, l)));
  const yes = await confirmModal({
    title: `Rotate ${k.name || k.id}?`, confirmLabel: 'Rotate key', danger: false,
    text: 'A new key with the same owners and limits is created and shown once. The old key stops working:',
    extra: [field('Old key stops', grace)],
  });
  if (!yes) return;
  try {
    const created = await api.post(`/admin/keys/${encodeURIComponent(k.id)}/rotate`, { grace: grace.value });
    redraw();
    showSecretOnce(`Key “${created.name || created.id}” rotated`, created);
  } catch (e) {
    toast(e.message);
    redraw();
  }
}

// ---- users and teams ---------------------------------------------------------------------

async function drawMembers(holder, ctx, kind) {
  const plural = kind + 's';
  const to = Date.now();
  let members; let budgets; let spend; let teams;
  try {
    [members, budgets, spend, teams] = await Promise.all([
      api.get(`/admin/${plural}`), api.get('/admin/budgets'),
      usage({ from: to - 30 * DAY_MS, to }, kind), kind === 'user' ? api.get('/admin/teams') : Promise.resolve({ data: [] })]);
  } catch (e) {
    clear(holder).append(card({ title: plural, body: failure(e, plural) }));
    return;
  }
  if (!ctx.alive()) return;
  const spent30 = new Map(spend.rows.map((r) => [r[kind], r.cost_usd]));
  const caps = (budgets.data || budgets.budgets || []).filter((b) => b.scope === kind);
  const rows = members.data || [];
  const redraw = () => drawMembers(holder, ctx, kind);
  const columns = [
    { key: 'id', label: kind === 'user' ? 'User' : 'Team', value: (m) => m.id, cell: (m) => h('span', {}, m.name || m.id, h('span', { class: 'sub mono' }, m.id)) },
    kind === 'user' ? { key: 'team_id', label: 'Team', value: (m) => m.team_id || '—' } : null,
    { key: 'models', label: 'Models', value: (m) => (m.models ? m.models.join(' ') : 'all') },
    { key: 'limits', label: 'Limits', value: (m) => limitsSummary(m.limits) },
    { key: 'spend_30d', label: 'Spend, 30 days', num: true, value: (m) => spent30.get(m.id) ?? 0, fmt: fmtUsd },
    { key: 'budget', label: 'Current budget', value: (m) => budgetText(caps, m.id), cell: (m) => budgetCell(caps, m.id) },
  ].filter(Boolean);
  if (ctx.admin) {
    columns.push({ key: 'actions', label: '', csv: false, cell: (m) => h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'btn small', 'data-action': 'edit', onclick: () => memberForm(kind, m, teams.data, redraw) }, 'Edit')) });
  }
  const tools = [csvButton(plural, columns, rows),
    ctx.admin ? h('button', { type: 'button', class: 'btn primary', 'data-testid': `create-${kind}`, onclick: () => memberForm(kind, null, teams.data, redraw) }, `+ Add ${kind}`) : null];
  const body = rows.length ? table({ columns, rows, testid: `${plural}-table` })
    : empty(`No ${plural} yet`, `${plural[0].toUpperCase() + plural.slice(1)} group keys so that their spend and limits add up. Add one here or from a shell:`, `switchyard ${plural} create ${kind === 'team' ? 'search' : 'alice'}`);
  clear(holder).append(card({ title: kind === 'user' ? 'Users' : 'Teams', desc: 'Limits here hold every key of theirs; spend from the request log, budgets from the live counters', tools, body, flush: true, testid: plural }));
}

function budgetText(caps, id) {
  return caps.filter((b) => b.id === id).map((b) => `${b.spent_usd}/${b.limit_usd} ${b.window}`).join('; ') || '';
}

function budgetCell(caps, id) {
  const mine = caps.filter((b) => b.id === id);
  if (!mine.length) return h('span', { class: 'muted' }, 'no cap');
  return h('div', {}, mine.map((b) => h('div', { class: 'budget-line' }, bar(b.limit_usd ? b.spent_usd / b.limit_usd : 0),
    h('span', { class: 'sub' }, `${fmtUsd(b.spent_usd)} of ${fmtUsd(b.limit_usd)} ${b.window}`))));
}

function memberForm(kind, m, teams, redraw) {
  const editing = !!m;
  m = m || {};
  const id = h('input', { type: 'text', name: 'id', 'data-field': 'id', value: m.id || '', disabled: editing, placeholder: kind === 'team' ? 'search' : 'alice@example.com' });
  const name = h('input', { type: 'text', name: 'name', 'data-field': 'name', value: m.name || '' });
  const team = kind === 'user' ? ownerSelect('team_id', teams || [], m.team_id) : null;
  const models = modelsInput(m.models);
  const limits = limitsFields(m.limits);
  formModal({
    title: editing ? `Edit ${m.name || m.id}` : `Add a ${kind}`, submitLabel: editing ? 'Save' : `Add ${kind}`, testid: 'member-form',
    fields: [field('Id', id), field('Name', name), team ? h('div', { class: 'wide' }, field('Team', team)) : null,
      h('div', { class: 'wide' }, field('Allowed models and routes', models, 'Comma-separated; leave empty to allow every model.')), limits.nodes],
    submit: async () => {
      const body = { name: name.value.trim() || null, models: parseModels(models.value), limits: limits.read() };
      if (team) body.team_id = team.value || null;
      if (editing) {
        await api.patch(`/admin/${kind}s/${encodeURIComponent(m.id)}`, body);
      } else {
        if (!id.value.trim()) throw new Error('Give an id');
        for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
        await api.post(`/admin/${kind}s`, { id: id.value.trim(), ...body });
      }
      toast(editing ? 'Saved' : `${kind} added`);
      redraw();
    },
  });
}

// ---- audit log ---------------------------------------------------------------------------

const ACTION_TONE = { revoke: 'bad', create: 'ok', rotate: 'warn', update: 'info', replay: 'info' };

async function drawAudit(holder, ctx) {
  let log;
  try {
    log = await api.get('/admin/audit', { limit: 500 });
  } catch (e) {
    clear(holder).append(card({ title: 'Audit log', body: failure(e, 'the audit log') }));
    return;
  }
  if (!ctx.alive()) return;
  const rows = log.data || [];
  const columns = [
    { key: 'at_ms', label: 'When (UTC)', fmt: (v) => fmtTime(v, { seconds: true }) },
    { key: 'actor', label: 'Who' },
    { key: 'action', label: 'Action', cell: (r) => badge(r.action, ACTION_TONE[r.action.split('.').pop()]) },
    { key: 'target', label: 'Target', cell: (r) => h('span', { class: 'mono' }, r.target) },
    { key: 'details', label: 'Details', wrap: true, value: (r) => JSON.stringify(r.details ?? {}), cell: (r) => h('span', { class: 'mono muted' }, compact(r.details)) },
  ];
  const body = rows.length ? table({ columns, rows, testid: 'audit-table', scroll: false })
    : empty('Nothing audited yet', 'Every change to keys, users and teams — from here, the CLI or the admin API — is listed here, newest first.');
  clear(holder).append(card({ title: 'Audit log', desc: `The last ${fmtInt(rows.length)} changes, newest first; keys are never logged`, tools: [csvButton('audit', columns, rows)], body, flush: true, testid: 'audit' }));
}

function compact(details) {
  if (!details || typeof details !== 'object') return String(details ?? '');
  const noise = (k, v) => v === null || v === undefined || k === 'created_at_ms' || k === 'updated_at_ms'
    || (typeof v === 'object' && Object.keys(v).length === 0);
  return Object.entries(details).filter(([k, v]) => !noise(k, v))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join('  ');
}
