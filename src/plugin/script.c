/* script.c: how a plugin's script is loaded, in one place: tq_lua_script_opts from a plugin,
 * its configuration and (for an action) its own script and limits, for every caller (the
 * server's engine, one-off runs, bulk runs, the checks); and `tqhost plugin check`'s plugin
 * half (the manifest, the script compiled with the default config, every entry present). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/plugin.h"

/* ---- options ---------------------------------------------------------------------------------
 */

void tq_plugin_script_opts_free(tq_plugin_script_opts *o) {
  if (o == NULL)
    return;
  free(o->lib_dir);
  free(o->kinds);
  if (o->own) {
    tq_plugin_src_free(o->own);
    free(o->own);
  }
  memset(o, 0, sizeof *o);
}

tq_code tq_plugin_script_opts_build(const tq_plugin_script_spec *spec, tq_plugin_script_opts *out,
                                    tq_err *err) {
  memset(out, 0, sizeof *out);
  const tq_plugin *p = spec->plugin;
  const tq_plugin_config *cfg = spec->cfg;
  tq_code rc = TQ_OK;
  /* plugins_dir/lib and p->dir/../lib name the same folder for a plugin of the plugins
   * folder; the second serves a plugin checked or run from elsewhere. */
  int n = spec->plugins_dir ? asprintf(&out->lib_dir, "%s/lib", spec->plugins_dir)
                            : asprintf(&out->lib_dir, "%s/../lib", p->dir);
  if (n < 0) {
    out->lib_dir = NULL;
    return tq_err_set(err, TQ_ENOMEM, "plugin %s: out of memory", p->name);
  }
  if ((rc = tq_plugin_config_kinds(p, cfg, &out->kinds, err)) != TQ_OK)
    goto fail;
  const tq_plugin_src *src = spec->src;
  if (src == NULL) {
    if ((out->own = calloc(1, sizeof *out->own)) == NULL) {
      rc = tq_err_set(err, TQ_ENOMEM, "plugin %s: out of memory", p->name);
      goto fail;
    }
    if ((rc = tq_plugin_src_read(p, out->own, err)) != TQ_OK)
      goto fail;
    src = out->own;
  }
  tq_lua_script_opts *so = &out->so;
  tq_lua_script_opts_init(so);
  so->name = p->name;
  so->path = spec->script ? spec->script : p->script;
  so->lib_dir = out->lib_dir;
  so->provider = spec->provider;
  so->config = cfg->config;
  so->n_config = cfg->n_config;
  so->config_kinds = out->kinds;
  if (spec->with_secrets) {
    so->secrets = cfg->secrets;
    so->n_secrets = cfg->n_secrets;
  }
  so->limits = spec->limits ? *spec->limits : p->limits;
  /* The snapshot holds the plugin's own script: an action's script of another file is read
   * at load. The modules are the plugin's lib/ either way. */
  if (strcmp(so->path, p->script) == 0) {
    so->source = src->script;
    so->source_len = src->script_len;
  }
  so->modules = src->mods;
  so->n_modules = src->n_mods;
  return TQ_OK;
fail:
  tq_plugin_script_opts_free(out);
  return rc;
}

/* ---- plugin check ----------------------------------------------------------------------------
 */

/* Where operations[i].entry is written in the manifest, as "file:line:col". */
static void entry_pos(const tq_plugin *p, size_t i, char *out, size_t n) {
  tq_ydoc *doc = NULL;
  tq_err err;
  int line = 0, col = 0;
  if (tq_ydoc_load(p->manifest, &doc, &err) == TQ_OK) {
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(doc->root, "operations");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ops, (int)i), "entry");
    tq_ydoc_pos(doc, e, &line, &col);
  }
  snprintf(out, n, "%s:%d:%d", p->manifest, line, col);
  tq_ydoc_free(doc);
}

void tq_plugin_check_script(const tq_plugin *p, tq_diags *d) {
  tq_lua *rt = NULL;
  tq_lua_script *s = NULL;
  tq_lua_opts lo;
  tq_lua_opts_init(&lo); /* no net: the top level has no network */
  tq_err err;
  tq_plugin_config cfg;
  if (tq_plugin_config_load(NULL, p, NULL, 0, &cfg, &err) != TQ_OK) {
    tq_diags_add(d, "%s: %s", p->manifest, err.msg);
    return;
  }
  tq_lua_limits limits = p->limits;
  tq_plugin_check_limits(&limits);
  tq_plugin_script_spec spec = {.plugin = p, .cfg = &cfg, .limits = &limits};
  tq_plugin_script_opts o;
  if (tq_plugin_script_opts_build(&spec, &o, &err) != TQ_OK ||
      tq_lua_new(&lo, &rt, &err) != TQ_OK || tq_lua_load(rt, &o.so, &s, &err) != TQ_OK) {
    tq_diags_add(d, "%s", err.msg);
  } else {
    for (size_t i = 0; i < p->n_ops; i++) {
      if (tq_lua_script_has_entry(s, p->ops[i].entry))
        continue;
      char pos[4200];
      entry_pos(p, i, pos, sizeof pos);
      tq_diags_add(d, "%s: operations[%zu].entry: %s does not return an entry '%s'", pos, i,
                   p->script, p->ops[i].entry);
    }
  }
  tq_lua_script_free(s);
  tq_lua_free(rt);
  tq_plugin_script_opts_free(&o);
  tq_plugin_config_free(&cfg);
}

tq_code tq_plugin_check(const char *dir, tq_plugin **out, tq_diags *d, tq_err *err) {
  *out = NULL;
  size_t before = d->n;
  tq_plugin *p = NULL;
  tq_err e;
  tq_code rc = tq_plugin_load(dir, &p, d, &e);
  if (rc == TQ_ENOMEM) {
    *err = e;
    return rc;
  }
  if (rc == TQ_OK) {
    tq_plugin_check_script(p, d);
    *out = p;
  } else if (d->n == before) {
    tq_diags_add(d, "%s", e.msg);
  }
  if (d->n == before)
    return TQ_OK;
  return tq_err_set(err, TQ_EINVAL, "%s", d->msgs[before]);
}
