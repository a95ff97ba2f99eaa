/* run.c: running one operation on one object: picking the operation, turning the manifest's
 * network section into a tq_net provider policy, and driving one Lua run to completion with
 * the plugin's config, secrets and limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/ioc.h"
#include "tqhost/plugin.h"

/* ---- picking the operation ----------------------------------------------------------------- */

static void op_names(const tq_plugin *p, char *out, size_t n) {
  out[0] = '\0';
  for (size_t i = 0; i < p->n_ops; i++) {
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%s%s:%s", i ? ", " : "", p->name, p->ops[i].name);
  }
}

tq_code tq_plugin_op_pick(const tq_plugin *p, const char *op_name, const char *object_type,
                          const char *indicator_type, const tq_plugin_op **out, tq_err *err) {
  char names[1024];
  op_names(p, names, sizeof names);
  if (op_name) {
    if ((*out = tq_plugin_op_find(p, op_name)) == NULL)
      return tq_err_set(err, TQ_ENOTFOUND, "plugin %s has no operation '%s' (it has: %s)", p->name,
                        op_name, names);
    if (!tq_plugin_op_accepts(*out, object_type, indicator_type))
      return tq_err_set(err, TQ_EINVAL, "%s:%s does not accept %s%s%s", p->name, op_name,
                        object_type ? object_type : "indicator", indicator_type ? " " : "",
                        indicator_type ? indicator_type : "");
    return TQ_OK;
  }
  const tq_plugin_op *found = NULL;
  size_t n = 0;
  for (size_t i = 0; i < p->n_ops; i++) {
    if (tq_plugin_op_accepts(&p->ops[i], object_type, indicator_type)) {
      found = &p->ops[i];
      n++;
    }
  }
  if (n == 1) {
    *out = found;
    return TQ_OK;
  }
  if (n == 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no operation of plugin %s accepts %s%s%s (it has: %s)",
                      p->name, object_type ? object_type : "indicator", indicator_type ? " " : "",
                      indicator_type ? indicator_type : "", names);
  return tq_err_set(err, TQ_EINVAL, "plugin %s has several operations for %s: name one of %s",
                    p->name, indicator_type ? indicator_type : "this object", names);
}

/* ---- network policy ------------------------------------------------------------------------ */

/* host with every "{config.KEY}" replaced; TQ_EINVAL when KEY has no value. */
static tq_code substitute(const char *host, const tq_plugin_config *cfg, char **out, tq_err *err) {
  tq_buf b;
  tq_buf_init(&b, 4096);
  const char *s = host;
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && *s) {
    const char *open = strstr(s, "{config.");
    if (open == NULL) {
      rc = tq_buf_adds(&b, s);
      break;
    }
    const char *close = strchr(open, '}');
    if (close == NULL) {
      rc = tq_err_set(err, TQ_EINVAL, "network host '%s': unclosed '{'", host);
      break;
    }
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(close - open - 8), open + 8);
    const char *v = tq_plugin_config_get(cfg, key);
    if (v == NULL) {
      rc = tq_err_set(err, TQ_EINVAL, "network host '%s': config field '%s' has no value", host,
                      key);
      break;
    }
    rc = tq_buf_add(&b, s, (size_t)(open - s));
    if (rc == TQ_OK)
      rc = tq_buf_adds(&b, v);
    s = close + 1;
  }
  if (rc == TQ_OK)
    *out = tq_buf_take(&b);
  tq_buf_free(&b);
  return rc == TQ_ENOMEM ? tq_err_set(err, rc, "network host '%s': too long", host) : rc;
}

/* A URL gives its host; anything else is taken as a host name (or host:port) already. */
static tq_code host_of(const char *text, char **out, tq_err *err) {
  if (strstr(text, "://") == NULL) {
    *out = tq_strdup(text);
    return *out ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  tq_code rc = tq_ioc_url_host(text, out, err);
  if (rc != TQ_OK)
    tq_err_prefix(err, "network host '%s': ", text);
  return rc;
}

tq_code tq_plugin_policy_build(const tq_plugin *p, const tq_plugin_config *cfg,
                               tq_plugin_policy *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  tq_net_policy_init(&out->policy);
  tq_code rc = TQ_OK;
  if (p->net.n_hosts && (out->hosts = calloc(p->net.n_hosts, sizeof *out->hosts)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "policy: out of memory");
  for (size_t i = 0; i < p->net.n_hosts && rc == TQ_OK; i++) {
    char *url = NULL;
    rc = substitute(p->net.hosts[i], cfg, &url, err);
    if (rc == TQ_OK)
      rc = host_of(url, &out->hosts[out->n_hosts], err);
    if (rc == TQ_OK)
      out->n_hosts++;
    free(url);
  }
  if (rc != TQ_OK) {
    tq_plugin_policy_free(out);
    return rc;
  }
  tq_net_policy *pol = &out->policy;
  pol->allow_hosts = (const char *const *)out->hosts;
  pol->n_allow_hosts = out->n_hosts;
  /* Default deny: no network.hosts, no network; the host's own networks only when named. */
  pol->deny_unlisted = 1;
  pol->block_private = 1;
  if (p->net.rate_requests > 0 && p->net.rate_per_ms > 0) {
    pol->rate_per_s = p->net.rate_requests * 1000.0 / (double)p->net.rate_per_ms;
    pol->burst = p->net.rate_requests;
  }
  pol->retry_on = p->net.retry_on;
  pol->n_retry_on = p->net.n_retry_on;
  pol->retry_max = p->net.retry_max;
  pol->cache_ttl_ms = p->net.cache_ttl_ms;
  if (p->limits.timeout_ms > 0)
    pol->timeout_ms = p->limits.timeout_ms;
  return TQ_OK;
}

void tq_plugin_policy_free(tq_plugin_policy *pp) {
  for (size_t i = 0; i < pp->n_hosts; i++)
    free(pp->hosts[i]);
  free(pp->hosts);
  memset(pp, 0, sizeof *pp);
}

/* ---- one run -----------------------------------------------------------------------------------
 */

/* Loads the script into rt and runs the operation's entry on the object. */
static tq_code run_in(tq_lua *rt, const tq_op_request *rq, const tq_lua_limits *limits,
                      tq_net_provider *prov, tq_op_result *res, tq_err *err) {
  tq_plugin_script_spec spec = {.plugin = rq->plugin,
                                .cfg = rq->cfg,
                                .with_secrets = 1,
                                .provider = prov,
                                .plugins_dir = rq->plugins_dir,
                                .limits = limits};
  tq_plugin_script_opts o;
  tq_lua_script *script = NULL;
  tq_lua_run *run = NULL;
  tq_code rc = tq_plugin_script_opts_build(&spec, &o, err);
  if (rc != TQ_OK)
    return rc;
  rc = tq_lua_load(rt, &o.so, &script, err);
  tq_plugin_script_opts_free(&o);
  if (rc != TQ_OK)
    return rc;
  if (!tq_lua_script_has_entry(script, rq->op->entry)) {
    rc = tq_err_set(err, TQ_ENOTFOUND, "%s: operation %s: the script has no entry '%s'",
                    rq->plugin->script, rq->op->name, rq->op->entry);
    goto done;
  }
  rc = tq_lua_run_start(rt, script, rq->op->entry, rq->obj, NULL, NULL, &run, err);
  if (rc == TQ_OK)
    rc = tq_lua_run_all(rt, err);
  if (rc == TQ_OK)
    rc = tq_op_result_take(run, res, err);
done:
  tq_lua_run_free(run);
  tq_lua_script_free(script);
  return rc;
}

tq_code tq_plugin_op_run(const tq_op_request *rq, tq_op_result *res, tq_err *err) {
  memset(res, 0, sizeof *res);
  tq_changeset_init(&res->cs);
  tq_plugin_policy pp = {0};
  tq_net *net = NULL;
  tq_net_provider *prov = NULL;
  tq_lua *rt = NULL;
  tq_lua_opts lo;
  tq_lua_opts_init(&lo);
  tq_host_config found;
  tq_host_config_defaults(&found);
  const tq_host_config *host = rq->host ? rq->host : &found;
  tq_lua_limits limits = rq->plugin->limits;
  tq_code rc = rq->host ? TQ_OK : tq_host_config_find(&found, err);
  if (rc != TQ_OK)
    goto fail;
  tq_host_limits_clamp(host, rq->plugin->name, &limits);
  if (rq->replay_file == NULL) {
    if ((rc = tq_plugin_policy_build(rq->plugin, rq->cfg, &pp, err)) != TQ_OK)
      goto fail;
    if (pp.policy.timeout_ms > limits.timeout_ms)
      pp.policy.timeout_ms = limits.timeout_ms;
    if ((rc = tq_net_new(rq->lib, &net, err)) != TQ_OK ||
        (rc = tq_net_provider_get(net, rq->plugin->name, &pp.policy, &prov, err)) != TQ_OK)
      goto fail;
    if (rq->dry_run)
      tq_net_cache_readonly(net);
  }
  lo.net = net;
  lo.lib = rq->lib;
  lo.replay_file = rq->replay_file;
  if (rq->replay_file == NULL) {
    lo.record = rq->record;
    lo.record_ud = rq->record_ud;
  }
  if ((rc = tq_lua_new(&lo, &rt, err)) != TQ_OK)
    goto fail;
  rc = run_in(rt, rq, &limits, prov, res, err);
fail:
  tq_host_config_free(&found);
  tq_lua_free(rt);
  tq_net_free(net);
  tq_plugin_policy_free(&pp);
  if (rc != TQ_OK)
    tq_op_result_free(res);
  return rc;
}

void tq_op_result_free(tq_op_result *res) {
  free(res->message);
  free(res->traceback);
  tq_changeset_free(&res->cs);
  res->message = res->traceback = NULL;
}
