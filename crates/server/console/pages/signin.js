// The sign-in page: an admin or viewer key exchanged for an HttpOnly session cookie. The key
// lives only in the password field until the request is sent; the field is emptied after.

import * as api from '../api.js';
import { brand, h } from '../ui.js';

export function renderSignIn(root, { notice, onSignedIn }) {
  const key = h('input', { type: 'password', name: 'key', autocomplete: 'off', placeholder: 'sk-admin-…', 'data-testid': 'signin-key', required: true });
  const message = h('div', { class: notice ? 'banner info' : 'hidden', 'data-testid': 'signin-message', role: 'alert' }, notice || '');
  const button = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'signin-submit' }, 'Sign in');
  const form = h('form', { class: 'signin-card', 'data-testid': 'signin' },
    brand(),
    h('div', {}, h('h1', {}, 'Sign in'), h('p', {}, 'Use an admin key (auth.admin_keys) or a read-only viewer key (auth.viewer_keys).')),
    message,
    h('label', { class: 'field' }, 'Key', key),
    button,
    h('p', { class: 'muted' }, 'The key is exchanged for a session cookie and never stored in this browser.'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await api.signIn(key.value.trim());
      key.value = '';
      onSignedIn();
    } catch (err) {
      message.className = 'banner error';
      message.textContent = err.status === 401 ? 'That key is not an admin or viewer key of this gateway.'
        : err.status === 429 ? 'Too many sign-in attempts from here: wait a minute and try again.'
          : err.message;
      button.disabled = false;
      button.textContent = 'Sign in';
      key.select();
    }
  });
  root.append(h('div', { class: 'signin' }, form));
  key.focus();
}
