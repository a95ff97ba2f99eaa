// admin.js: the admin screens (admin role; the API refuses the others anyway).
// #/admin/users: people with their roles: add, change the role, disable/enable.
// #/admin/clients: OAuth clients (client credentials): create (the secret shown once), delete.
// #/admin/audit: the audit log, newest first, paged, filtered by who and what.
import {api} from '../api.js';
import {h, fill, table, fmtTime, fmtCount, field, select} from '../dom.js';
import {navigate, href} from '../router.js';
import {formMessage, actionButton} from './parts.js';

const ROLES = ['read-only', 'analyst', 'admin'];
const AUDIT_PAGE = 50;

export async function render(root, params, query, route) {
  const which = route && route.pattern ? route.pattern.split('/').pop() : 'users';
  if (!api.can('admin')) {
    root.append(h('h1', {tabindex: -1}, 'Administration'),
                h('p', {class: 'form-error', id: 'admin-refused'}, 'These screens are for admins only.'));
    return;
  }
  if (which === 'clients') return clients(root);
  if (which === 'audit') return audit(root, query);
  return users(root);
}

async function users(root) {
  const r = await api.get('/api/users', {limit: 1000});
  const msg = formMessage('users-result');
  const me = api.user() || {};
  const people = r.data.filter((u) => u.kind === 'person');
  const cols = [
    {key: 'name', label: 'Name', render: (u) => h('span', {class: 'value user-name'}, u.name)},
    {key: 'role', label: 'Role', render: (u) => {
      const sel = select({id: `role-${u.id}`, 'aria-label': `Role of ${u.name}`}, ROLES, u.role);
      sel.addEventListener('change', async () => {
        msg.clear();
        try {
          await api.put(`/api/users/${u.id}`, {role: sel.value});
          msg.ok(`${u.name} is now ${sel.value}.`);
        } catch (e) {
          sel.value = u.role;
          msg.fail(`Changing the role of ${u.name}`, e);
        }
      });
      return sel;
    }},
    {key: 'disabled', label: 'State', render: (u) => (u.disabled ? h('span', {class: 'badge bad'}, 'disabled') : 'active')},
    {key: 'created_at', label: 'Since', render: (u) => fmtTime(u.created_at)},
    {key: 'act', label: 'Sign-in', render: (u) => (u.id === me.id ? h('span', {class: 'muted'}, 'you')
      : actionButton({id: `toggle-${u.id}`, 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.name}`},
                     u.disabled ? 'Enable' : 'Disable', async () => {
        try {
          await api.put(`/api/users/${u.id}`, {disabled: !u.disabled});
          navigate('/admin/users', null, true);
        } catch (e) { msg.fail(`${u.disabled ? 'Enabling' : 'Disabling'} ${u.name}`, e); }
      }))},
  ];
  const addMsg = formMessage('user-add-result');
  const name = h('input', {id: 'user-name', name: 'name', required: true, maxlength: 127, autocomplete: 'off'});
  const role = select({id: 'user-role', name: 'role'}, ROLES, 'analyst');
  const pw = h('input', {id: 'user-password', name: 'password', type: 'password', required: true,
                         autocomplete: 'new-password'});
  root.append(h('h1', {tabindex: -1}, 'Users and roles'),
    h('div', {id: 'users'}, table(cols, people, {caption: `${people.length} user(s)`})), msg.el,
    h('form', {id: 'user-form', class: 'panel', onsubmit: async (ev) => {
      ev.preventDefault();
      addMsg.clear();
      try {
        await api.post('/api/users', {name: name.value.trim(), role: role.value, password: pw.value});
        pw.value = '';
        navigate('/admin/users', null, true);
      } catch (e) { addMsg.fail('Adding the user', e); }
    }}, h('h2', null, 'Add a user'),
    h('div', {class: 'row'}, field('Name', name), field('Role', role), field('Password', pw),
      h('button', {type: 'submit', class: 'primary', id: 'user-submit'}, 'Add')), addMsg.el));
}

async function clients(root) {
  const r = await api.get('/api/clients', {limit: 1000});
  const msg = formMessage('clients-result');
  const secretBox = h('div', {id: 'client-secret', 'aria-live': 'polite'});
  const cols = [
    {key: 'name', label: 'Client', render: (c) => h('span', {class: 'value'}, c.name)},
    {key: 'role', label: 'Role'},
    {key: 'created_at', label: 'Since', render: (c) => fmtTime(c.created_at)},
    {key: 'act', label: 'Delete', render: (c) => actionButton({class: 'danger', id: `delete-client-${c.id}`,
        'aria-label': `Delete the client ${c.name}`}, 'Delete', async () => {
      try {
        await api.del(`/api/clients/${c.id}`);
        navigate('/admin/clients', null, true);
      } catch (e) { msg.fail(`Deleting the client ${c.name}`, e); }
    })},
  ];
  const addMsg = formMessage('client-add-result');
  const name = h('input', {id: 'client-name', name: 'name', required: true, maxlength: 127, autocomplete: 'off'});
  const role = select({id: 'client-role', name: 'role'}, ROLES, 'read-only');
  root.append(h('h1', {tabindex: -1}, 'API clients (OAuth client credentials)'),
    h('div', {id: 'clients'}, table(cols, r.data, {caption: `${r.total} client(s)`, empty: 'No client yet.'})),
    msg.el,
    h('form', {id: 'client-form', class: 'panel', onsubmit: async (ev) => {
      ev.preventDefault();
      addMsg.clear();
      fill(secretBox);
      try {
        const c = await api.post('/api/clients', {name: name.value.trim(), role: role.value});
        name.value = '';
        fill(secretBox, h('div', {class: 'panel secret'},
          h('p', null, h('strong', null, `Client ${c.data.name} created.`),
            ' Copy its secret now: it is shown this once and cannot be read again.'),
          h('dl', {class: 'facts'},
            h('dt', null, 'client_id'), h('dd', null, h('code', {id: 'new-client-id'}, c.data.client_id)),
            h('dt', null, 'client_secret'), h('dd', null, h('code', {id: 'new-client-secret'}, c.data.client_secret)))));
        const list = await api.get('/api/clients', {limit: 1000});
        fill(document.getElementById('clients'), table(cols, list.data, {caption: `${list.total} client(s)`}));
      } catch (e) { addMsg.fail('Creating the client', e); }
    }}, h('h2', null, 'New client'),
    h('div', {class: 'row'}, field('Name', name), field('Role', role),
      h('button', {type: 'submit', class: 'primary', id: 'client-submit'}, 'Create')), addMsg.el),
    secretBox);
}

async function audit(root, query) {
  const offset = Math.max(0, Number(query.offset) || 0);
  const who = typeof query.who === 'string' ? query.who : '';
  const what = typeof query.what === 'string' ? query.what : '';
  const r = await api.get('/api/audit', {limit: AUDIT_PAGE, offset, who: who || null, what: what || null});
  const whoIn = h('input', {id: 'audit-who', name: 'who', value: who});
  const whatIn = h('input', {id: 'audit-what', name: 'what', value: what, placeholder: 'login, user.add, run.start, \u2026'});
  const q = (o) => ({who: who || null, what: what || null, offset: o || null});
  root.append(h('h1', {tabindex: -1}, 'Audit log'),
    h('form', {id: 'audit-form', class: 'row filters', onsubmit: (ev) => {
      ev.preventDefault();
      navigate('/admin/audit', {who: whoIn.value.trim(), what: whatIn.value.trim()});
    }}, field('Who', whoIn), field('What', whatIn), h('button', {type: 'submit'}, 'Filter')),
    h('div', {id: 'audit'}, table([
      {key: 'at', label: 'When', render: (e) => fmtTime(e.at)},
      {key: 'who', label: 'Who', render: (e) => h('span', {class: 'value'}, e.who || '')},
      {key: 'what', label: 'What'},
      {key: 'target', label: 'Target', render: (e) => h('span', {class: 'value'}, e.target || '')},
      {key: 'detail', label: 'Detail', render: (e) => e.detail || ''},
      {key: 'addr', label: 'From', render: (e) => e.addr || ''},
    ], r.data, {caption: `${fmtCount(r.total)} record(s); ${offset + 1}\u2013${offset + r.data.length}`,
                empty: 'No record.'})),
    h('nav', {class: 'pager', 'aria-label': 'Pages'},
      offset > 0 ? h('a', {id: 'audit-prev', href: href('/admin/audit', q(Math.max(0, offset - AUDIT_PAGE)))}, 'Newer') : null,
      offset + AUDIT_PAGE < r.total ? h('a', {id: 'audit-next', href: href('/admin/audit', q(offset + AUDIT_PAGE))}, 'Older') : null));
}
