/* http.c: the http module. A request is built from the script's options (query encoded with
 * curl_easy_escape, headers with secrets substituted only here), submitted to tq_net with the
 * plugin's provider, and the run yields; the net callback stores the response and marks the
 * run ready; the continuation turns it into resp or nil, err when the scheduler resumes it.
 * In replay mode the response comes from a recorded file instead of the network. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lua_int.h"

#define MAX_HEADERS 64
#define RESP_MT "tq.http.response"

/* ---- building the request ------------------------------------------------------------------ */

/* What a request needs until submit; strings on the Lua stack or in bufs owned here. */
typedef struct http_req {
  const char *method;
  tq_buf url;
  tq_buf headers; /* "Name: value\0" lines, back to back */
  const char *lines[MAX_HEADERS];
  size_t n_lines;
  const char *body;
  size_t body_len;
  int64_t timeout_ms;
  int has_content_type;
} http_req;

static void req_free(http_req *r) {
  if (r->headers.data)
    explicit_bzero(r->headers.data, r->headers.cap); /* may hold secrets */
  tq_buf_free(&r->headers);
  tq_buf_free(&r->url);
}

/* Appends k=v (percent-encoded) to the URL. */
static void query_add(lua_State *L, http_req *r, const char *k, const char *v, int *first) {
  char *ek = curl_easy_escape(NULL, k, 0);
  char *ev = curl_easy_escape(NULL, v, 0);
  tq_code rc =
      (ek && ev) ? tq_buf_printf(&r->url, "%s%s=%s", *first ? "" : "&", ek, ev) : TQ_ENOMEM;
  curl_free(ek);
  curl_free(ev);
  if (rc != TQ_OK)
    luaL_error(L, "http: out of memory building the query");
  *first = 0;
}

static const char *query_value(lua_State *L, int idx, const char *key) {
  int t = lua_type(L, idx);
  if (t == LUA_TBOOLEAN)
    return lua_toboolean(L, idx) ? "true" : "false";
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "http: query value of '%s' must be a string, number or boolean (got %s)", key,
               luaL_typename(L, idx));
  return lua_tostring(L, idx);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The query table at idx, keys sorted so that a request always has the same URL (replay
 * and cache keys depend on it); a list value repeats the key. */
static void build_query(lua_State *L, int idx, http_req *r) {
  const char *keys[256];
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "http: query keys must be strings");
    if (n == sizeof keys / sizeof keys[0])
      luaL_error(L, "http: more than 256 query parameters");
    keys[n++] = lua_tostring(L, -1); /* anchored by the query table */
  }
  qsort(keys, n, sizeof keys[0], cmp_str);
  int first = strchr(r->url.data, '?') == NULL;
  if (n > 0 && tq_buf_addc(&r->url, first ? '?' : '&') != TQ_OK)
    luaL_error(L, "http: out of memory building the query");
  first = 1;
  for (size_t i = 0; i < n; i++) {
    lua_getfield(L, idx, keys[i]);
    if (lua_istable(L, -1)) {
      for (lua_Integer j = 1; j <= (lua_Integer)lua_rawlen(L, -1); j++) {
        lua_rawgeti(L, -1, j);
        query_add(L, r, keys[i], query_value(L, -1, keys[i]), &first);
        lua_pop(L, 1);
      }
    } else
      query_add(L, r, keys[i], query_value(L, -1, keys[i]), &first);
    lua_pop(L, 1);
  }
}

static int header_text_ok(const char *s) { return strpbrk(s, "\r\n") == NULL; }

/* One header line; a secret value is replaced by the real text of the run's own secret. */
static void header_add(lua_State *L, http_req *r, tq_lua_run *run, const char *name, int vidx) {
  const char *value = NULL;
  if (secret_test(L, vidx, run->script, &value)) {
    if (value == NULL)
      luaL_error(L, "http: header '%s': this secret belongs to another plugin", name);
  } else if (lua_type(L, vidx) == LUA_TSTRING || lua_type(L, vidx) == LUA_TNUMBER)
    value = lua_tostring(L, vidx);
  else
    luaL_error(L, "http: header '%s' must be a string, number or secret (got %s)", name,
               luaL_typename(L, vidx));
  if (!header_text_ok(name) || strchr(name, ':') || !header_text_ok(value))
    luaL_error(L, "http: header '%s': line breaks and ':' in names are not allowed", name);
  if (r->n_lines == MAX_HEADERS)
    luaL_error(L, "http: more than %d headers", MAX_HEADERS);
  if (tq_str_ieq(name, "content-type"))
    r->has_content_type = 1;
  if (tq_buf_printf(&r->headers, "%s: %s", name, value) != TQ_OK ||
      tq_buf_addc(&r->headers, '\0') != TQ_OK)
    luaL_error(L, "http: out of memory building headers");
  r->n_lines++;
}

static void build_headers(lua_State *L, int idx, http_req *r, tq_lua_run *run) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "http: header names must be strings");
    header_add(L, r, run, lua_tostring(L, -2), lua_gettop(L));
    lua_pop(L, 1);
  }
}

/* Points r->lines into the NUL-separated header block (after it stopped growing). */
static void header_lines(http_req *r) {
  const char *p = r->headers.data;
  for (size_t i = 0; i < r->n_lines; i++) {
    r->lines[i] = p;
    p += strlen(p) + 1;
  }
}

/* Reads the options table at idx into r. The json body and the method string stay on the
 * Lua stack (pushed here) until the request is submitted. */
static void build_request(lua_State *L, int idx, http_req *r, tq_lua_run *run) {
  lua_getfield(L, idx, "method");
  r->method = luaL_optstring(L, -1, "GET");
  for (const char *p = r->method; *p; p++)
    if (!isupper((unsigned char)*p))
      luaL_error(L, "http: method '%s' must be upper-case letters", r->method);
  lua_getfield(L, idx, "url");
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "http: url must be a string");
  if (tq_buf_adds(&r->url, lua_tostring(L, -1)) != TQ_OK)
    luaL_error(L, "http: out of memory");
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "query") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TTABLE);
    build_query(L, lua_gettop(L), r);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "headers") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      luaL_error(L, "http: headers must be a table");
    build_headers(L, lua_gettop(L), r, run);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "json") != LUA_TNIL) {
    json_encode_push(L, -1, "http: json body");
    lua_replace(L, -2);
    if (!r->has_content_type) {
      lua_pushliteral(L, "application/json");
      header_add(L, r, run, "Content-Type", lua_gettop(L));
      lua_pop(L, 1);
    }
  } else {
    lua_pop(L, 1);
    lua_getfield(L, idx, "body");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "http: body must be a string");
  }
  r->body = lua_tolstring(L, -1, &r->body_len); /* stays on the stack */
  lua_getfield(L, idx, "timeout");
  lua_Number t = lua_isnil(L, -1) ? 0 : lua_tonumber(L, -1);
  if ((!lua_isnil(L, -1) && !lua_isnumber(L, -1)) || !(t >= 0)) /* NaN too */
    luaL_error(L, "http: timeout must be a number of seconds >= 0 (got %s)",
               luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  /* Past a day it is the run's time anyway (below); the bound keeps the conversion defined
   * for 1e300 and math.huge. */
  r->timeout_ms = t > 86400 ? 86400000 : (int64_t)(t * 1000);
  /* A little past the run's deadline, so that the scheduler's deadline check kills the run
   * first and a request never outlives its run by much. */
  int64_t left = run->deadline_ms - tq_mono_ms() + 50;
  if (left < 1)
    left = 1;
  if (r->timeout_ms == 0 || r->timeout_ms > left)
    r->timeout_ms = left;
}

/* ---- responses ------------------------------------------------------------------------------ */

/* Parses a raw header block into a table with lower-case names; repeated names are joined
 * with ", ". [-0, +1] */
static void push_headers(lua_State *L, const char *raw) {
  lua_newtable(L);
  const char *p = raw ? raw : "";
  while (*p) {
    const char *eol = strpbrk(p, "\r\n");
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    if (colon && strncmp(p, "HTTP/", 5) != 0) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *c = p; c < colon; c++)
        luaL_addchar(&b, (char)tolower((unsigned char)*c));
      luaL_pushresult(&b);
      const char *v = colon + 1;
      while (v < p + len && (*v == ' ' || *v == '\t'))
        v++;
      size_t vlen = (size_t)(p + len - v);
      while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, vlen);
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, vlen);
      }
      lua_rawset(L, -3);
    }
    p += len;
    while (*p == '\r' || *p == '\n')
      p++;
  }
}

static int resp_json(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "body");
  size_t len;
  const char *body = lua_tolstring(L, -1, &len);
  if (body == NULL)
    return luaL_error(L, "resp:json(): the response has no body");
  return json_decode_push(L, body, len);
}

static void push_err(lua_State *L, const char *kind, const char *message, int status) {
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  if (status > 0) {
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
  }
}

/* resp, or nil, err. A final status >= 400 is an "http" error carrying status and body. */
static int push_response(lua_State *L, const tq_net_response *r, const char *url) {
  int fail = r->fail;
  if (fail == TQ_NET_OK && r->status >= 400)
    fail = TQ_NET_HTTP;
  if (fail != TQ_NET_OK) {
    char msg[512];
    if (fail == TQ_NET_HTTP)
      snprintf(msg, sizeof msg, "%s: HTTP status %d", url, r->status);
    else
      snprintf(msg, sizeof msg, "%s: %s", url, r->error[0] ? r->error : tq_net_fail_name(fail));
    push_err(L, tq_net_fail_name(fail), msg, r->status);
    if (r->body) {
      lua_pushlstring(L, r->body, r->body_len);
      lua_setfield(L, -2, "body");
    }
    return 2;
  }
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, r->status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, r->body ? r->body : "", r->body ? r->body_len : 0);
  lua_setfield(L, -2, "body");
  push_headers(L, r->headers);
  lua_setfield(L, -2, "headers");
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  luaL_setmetatable(L, RESP_MT);
  return 1;
}

/* ---- replay ---------------------------------------------------------------------------------- */

#define MARK_SECRET "{{secret:"
#define MARK_REDACTED "{{redacted}}"

/* Where the text of the marker at pat starts to match: the run's secret KEY of
 * "{{secret:KEY}}" raw and percent-encoded in v[0..1], or "{{redacted}}" (*any = 1). Returns
 * the marker's length, 0 when pat holds no marker (or names a secret the run does not have:
 * then *none = 1). */
static size_t marker_at(const char *pat, const tq_lua_script *s, const char **raw, int *any,
                        int *none) {
  *any = *none = 0;
  *raw = NULL;
  if (strncmp(pat, MARK_REDACTED, sizeof MARK_REDACTED - 1) == 0) {
    *any = 1;
    return sizeof MARK_REDACTED - 1;
  }
  if (strncmp(pat, MARK_SECRET, sizeof MARK_SECRET - 1) != 0)
    return 0;
  const char *key = pat + sizeof MARK_SECRET - 1, *end = strstr(key, "}}");
  if (end == NULL)
    return 0;
  for (size_t i = 0; i < s->n_secrets && *raw == NULL; i++)
    if (strlen(s->secrets[i].key) == (size_t)(end - key) &&
        strncmp(s->secrets[i].key, key, (size_t)(end - key)) == 0)
      *raw = s->secrets[i].value;
  *none = *raw == NULL;
  return (size_t)(end + 2 - pat);
}

/* Whether url matches the recorded pat, in which "{{secret:KEY}}" (what `plugin test --record`
 * wrote for a secret) stands for the run's own secret KEY as sent, raw or percent-encoded,
 * and "{{redacted}}" for any text without / ? & # = (a value masked by name). A set of the
 * positions of url reachable so far is carried along pat: linear in both lengths. */
static int marker_match(const char *pat, const char *url, const tq_lua_script *s) {
  size_t n = strlen(url);
  unsigned char *cur = calloc(n + 1, 1), *next = calloc(n + 1, 1);
  int ok = 0;
  if (cur == NULL || next == NULL)
    goto done;
  cur[0] = 1;
  while (*pat) {
    const char *raw;
    int any, none;
    size_t mlen = marker_at(pat, s, &raw, &any, &none);
    memset(next, 0, n + 1);
    if (none)
      goto done;
    if (any) {
      for (size_t t = 0; t <= n; t++)
        next[t] = cur[t] || (t > 0 && next[t - 1] && strchr("/?&#=", url[t - 1]) == NULL);
    } else if (raw) {
      char *esc = curl_easy_escape(NULL, raw, 0);
      size_t lr = strlen(raw), le = esc ? strlen(esc) : 0;
      for (size_t t = 0; t <= n; t++) {
        if (!cur[t])
          continue;
        if (t + lr <= n && memcmp(url + t, raw, lr) == 0)
          next[t + lr] = 1;
        if (esc && t + le <= n && memcmp(url + t, esc, le) == 0)
          next[t + le] = 1;
      }
      curl_free(esc);
    } else {
      for (size_t t = 0; t < n; t++)
        next[t + 1] = cur[t] && url[t] == *pat;
      mlen = 1;
    }
    unsigned char *swap = cur;
    cur = next;
    next = swap;
    pat += mlen;
  }
  ok = cur[n];
done:
  free(cur);
  free(next);
  return ok;
}

static const replay_entry *replay_find(const tq_lua *rt, const tq_lua_script *s, const char *method,
                                       const char *url) {
  for (size_t i = 0; i < rt->n_replay; i++)
    if (strcmp(rt->replay[i].method, method) == 0 && strcmp(rt->replay[i].url, url) == 0)
      return &rt->replay[i];
  for (size_t i = 0; i < rt->n_replay; i++)
    if (strcmp(rt->replay[i].method, method) == 0 && strstr(rt->replay[i].url, "{{") &&
        marker_match(rt->replay[i].url, url, s))
      return &rt->replay[i];
  return NULL;
}

/* ---- recording: the request kept until its answer, for tq_lua_opts.record ----------------------
 */

struct http_rec {
  char *method, *url, *body;
  size_t body_len;
  char **headers;
  size_t n_headers;
};

void http_rec_free(struct http_rec *rec) {
  if (rec == NULL)
    return;
  for (size_t i = 0; i < rec->n_headers; i++) {
    explicit_bzero(rec->headers[i], strlen(rec->headers[i])); /* may hold secrets */
    free(rec->headers[i]);
  }
  free(rec->headers);
  free(rec->method);
  free(rec->url);
  free(rec->body);
  free(rec);
}

static struct http_rec *rec_new(const http_req *r) {
  struct http_rec *rec = calloc(1, sizeof *rec);
  if (rec == NULL)
    return NULL;
  rec->method = tq_strdup(r->method);
  rec->url = tq_strdup(r->url.data);
  rec->headers = calloc(r->n_lines ? r->n_lines : 1, sizeof *rec->headers);
  rec->body = malloc(r->body_len + 1);
  int ok = rec->method && rec->url && rec->headers && rec->body;
  for (size_t i = 0; ok && i < r->n_lines; i++)
    ok = (rec->headers[rec->n_headers++] = tq_strdup(r->lines[i])) != NULL;
  if (!ok) {
    http_rec_free(rec);
    return NULL;
  }
  if (r->body_len)
    memcpy(rec->body, r->body, r->body_len);
  rec->body[r->body_len] = '\0';
  rec->body_len = r->body_len;
  return rec;
}

/* Hands the kept request and its response to the recorder, then forgets the request. */
static void rec_deliver(tq_lua_run *run, const tq_net_response *resp) {
  struct http_rec *rec = run->rec;
  run->rec = NULL;
  tq_lua_exchange x = {.plugin = run->script->name,
                       .method = rec->method,
                       .url = rec->url,
                       .headers = (const char *const *)rec->headers,
                       .n_headers = rec->n_headers,
                       .body = rec->body_len ? rec->body : NULL,
                       .body_len = rec->body_len,
                       .resp = resp};
  run->rt->opts.record(run->rt->opts.record_ud, &x);
  http_rec_free(rec);
}

/* A copy of the recorded exchange as a response, as if tq_net had delivered it. */
static tq_net_response *replay_response(const replay_entry *e) {
  tq_net_response *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->fail = e->fail;
  r->status = e->status;
  r->attempts = 1;
  r->headers = tq_strdup(e->headers);
  r->body = malloc(e->body_len + 1);
  if (r->headers == NULL || r->body == NULL) {
    tq_net_response_free(r);
    return NULL;
  }
  memcpy(r->body, e->body, e->body_len);
  r->body[e->body_len] = '\0';
  r->body_len = e->body_len;
  if (e->fail != TQ_NET_OK)
    snprintf(r->error, sizeof r->error, "recorded %s", tq_net_fail_name(e->fail));
  return r;
}

/* ---- the binding ----------------------------------------------------------------------------- */

static void http_done(void *ud, tq_net_response *resp) {
  tq_lua_run *run = ud;
  if (run->rec && run->rt->opts.record)
    rec_deliver(run, resp);
  run->io_pending = 0;
  run->rt->io_pending--;
  if (run->state == RUN_DONE) { /* killed or cancelled while waiting */
    tq_net_response_free(resp);
    if (run->orphan)
      run_destroy(run);
    return;
  }
  run->resp = resp;
  run_mark_ready(run);
}

/* Resumed by the scheduler: the URL is at the top of the stack. */
static int http_cont(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  (void)kctx;
  tq_lua_run *run = run_of(L);
  run_uncharge(run, run->io_charge);
  run->io_charge = 0;
  if (run->resp == NULL)
    return luaL_error(L, "http: resumed without a response");
  /* The request's own timeout is the run's remaining time: when it fired, the run is out of
   * time too, and dies as such rather than seeing a "timeout" error it might retry. */
  if (run->kill == KILL_NONE && tq_mono_ms() >= run->deadline_ms)
    return run_kill_raise(L, run, KILL_TIMEOUT);
  const char *url = lua_tostring(L, -1);
  /* resp stays owned by the run until pushed: if pushing raises, run_destroy or the next
   * request frees it. */
  int n = push_response(L, run->resp, url);
  tq_net_response_free(run->resp);
  run->resp = NULL;
  return n;
}

static int http_submit(lua_State *L, tq_lua_run *run, http_req *r) {
  tq_lua *rt = run->rt;
  tq_lua_script *s = run->script;
  lua_pushstring(L, r->url.data); /* the continuation's URL */
  if (run->resp) {                /* left by a continuation that raised */
    tq_net_response_free(run->resp);
    run->resp = NULL;
  }
  if (rt->opts.replay_file) {
    const replay_entry *e = replay_find(rt, s, r->method, r->url.data);
    if (e == NULL) {
      req_free(r);
      return luaL_error(L, "http: no recorded response for %s %s in replay file %s", r->method,
                        lua_tostring(L, -1), rt->opts.replay_file);
    }
    run->resp = replay_response(e);
    req_free(r);
    if (run->resp == NULL)
      return luaL_error(L, "http: out of memory");
    run_mark_ready(run);
    return lua_yieldk(L, 0, 0, http_cont);
  }
  if (rt->opts.net == NULL || s->provider == NULL) {
    req_free(r);
    return luaL_error(L, "http: plugin '%s' has no network (no provider configured)", s->name);
  }
  header_lines(r);
  if (rt->opts.record) {
    http_rec_free(run->rec);
    if ((run->rec = rec_new(r)) == NULL) {
      req_free(r);
      return luaL_error(L, "http: out of memory");
    }
  }
  tq_net_request nr = {.method = r->method,
                       .url = r->url.data,
                       .headers = r->lines,
                       .n_headers = r->n_lines,
                       .body = r->body,
                       .body_len = r->body_len,
                       .timeout_ms = r->timeout_ms};
  if (tq_log_enabled(TQ_LOG_DEBUG)) { /* the URL with credentials by name and by value masked */
    char *masked = tq_net_url_mask(lua_tostring(L, -1), SECRET_MASK);
    char *shown = masked ? redact_dup(s, masked) : NULL;
    tq_log(TQ_LOG_DEBUG, LUA_PART, "plugin=%s run=%llu http %s %s", s->name,
           (unsigned long long)run->id, nr.method, shown ? shown : "(out of memory)");
    free(shown);
    free(masked);
  }
  tq_err err;
  tq_code rc = tq_net_submit(rt->opts.net, s->provider, &nr, http_done, run, &err);
  req_free(r);
  if (rc != TQ_OK)
    return luaL_error(L, "http: %s", err.msg);
  run->io_pending = 1;
  rt->io_pending++;
  run->state = RUN_WAITING;
  return lua_yieldk(L, 0, 0, http_cont);
}

/* Builds r under a pcall so that its buffers are freed when an option is bad. */
static int build_protected(lua_State *L) {
  http_req *r = lua_touserdata(L, 1);
  tq_lua_run *run = lua_touserdata(L, 2);
  build_request(L, 3, r, run);
  /* tq_net keeps a copy of the body until the answer: charged to the run until then */
  run_uncharge(run, run->io_charge);
  run->io_charge = 0;
  if (r->body_len) {
    run_charge(L, run, C_COST(r->body_len));
    run->io_charge = C_COST(r->body_len);
  }
  r->method = lua_pushstring(L, r->method); /* returned so that it outlives the pcall */
  lua_pushvalue(L, -2);                     /* the body (string or nil) */
  return 2;
}

/* http.request{...}: argument 1 is the options table. */
static int l_http_request(lua_State *L) {
  tq_lua_run *run = run_check(L, "http.request");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  http_req r;
  memset(&r, 0, sizeof r);
  tq_buf_init(&r.url, 8192);
  tq_buf_init(&r.headers, 64 * 1024);
  lua_pushcfunction(L, build_protected);
  lua_pushlightuserdata(L, &r);
  lua_pushlightuserdata(L, run);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
    req_free(&r);
    return lua_error(L);
  }
  r.body = lua_tolstring(L, -1, &r.body_len);
  return http_submit(L, run, &r);
}

/* http.get(url, opts) / http.post(url, opts): request with method and url set. */
static int http_with(lua_State *L, const char *method) {
  luaL_checkstring(L, 1);
  lua_settop(L, 2);
  lua_newtable(L);
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 3);
    }
  }
  lua_pushstring(L, method);
  lua_setfield(L, 3, "method");
  lua_pushvalue(L, 1);
  lua_setfield(L, 3, "url");
  lua_replace(L, 1);
  lua_settop(L, 1);
  return l_http_request(L);
}

/* Resumed by the scheduler once the sleep is over (or the run's deadline came). */
static int sleep_cont(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  (void)kctx;
  tq_lua_run *run = run_of(L);
  if (run->kill == KILL_NONE && tq_mono_ms() >= run->deadline_ms)
    return run_kill_raise(L, run, KILL_TIMEOUT);
  return 0;
}

/* http.sleep(ms): yields for ms milliseconds while the other runs go on (the scheduler wakes
 * the run; the net loop keeps driving I/O meanwhile). A sleep that would outlast the run's
 * timeout ends at the deadline, where the run is killed. In replay mode it returns at once:
 * recorded answers do not need pacing. */
static int l_http_sleep(lua_State *L) {
  tq_lua_run *run = run_check(L, "http.sleep");
  lua_Number ms = luaL_checknumber(L, 1);
  if (!(ms >= 0) || ms > 1e12) /* NaN too; the bound keeps the conversion below defined */
    return luaL_error(L, "http.sleep: ms must be a number of milliseconds from 0 to 1e12 (got %f)",
                      (double)ms);
  if (run->rt->opts.replay_file)
    return 0;
  if (!lua_isyieldable(L))
    return luaL_error(L, "http.sleep: cannot sleep here (a module loading, a metamethod)");
  run_sleep(run, tq_mono_ms() + (int64_t)ms);
  return lua_yieldk(L, 0, 0, sleep_cont);
}

static int l_http_get(lua_State *L) { return http_with(L, "GET"); }
static int l_http_post(lua_State *L) { return http_with(L, "POST"); }

int luaopen_tq_http(lua_State *L) {
  static const luaL_Reg fns[] = {{"request", l_http_request},
                                 {"get", l_http_get},
                                 {"post", l_http_post},
                                 {"sleep", l_http_sleep},
                                 {NULL, NULL}};
  /* Shared by every response of every run: hidden from scripts (getmetatable(resp) is false),
   * so that no run can change resp:json or add a __gc for the others. */
  luaL_newmetatable(L, RESP_MT);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, resp_json);
  lua_setfield(L, -2, "json");
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  return 1;
}

/* ---- loading the replay file ------------------------------------------------------------------
 */

static tq_net_fail fail_from_name(const char *s) {
  for (int f = TQ_NET_TIMEOUT; f <= TQ_NET_HTTP; f++)
    if (strcmp(tq_net_fail_name((tq_net_fail)f), s) == 0)
      return (tq_net_fail)f;
  return TQ_NET_OK;
}

static tq_code replay_headers(const cJSON *h, tq_buf *out) {
  const cJSON *c;
  cJSON_ArrayForEach(c, h) {
    if (!cJSON_IsString(c) || tq_buf_printf(out, "%s: %s\r\n", c->string, c->valuestring))
      return TQ_EINVAL;
  }
  return TQ_OK;
}

/* One {method, url, status, headers, body | json, error} object into e. */
static tq_code replay_entry_parse(const cJSON *j, replay_entry *e, const char *path, int i,
                                  tq_err *err) {
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(j, "method");
  const cJSON *url = cJSON_GetObjectItemCaseSensitive(j, "url");
  const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
  const cJSON *headers = cJSON_GetObjectItemCaseSensitive(j, "headers");
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(j, "body");
  const cJSON *json = cJSON_GetObjectItemCaseSensitive(j, "json");
  const cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
  if (!cJSON_IsString(url))
    return tq_err_set(err, TQ_EINVAL, "%s: exchange %d: \"url\" must be a string", path, i);
  if (method && !cJSON_IsString(method))
    return tq_err_set(err, TQ_EINVAL, "%s: exchange %d: \"method\" must be a string", path, i);
  if (error && (!cJSON_IsString(error) || fail_from_name(error->valuestring) == TQ_NET_OK))
    return tq_err_set(err, TQ_EINVAL,
                      "%s: exchange %d: \"error\" must be one of timeout, "
                      "refused, tls, blocked, too_large, http",
                      path, i);
  if (status && !cJSON_IsNumber(status))
    return tq_err_set(err, TQ_EINVAL, "%s: exchange %d: \"status\" must be a number", path, i);
  tq_buf hb;
  tq_buf_init(&hb, 0);
  if (headers && (!cJSON_IsObject(headers) || replay_headers(headers, &hb) != TQ_OK)) {
    tq_buf_free(&hb);
    return tq_err_set(err, TQ_EINVAL,
                      "%s: exchange %d: \"headers\" must be an object of "
                      "strings",
                      path, i);
  }
  e->method = tq_strdup(method ? method->valuestring : "GET");
  e->url = tq_strdup(url->valuestring);
  e->status = status ? status->valueint : (error ? 0 : 200);
  e->fail = error ? fail_from_name(error->valuestring) : TQ_NET_OK;
  e->headers = tq_buf_take(&hb);
  if (json)
    e->body = cJSON_PrintUnformatted(json);
  else
    e->body = tq_strdup(cJSON_IsString(body) ? body->valuestring : "");
  if (!e->method || !e->url || !e->headers || !e->body)
    return tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
  e->body_len = strlen(e->body);
  return TQ_OK;
}

tq_code replay_load(tq_lua *rt, const char *path, tq_err *err) {
  char *text = NULL;
  size_t len = 0;
  tq_code rc = read_file(path, 64u << 20, &text, &len, err);
  if (rc != TQ_OK)
    return rc;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (root == NULL) {
    rc = tq_err_set(err, TQ_EINVAL, "%s: invalid JSON at byte %zu", path,
                    end ? (size_t)(end - text) + 1 : (size_t)0);
    goto fail;
  }
  const cJSON *list = cJSON_IsArray(root) ? root : cJSON_GetObjectItem(root, "exchanges");
  if (!cJSON_IsArray(list)) {
    rc = tq_err_set(err, TQ_EINVAL,
                    "%s: expected an array of exchanges (or "
                    "{\"exchanges\": [...]})",
                    path);
    goto fail;
  }
  int n = cJSON_GetArraySize(list);
  rt->replay = calloc(n ? (size_t)n : 1, sizeof *rt->replay);
  if (rt->replay == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  int i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, list) {
    rt->n_replay++;
    rc = replay_entry_parse(c, &rt->replay[i], path, i + 1, err);
    if (rc != TQ_OK)
      goto fail;
    i++;
  }
fail:
  cJSON_Delete(root);
  free(text);
  return rc;
}

void replay_free(tq_lua *rt) {
  for (size_t i = 0; i < rt->n_replay; i++) {
    free(rt->replay[i].method);
    free(rt->replay[i].url);
    free(rt->replay[i].headers);
    free(rt->replay[i].body);
  }
  free(rt->replay);
  rt->replay = NULL;
  rt->n_replay = 0;
}
