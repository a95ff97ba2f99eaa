// login.js: the sign-in screen (password grant). Errors (wrong password, lockout) are shown in
// an aria-live region; after signing in it goes back to ?next= or the threat library.
import {api} from '../api.js';
import {h, fill} from '../dom.js';
import {navigate} from '../router.js';

export async function render(root, params, query) {
  const msg = h('p', {id: 'login-error', class: 'form-error', role: 'alert', 'aria-live': 'assertive'});
  const user = h('input', {id: 'login-user', name: 'username', autocomplete: 'username',
                           required: true, autocapitalize: 'none', spellcheck: 'false'});
  const pass = h('input', {id: 'login-password', name: 'password', type: 'password',
                           autocomplete: 'current-password', required: true});
  const button = h('button', {type: 'submit', id: 'login-submit'}, 'Sign in');
  if (query.expired && !api.loggedIn()) {
    fill(msg, 'Your session ended: sign in again.');
  }
  const form = h('form', {class: 'login', 'aria-describedby': 'login-error', onsubmit: async (ev) => {
    ev.preventDefault();
    fill(msg);
    button.disabled = true;
    try {
      await api.login(user.value.trim(), pass.value);
      pass.value = '';
      const next = typeof query.next === 'string' && query.next.startsWith('/') &&
                   !query.next.startsWith('/login') ? query.next : '/library';
      const i = next.indexOf('?');
      const q = i < 0 ? null : Object.fromEntries(new URLSearchParams(next.slice(i + 1)));
      navigate(i < 0 ? next : next.slice(0, i), q, true);
    } catch (e) {
      fill(msg, e.status === 401 ? 'Sign-in failed: wrong user name or password.'
                                 : `Sign-in failed: ${e.message}`);
      pass.select();
    } finally {
      button.disabled = false;
    }
  }},
  h('h1', null, 'Sign in to tqhost'),
  h('div', {class: 'field'}, h('label', {for: 'login-user'}, 'User name'), user),
  h('div', {class: 'field'}, h('label', {for: 'login-password'}, 'Password'), pass),
  button, msg);
  root.append(form);
  if (api.loggedIn()) {
    root.append(h('p', null, `Signed in as ${api.user() ? api.user().name : '?'}. `,
                  h('a', {href: '#/library'}, 'Go to the threat library')));
  }
  user.focus();
}
