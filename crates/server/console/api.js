// Talks to the gateway: the console session (/ui/api/session) and the admin API (/admin/...).
// After sign-in only the HttpOnly session cookie authenticates; the key is never stored. The
// session's CSRF token (kept in memory only) goes in X-CSRF-Token on every change.

let session = null;
const signedOutListeners = [];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function currentSession() {
  return session;
}

export function isAdmin() {
  return !!session && session.role === 'admin';
}

/** Called when the server says the session is gone (expired, signed out elsewhere). */
export function onSignedOut(fn) {
  signedOutListeners.push(fn);
}

async function send(method, path, { params, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== '') url.searchParams.set(k, v);
  }
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    if (session) headers['x-csrf-token'] = session.csrf;
  }
  let response;
  try {
    response = await fetch(url, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The gateway did not answer: is switchyard running? (' + e.message + ')');
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) {
    const err = json && json.error ? json.error : {};
    const message = err.message || `${method} ${url.pathname} answered ${response.status}`;
    if (response.status === 401 && !path.startsWith('/ui/api/session')) {
      session = null;
      signedOutListeners.forEach((fn) => fn());
    }
    throw new ApiError(response.status, err.code || String(response.status), message);
  }
  return json;
}

export const get = (path, params) => send('GET', path, { params });
export const post = (path, body) => send('POST', path, { body: body ?? {} });
export const patch = (path, body) => send('PATCH', path, { body });
export const del = (path) => send('DELETE', path);

/** The current session from the cookie, or null when signed out. */
export async function resume() {
  try {
    session = await send('GET', '/ui/api/session');
  } catch (e) {
    if (e.status === 401) session = null;
    else throw e;
  }
  return session;
}

export async function signIn(key) {
  session = await send('POST', '/ui/api/session', { body: { key } });
  return session;
}

export async function signOut() {
  try {
    await send('DELETE', '/ui/api/session');
  } finally {
    session = null;
  }
}
