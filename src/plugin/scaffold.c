/* scaffold.c: `tqhost plugin new`: writes a working plugin skeleton (manifest, script, a spec
 * with one recorded exchange, README, optionally an action file) from templates compiled in
 * here. @NAME@ and @LABEL@ are replaced; the skeleton passes `plugin check` and `plugin test`
 * as written. */
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tqhost/plugin.h"

static const char T_MANIFEST[] =
    "# @NAME@: an Operation made by `tqhost plugin new`. Edit the label, the description, the\n"
    "# config fields, the indicator types and the script; `tqhost plugin check` validates it\n"
    "# against schemas/operation.schema.json (docs/plugins.md).\n"
    "name: @NAME@\n"
    "label: @LABEL@\n"
    "version: 0.1.0\n"
    "description: >-\n"
    "  Looks an indicator up in an HTTP JSON API (GET {base_url}/lookup?value=VALUE with the\n"
    "  header X-Api-Key) and records its verdict, score and tags. Replace with what your API\n"
    "  does.\n"
    "author: you\n"
    "requires: { tqhost: \">=0.1\" }\n"
    "script: operation.lua\n"
    "config:\n"
    "  - { key: api_key, label: API Key, type: password, required: true }\n"
    "  - { key: base_url, label: API Base URL, type: url, default: "
    "\"https://api.example.com/v1\" }\n"
    "  - key: update_score\n"
    "    label: Set the score from the API's score (0..10)\n"
    "    type: boolean\n"
    "    default: false\n"
    "operations:\n"
    "  - name: lookup\n"
    "    label: Query @LABEL@\n"
    "    entry: lookup\n"
    "    object_types: [indicator]\n"
    "    indicator_types: [IP Address, FQDN, URL, MD5, SHA-256]\n"
    "network:\n"
    "  hosts: [\"{config.base_url}\"]\n"
    "  rate_limit: { requests: 10, per: 1s }\n"
    "  retry: { \"on\": [429, 500, 502, 503, 504], max: 2 }\n"
    "  cache_ttl: 1h\n"
    "limits: { memory: 16MiB, instructions: 10000000, timeout: 10s }\n";

static const char T_SCRIPT[] =
    "-- operation.lua of @NAME@: one GET, then the change set and what to show.\n"
    "-- The API (replace with yours): GET {base_url}/lookup?value=VALUE, header X-Api-Key,\n"
    "-- answers {\"verdict\": \"malicious\", \"score\": 7, \"tags\": [\"c2\"]} or 404 when "
    "unknown.\n"
    "-- The sandbox API (http, ctx, log) is in docs/lua-api.md.\n"
    "local M = {}\n"
    "\n"
    "-- lookup(obj, ctx): obj.value, obj.indicator_type; returns nothing on success,\n"
    "-- nil and a reason when the run failed (shown to the analyst, nothing written).\n"
    "function M.lookup(obj, ctx)\n"
    "  local resp, err = http.get(ctx.config.base_url .. \"/lookup\", {\n"
    "    query = { value = obj.value },\n"
    "    headers = { [\"X-Api-Key\"] = ctx.secret(\"api_key\") },\n"
    "  })\n"
    "  if not resp then\n"
    "    if err.status == 404 then return nil, \"not found\" end\n"
    "    return nil, err.kind .. \": \" .. err.message\n"
    "  end\n"
    "  local ok, data = pcall(resp.json, resp)\n"
    "  if not ok or type(data) ~= \"table\" then return nil, \"bad answer: not a JSON object\" "
    "end\n"
    "  if data.verdict ~= nil then ctx:attribute(\"@LABEL@ Verdict\", tostring(data.verdict)) "
    "end\n"
    "  local score = tonumber(data.score)\n"
    "  if score then ctx:attribute(\"@LABEL@ Score\", tostring(score)) end\n"
    "  for _, t in ipairs(type(data.tags) == \"table\" and data.tags or {}) do\n"
    "    ctx:tag(tostring(t))\n"
    "  end\n"
    "  if score and tostring(ctx.config.update_score) == \"true\" then\n"
    "    ctx:score(math.max(0, math.min(10, math.floor(score + 0.5))))\n"
    "  end\n"
    "  ctx:show{ value = obj.value, verdict = data.verdict, score = score }\n"
    "end\n"
    "\n"
    "return M\n";

static const char T_SPEC[] =
    "-- Specs of @NAME@: `tqhost plugin test DIR` runs them on the recorded exchange in\n"
    "-- spec/fixtures (no network). Record more answers of your API there with\n"
    "-- `tqhost plugin test DIR --record BASE_URL` (docs/plugins.md, docs/lua-api.md).\n"
    "local T = require \"tqhost.test\"\n"
    "\n"
    "local function ip(value)\n"
    "  return { type = \"indicator\", indicator_type = \"IP Address\", value = value, score = 0,\n"
    "           status = \"Active\", attributes = {} }\n"
    "end\n"
    "\n"
    "describe(\"@NAME@ lookup\", function()\n"
    "  it(\"records the verdict, score and tags of a hit\", function()\n"
    "    local r = T.run{ entry = \"lookup\", object = ip(\"45.83.122.166\"),\n"
    "                     secrets = { api_key = \"test-key\" }, replay = "
    "\"spec/fixtures/hit.json\" }\n"
    "    assert.are.equal(\"ok\", r.status)\n"
    "    assert.are.same({ { name = \"@LABEL@ Verdict\", value = \"malicious\" },\n"
    "                      { name = \"@LABEL@ Score\", value = \"7\" } }, r.changes.attributes)\n"
    "    assert.are.same({ \"c2\" }, r.changes.tags)\n"
    "    assert.is_nil(r.changes.score)\n"
    "    assert.are.equal(\"malicious\", r.show.verdict)\n"
    "  end)\n"
    "\n"
    "  it(\"sets the score when update_score is on\", function()\n"
    "    local r = T.run{ entry = \"lookup\", object = ip(\"45.83.122.166\"),\n"
    "                     config = { update_score = true }, secrets = { api_key = \"test-key\" },\n"
    "                     replay = \"spec/fixtures/hit.json\" }\n"
    "    assert.are.equal(\"ok\", r.status)\n"
    "    assert.are.equal(7, r.changes.score)\n"
    "  end)\n"
    "end)\n";

static const char T_FIXTURE[] =
    "[\n"
    "  {\"method\": \"GET\", \"url\": "
    "\"https://api.example.com/v1/lookup?value=45.83.122.166\", \"status\": 200,\n"
    "   \"headers\": {\"Content-Type\": \"application/json\"},\n"
    "   \"json\": {\"verdict\": \"malicious\", \"score\": 7, \"tags\": [\"c2\"]}}\n"
    "]\n";

static const char T_README[] =
    "# @LABEL@ (`@NAME@`)\n"
    "\n"
    "An Operation plugin for tqhost, made by `tqhost plugin new @NAME@`.\n"
    "\n"
    "- `manifest.yaml`: name, config fields, the operation `lookup` and the indicator types it\n"
    "  accepts, the hosts it may reach (`network.hosts`), limits.\n"
    "- `operation.lua`: the entry `lookup(obj, ctx)`.\n"
    "- `spec/lookup_spec.lua` and `spec/fixtures/hit.json`: specs on one recorded exchange.\n"
    "@ACTION_LINE@"
    "\n"
    "```\n"
    "tqhost plugin check PLUGIN_DIR            # manifest, script, entries\n"
    "tqhost plugin test PLUGIN_DIR             # the specs, no network\n"
    "tqhost plugin test PLUGIN_DIR --record https://api.example.com/v1 --force \\\n"
    "    --set api_key=env:API_KEY             # record spec/fixtures from your API, keys removed\n"
    "tqhost plugin configure @NAME@ api_key=- base_url=https://api.example.com/v1\n"
    "tqhost op run @NAME@ 45.83.122.166        # a dry run\n"
    "tqhost op run @NAME@ 45.83.122.166 --apply\n"
    "```\n"
    "\n"
    "The steps are in tqhost's docs/plugins.md, \"Your first plugin\".\n";

static const char T_ACTION_LINE[] =
    "- `actions/@NAME@-action.yaml`: the bulk Action running `lookup` over a collection; copy\n"
    "  it to the actions folder (`$TQHOST_ACTIONS`, default `./actions`).\n";

static const char T_ACTION[] =
    "# @NAME@-action: runs the @NAME@ plugin's `lookup` entry over every indicator of a data\n"
    "# collection (`tqhost action run @NAME@-action --collection NAME`). Copy this file to the\n"
    "# actions folder ($TQHOST_ACTIONS, default ./actions); schemas/action.schema.json.\n"
    "name: @NAME@-action\n"
    "label: @LABEL@ (bulk)\n"
    "version: 0.1.0\n"
    "description: Runs the @LABEL@ lookup over a collection of indicators.\n"
    "author: you\n"
    "plugin: @NAME@\n"
    "entry: lookup\n"
    "input:\n"
    "  object_types: [indicator]\n"
    "  indicator_types: [IP Address, FQDN, URL, MD5, SHA-256]\n"
    "  batch_size: 100\n"
    "  concurrency: 4\n";

/* s with every @NAME@, @LABEL@ and @ACTION_LINE@ replaced (malloc'd), or NULL. */
static char *expand(const char *s, const char *name, const char *label, const char *action_line) {
  const char *keys[] = {"@NAME@", "@LABEL@", "@ACTION_LINE@"};
  const char *vals[] = {name, label, action_line};
  size_t cap = strlen(s) * 2 + 1024, len = 0;
  char *out = malloc(cap);
  if (out == NULL)
    return NULL;
  while (*s) {
    const char *v = NULL;
    size_t klen = 0;
    for (int k = 0; k < 3 && *s == '@'; k++)
      if (strncmp(s, keys[k], strlen(keys[k])) == 0) {
        v = vals[k];
        klen = strlen(keys[k]);
      }
    const char *piece = v ? v : s;
    size_t plen = v ? strlen(v) : 1;
    if (len + plen + 1 > cap) {
      cap = (len + plen + 1) * 2;
      char *n = realloc(out, cap);
      if (n == NULL) {
        free(out);
        return NULL;
      }
      out = n;
    }
    memcpy(out + len, piece, plen);
    len += plen;
    s += v ? klen : 1;
  }
  out[len] = '\0';
  return out;
}

/* The label from the name: "my-lookup" -> "My Lookup". */
static void label_of(const char *name, char *out, size_t n) {
  size_t i = 0;
  int start = 1;
  for (const char *p = name; *p && i + 1 < n; p++) {
    char ch = *p == '-' ? ' ' : *p;
    if (start && ch >= 'a' && ch <= 'z')
      ch = (char)(ch - 'a' + 'A');
    start = ch == ' ';
    out[i++] = ch;
  }
  out[i] = '\0';
}

tq_code tq_plugin_name_check(const char *name, tq_err *err) {
  if (name == NULL || *name == '\0')
    return tq_err_set(err, TQ_EINVAL, "plugin name: empty");
  if (strstr(name, "..") || strchr(name, '/'))
    return tq_err_set(err, TQ_EINVAL, "plugin name '%s': no '..' nor '/' (a folder name)", name);
  regex_t re;
  if (regcomp(&re, "^[a-z0-9][a-z0-9-]{0,63}$", REG_EXTENDED | REG_NOSUB) != 0)
    return tq_err_set(err, TQ_ENOMEM, "plugin name: regcomp failed");
  int bad = regexec(&re, name, 0, NULL, 0);
  regfree(&re);
  if (bad)
    return tq_err_set(err, TQ_EINVAL,
                      "plugin name '%s' does not match ^[a-z0-9][a-z0-9-]{0,63}$ (the manifest "
                      "schema's name: lower-case letters, digits and '-')",
                      name);
  return TQ_OK;
}

static tq_code write_file(const char *dir, const char *rel, const char *text, tq_err *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
  size_t n = strlen(text);
  int bad = fwrite(text, 1, n, f) != n;
  bad |= fclose(f) != 0;
  if (bad)
    return tq_err_set(err, TQ_EIO, "%s: write failed: %s", path, strerror(errno));
  return TQ_OK;
}

static tq_code make_dir(const char *dir, const char *rel, tq_err *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s%s%s", dir, rel ? "/" : "", rel ? rel : "");
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
  return TQ_OK;
}

/* Removes the files a failed scaffold wrote in tmp, then tmp (best effort). */
static void remove_tree(const char *tmp) {
  static const char *const files[] = {"manifest.yaml",
                                      "operation.lua",
                                      "README.md",
                                      "spec/lookup_spec.lua",
                                      "spec/fixtures/hit.json",
                                      "spec/fixtures",
                                      "spec",
                                      "actions",
                                      NULL};
  char path[PATH_MAX];
  for (int i = 0; files[i]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmp, files[i]);
    if (unlink(path) != 0)
      rmdir(path);
  }
}

tq_code tq_plugin_new(const tq_plugin_new_opts *o, char *out, size_t n, tq_err *err) {
  tq_code rc = tq_plugin_name_check(o->name, err);
  if (rc != TQ_OK)
    return rc;
  /* A new plugin goes where its author works: --dir, $TQHOST_PLUGINS, else ./plugins (not the
   * installed plugins folder that tq_plugin_dir finds: that is the host's). */
  const char *env = getenv("TQHOST_PLUGINS");
  const char *dir = o->dir && *o->dir ? o->dir : env && *env ? env : "plugins";
  char final[PATH_MAX], tmp[PATH_MAX], label[80], action_rel[PATH_MAX];
  snprintf(final, sizeof final, "%s/%s", dir, o->name);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return tq_err_set(err, TQ_ENOTFOUND, "%s: no such folder (--dir, or $TQHOST_PLUGINS)", dir);
  int exists = lstat(final, &st) == 0;
  if (exists && !o->force)
    return tq_err_set(err, TQ_EEXIST, "%s exists already (--force writes the skeleton over it)",
                      final);
  if (exists && !S_ISDIR(st.st_mode))
    return tq_err_set(err, TQ_EEXIST, "%s exists and is not a folder", final);
  /* A new plugin is written in a hidden folder beside, then renamed: all or nothing. */
  if (exists)
    snprintf(tmp, sizeof tmp, "%s", final);
  else
    snprintf(tmp, sizeof tmp, "%s/.%s.new.%ld", dir, o->name, (long)getpid());
  label_of(o->name, label, sizeof label);
  snprintf(action_rel, sizeof action_rel, "actions/%s-action.yaml", o->name);
  char *action_line = expand(T_ACTION_LINE, o->name, label, "");
  struct {
    const char *rel, *tpl;
  } files[] = {{"manifest.yaml", T_MANIFEST},
               {"operation.lua", T_SCRIPT},
               {"README.md", T_README},
               {"spec/lookup_spec.lua", T_SPEC},
               {"spec/fixtures/hit.json", T_FIXTURE},
               {action_rel, T_ACTION}};
  size_t nfiles = o->action ? 6 : 5;
  if (action_line == NULL)
    return tq_err_set(err, TQ_ENOMEM, "plugin new: out of memory");
  rc = make_dir(tmp, NULL, err);
  if (rc == TQ_OK)
    rc = make_dir(tmp, "spec", err);
  if (rc == TQ_OK)
    rc = make_dir(tmp, "spec/fixtures", err);
  if (rc == TQ_OK && o->action)
    rc = make_dir(tmp, "actions", err);
  for (size_t i = 0; i < nfiles && rc == TQ_OK; i++) {
    char *text = expand(files[i].tpl, o->name, label, o->action ? action_line : "");
    rc = text ? write_file(tmp, files[i].rel, text, err)
              : tq_err_set(err, TQ_ENOMEM, "plugin new: out of memory");
    free(text);
  }
  if (rc == TQ_OK && !exists && rename(tmp, final) != 0)
    rc = tq_err_set(err, TQ_EIO, "%s: %s", final, strerror(errno));
  if (rc != TQ_OK && !exists) {
    char path[PATH_MAX];
    if (o->action) {
      snprintf(path, sizeof path, "%s/%s", tmp, action_rel);
      unlink(path);
    }
    remove_tree(tmp);
    rmdir(tmp);
  }
  free(action_line);
  if (rc == TQ_OK && out && n)
    snprintf(out, n, "%s", final);
  return rc;
}
