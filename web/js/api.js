// api.js: the server's REST API (docs/api.md) for the screens. api.get/post/put/del return the
// parsed JSON answer (ThreatQ's envelope: {data, total, ...}) or null for 204, and throw
// ApiError {status, message, errors} naming what the server said.
//
// The session: the password grant (POST /api/token), the tokens in memory and in
// sessionStorage (this tab only, gone when it closes), a refresh (refresh_token grant) a
// minute before the access token expires, and on a 401 one refresh try, then the login
// screen (which comes back to the page after login). api.logout() revokes the tokens
// (DELETE /api/token).

const KEY = 'tqhost.session';
const CLIENT_ID = 'tqhost-web';

export class ApiError extends Error {
  constructor(status, message, errors) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.errors = errors || null;
  }
}

const s = {access: null, refresh: null, expiresAt: 0, user: null, timer: null, refreshing: null};
let onUnauthorized = () => {};

function save() {
  try {
    if (s.access) {
      sessionStorage.setItem(KEY, JSON.stringify(
          {access: s.access, refresh: s.refresh, expiresAt: s.expiresAt, user: s.user}));
    } else {
      sessionStorage.removeItem(KEY);
    }
  } catch (e) { /* storage refused: memory only */ }
}

function restore() {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (v && v.access && v.expiresAt > Date.now()) Object.assign(s, v);
  } catch (e) { /* ignore a garbled entry */ }
}

function schedule() {
  clearTimeout(s.timer);
  s.timer = null;
  if (!s.refresh) return;
  const ms = Math.max(1000, s.expiresAt - Date.now() - 60000);
  s.timer = setTimeout(() => { refresh().catch(() => {}); }, Math.min(ms, 2 ** 31 - 1));
}

function setTokens(t) {
  s.access = t.access_token;
  s.refresh = t.refresh_token || null;
  s.expiresAt = Date.now() + (Number(t.expires_in) || 3600) * 1000;
  save();
  schedule();
}

function forget() {
  clearTimeout(s.timer);
  Object.assign(s, {access: null, refresh: null, expiresAt: 0, user: null, timer: null});
  save();
}

// The message of an error answer: {"errors": [...]}, {"data": {"errors": {field: [...]}}}.
function messageOf(status, body, fallback) {
  if (body && Array.isArray(body.errors) && body.errors.length) return body.errors.join('; ');
  const fe = body && body.data && body.data.errors;
  if (fe && typeof fe === 'object') {
    return Object.entries(fe).map(([k, v]) => `${k}: ${[].concat(v).join(', ')}`).join('; ');
  }
  if (typeof body === 'string' && body) return body.slice(0, 300);
  return fallback || `HTTP ${status}`;
}

function url(path, query) {
  let u = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === null || v === undefined || v === '') continue;
      for (const x of [].concat(v)) q.append(k, String(x));
    }
    const qs = q.toString();
    if (qs) u += (u.includes('?') ? '&' : '?') + qs;
  }
  return u;
}

async function send(method, path, {query, body, token} = {}) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = 'Bearer ' + token;
  let res;
  try {
    res = await fetch(url(path, query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: the server cannot be reached (${e.message})`);
  }
  const text = res.status === 204 ? '' : await res.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch (e) { parsed = text; }
  }
  return {res, body: parsed};
}

async function refresh() {
  if (!s.refresh) throw new ApiError(401, 'the session ended: sign in again');
  if (!s.refreshing) {
    s.refreshing = (async () => {
      const {res, body} = await send('POST', '/api/token',
                                     {body: {grant_type: 'refresh_token', refresh_token: s.refresh}});
      if (!res.ok) {
        forget();
        throw new ApiError(res.status, messageOf(res.status, body, 'the session ended'));
      }
      setTokens(body);
    })().finally(() => { s.refreshing = null; });
  }
  return s.refreshing;
}

async function request(method, path, query, body) {
  if (s.access && s.refresh && s.expiresAt - Date.now() < 30000) {
    await refresh().catch(() => {});
  }
  if (!s.access) {
    onUnauthorized();
    throw new ApiError(401, 'not signed in');
  }
  let {res, body: out} = await send(method, path, {query, body, token: s.access});
  if (res.status === 401 && s.refresh) {
    try {
      await refresh();
      ({res, body: out} = await send(method, path, {query, body, token: s.access}));
    } catch (e) { /* falls through to the 401 below */ }
  }
  if (res.status === 401) {
    forget();
    onUnauthorized();
    throw new ApiError(401, messageOf(401, out, 'the session ended: sign in again'));
  }
  if (!res.ok) {
    throw new ApiError(res.status, `${method} ${path}: ${messageOf(res.status, out)}`,
                       out && out.data && out.data.errors ? out.data.errors : out && out.errors);
  }
  return out;
}

const ROLES = {'read-only': 1, analyst: 2, admin: 3};

export const api = {
  get: (path, query) => request('GET', path, query),
  post: (path, body, query) => request('POST', path, query, body === undefined ? {} : body),
  put: (path, body, query) => request('PUT', path, query, body === undefined ? {} : body),
  del: (path, query) => request('DELETE', path, query),

  // Signs in with the password grant as docs/api.md shows it; throws ApiError (401: wrong
  // name or password, 429: locked for a while).
  async login(username, password) {
    const {res, body} = await send('POST', `/api/token?grant_type=password&client_id=${CLIENT_ID}`,
                                   {body: {username, password}});
    if (!res.ok) {
      const retry = res.headers.get('Retry-After');
      throw new ApiError(res.status, messageOf(res.status, body) +
                         (retry ? ` (try again in ${retry} s)` : ''));
    }
    setTokens(body);
    return this.whoami();
  },

  // Revokes the tokens on the server and forgets them here.
  async logout() {
    const token = s.access;
    forget();
    if (token) await send('DELETE', '/api/token', {token}).catch(() => {});
  },

  // Asks the server who is signed in (a role changed meanwhile applies); a session revoked
  // elsewhere ends here (401: the login screen).
  async whoami() {
    const me = await request('GET', '/api/users/current');
    s.user = me && me.data ? {name: me.data.name, role: me.data.role, id: me.data.id} : null;
    save();
    return s.user;
  },

  refresh,
  loggedIn: () => !!s.access,
  user: () => s.user,
  // Whether the signed-in user has at least role ('read-only' < 'analyst' < 'admin').
  can: (role) => !!s.user && (ROLES[s.user.role] || 0) >= (ROLES[role] || 9),
  // fn() is called when the session ends (a 401 that a refresh did not cure).
  onUnauthorized(fn) { onUnauthorized = fn; },
  url,
};

restore();
schedule();
