/* whois.c: the RST Whois API family of rstsim (spec section 4): GET /v1/whois/{domain},
 * /v1/whois/full/{domain}, /v1/whois/raw/{domain} and /v1/whois/full/raw/{domain}. A
 * subdomain is answered with its registrable domain's record (Public Suffix List, libpsl).
 * The same facts feed resolved.whois of /v1/ioc domain hits, so both APIs agree. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#include "sim.h"

#define DAY 86400

static const psl_ctx_t *g_psl; /* read-only after the one-time load */
static pthread_once_t g_psl_once = PTHREAD_ONCE_INIT;

static void psl_load(void) {
  g_psl = psl_latest(NULL); /* the system list when newer than the built-in one */
  if (g_psl == NULL)
    g_psl = psl_builtin();
}

char *sim_registrable_domain(const char *host) {
  pthread_once(&g_psl_once, psl_load);
  char *lower = tq_strdup(host);
  if (lower == NULL)
    return NULL;
  for (char *p = lower; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  const char *reg = g_psl ? psl_registrable_domain(g_psl, lower) : NULL;
  if (reg == NULL) { /* no list, or host is itself a public suffix: keep the last two labels */
    char *last = strrchr(lower, '.');
    char *prev = last;
    while (prev && prev > lower && prev[-1] != '.')
      prev--;
    reg = prev ? prev : lower;
  }
  char *out = tq_strdup(reg);
  free(lower);
  return out;
}

/* Reserved names (RFC 2606/6761) never have registration data: a test can count on it. */
static int reserved_tld(const char *domain) {
  static const char *const reserved[] = {"test",  "invalid",  "example", "localhost",
                                         "local", "internal", NULL};
  const char *dot = strrchr(domain, '.');
  const char *tld = dot ? dot + 1 : domain;
  for (size_t i = 0; reserved[i]; i++)
    if (strcmp(tld, reserved[i]) == 0)
      return 1;
  return 0;
}

void sim_whois_facts_get(const sim_config *cfg, const char *regdomain, sim_whois_facts *out) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "whois", regdomain);
  memset(out, 0, sizeof *out);
  out->registrar = "unknown";
  out->registrant = "unknown";
  int nodata = reserved_tld(regdomain) || strstr(regdomain, "nowhois") != NULL ||
               strchr(regdomain, '.') == NULL;
  if (sim_unit(&s) < cfg->whois_nodata || nodata)
    return;
  out->havedata = 1;
  out->created = cfg->now - sim_range(&s, 30, 9000) * DAY + sim_range(&s, 0, DAY - 1);
  out->updated = out->created + (cfg->now - out->created) * sim_range(&s, 10, 95) / 100;
  int64_t years = (cfg->now - out->created) / (365 * DAY) + sim_range(&s, 1, 2);
  out->expires = out->created + years * 365 * DAY;
  out->registrar = sim_pick(&s, sim_vocab_registrars);
  out->registrant = sim_pick(&s, sim_vocab_registrants);
}

/* ---- the API ---------------------------------------------------------------------------- */
typedef struct whois_variant {
  int full, raw;
} whois_variant;

static const char *const ns_pairs[] = {"dns1.registrar-servers.com,dns2.registrar-servers.com",
                                       "ns1.reg.ru,ns2.reg.ru",
                                       "ada.ns.cloudflare.com,bob.ns.cloudflare.com",
                                       "ns-1024.awsdns-00.org,ns-512.awsdns-00.net",
                                       "ns1.dnsowl.com,ns2.dnsowl.com,ns3.dnsowl.com",
                                       NULL};
static const char *const statuses[] = {"clientTransferProhibited", "clientDeleteProhibited", "ok",
                                       "clientTransferProhibited,clientUpdateProhibited", NULL};
static const char *const countries[] = {"US", "RU", "NL", "DE", "PA", "IS", "GB", "SG", NULL};

/* The extended (/full/) fields: the spec leaves them open, so these are rstsim's choice. */
static void add_full_fields(cJSON *o, sim_stream *s, const sim_whois_facts *f, int *ok) {
  char buf[128];
  sim_j_str(o, "registrant_country", sim_pick(s, countries), ok);
  sim_j_int_str(o, "registrar_iana_id", sim_range(s, 100, 3999), ok);
  snprintf(buf, sizeof buf, "whois.%s", sim_pick(s, sim_vocab_words));
  sim_j_str(o, "whois_server", buf, ok);
  sim_j_str(o, "dnssec", sim_unit(s) < 0.8 ? "unsigned" : "signedDelegation", ok);
  sim_j_str(o, "admin_email", strcmp(f->registrant, "unknown") ? "redacted" : "unknown", ok);
  sim_j_str(o, "tech_email", "unknown", ok);
  sim_j_str(o, "source", sim_unit(s) < 0.6 ? "rdap" : "whois", ok);
}

static char *raw_text(const char *domain, const sim_whois_facts *f, const char *status,
                      const char *ns) {
  tq_buf b;
  tq_buf_init(&b, 1 << 16);
  char upper[256];
  size_t n = tq_strlcpy(upper, domain, sizeof upper);
  for (size_t i = 0; i < n && i < sizeof upper; i++)
    upper[i] = (char)toupper((unsigned char)upper[i]);
  if (!f->havedata) {
    tq_buf_printf(&b, "No match for \"%s\".\r\n", upper);
    return tq_buf_take(&b);
  }
  char c[21], u[21], e[21];
  sim_fmt_iso(f->created, c);
  sim_fmt_iso(f->updated, u);
  sim_fmt_iso(f->expires, e);
  tq_buf_printf(&b,
                "Domain Name: %s\r\nUpdated Date: %s\r\nCreation Date: %s\r\n"
                "Registry Expiry Date: %s\r\nRegistrar: %s\r\nDomain Status: %s\r\n",
                upper, u, c, e, f->registrar, status);
  for (const char *p = ns; *p;) {
    size_t len = strcspn(p, ",");
    tq_buf_printf(&b, "Name Server: %.*s\r\n", (int)len, p);
    p += len + (p[len] == ',');
  }
  tq_buf_adds(&b, "DNSSEC: unsigned\r\n>>> Last update of whois database <<<\r\n");
  return b.data ? tq_buf_take(&b) : NULL;
}

static cJSON *whois_record(const sim_config *cfg, const char *domain, whois_variant v) {
  sim_whois_facts f;
  sim_whois_facts_get(cfg, domain, &f);
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "whois.detail", domain);
  const char *status = sim_pick(&s, statuses);
  const char *ns = sim_pick(&s, ns_pairs);
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  if (!f.havedata) {
    sim_j_str(o, "dataError", "no registration data", &ok);
  } else {
    char c[20], u[20], e[20], email[300];
    sim_fmt_time(f.created, c);
    sim_fmt_time(f.updated, u);
    sim_fmt_time(f.expires, e);
    int private = strcmp(f.registrant, "unknown") != 0;
    snprintf(email, sizeof email, "admin@%s", domain);
    sim_j_str(o, "domain", domain, &ok);
    sim_j_str(o, "registrar", f.registrar, &ok);
    sim_j_str(o, "registrant", f.registrant, &ok);
    sim_j_str(o, "registrant_org", private ? f.registrant : "unknown", &ok);
    sim_j_str(o, "registrant_email", private ? "unknown" : email, &ok);
    sim_j_str(o, "created_on", c, &ok);
    sim_j_str(o, "updated_on", u, &ok);
    sim_j_str(o, "expires_on", e, &ok);
    sim_j_str(o, "nameservers", ns, &ok);
    sim_j_int(o, "age", (cfg->now - f.created) / DAY, &ok);
    sim_j_str(o, "status", status, &ok);
    if (v.full)
      add_full_fields(o, &s, &f, &ok);
  }
  if (v.raw) {
    char *raw = raw_text(domain, &f, status, ns);
    ok = ok && raw != NULL;
    sim_j_str(o, "raw", raw ? raw : "", &ok);
    free(raw);
  }
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static tq_code whois_answer(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                            whois_variant v, tq_err *err) {
  tq_code code = TQ_OK;
  char *host = sim_url_decode(rq->tail, strlen(rq->tail));
  char *reg = NULL;
  if (host == NULL)
    return tq_err_set(err, TQ_ENOMEM, "whois: no memory");
  sim_ioc_type t = sim_ioc_classify(host);
  if (t != SIM_IOC_DOMAIN) {
    char msg[300];
    snprintf(msg, sizeof msg, "whois: '%.200s' is not a domain name", host);
    code = sim_reply_message(out, 400, msg, err);
    goto done;
  }
  reg = sim_registrable_domain(host);
  cJSON *rec = reg ? whois_record(cfg, reg, v) : NULL;
  if (rec == NULL) {
    code = tq_err_set(err, TQ_ENOMEM, "whois: no memory for the record of %s", host);
    goto done;
  }
  code = sim_reply_json(out, 200, rec, err);
done:
  free(reg);
  free(host);
  return code;
}

static tq_code whois_std(const sim_config *c, const sim_request *r, sim_reply *o, tq_err *e) {
  return whois_answer(c, r, o, (whois_variant){0, 0}, e);
}
static tq_code whois_full(const sim_config *c, const sim_request *r, sim_reply *o, tq_err *e) {
  return whois_answer(c, r, o, (whois_variant){1, 0}, e);
}
static tq_code whois_raw(const sim_config *c, const sim_request *r, sim_reply *o, tq_err *e) {
  return whois_answer(c, r, o, (whois_variant){0, 1}, e);
}
static tq_code whois_full_raw(const sim_config *c, const sim_request *r, sim_reply *o, tq_err *e) {
  return whois_answer(c, r, o, (whois_variant){1, 1}, e);
}

/* Longest prefixes first: the first route whose prefix matches wins. */
const sim_route sim_routes_whois[] = {
    {"GET", "/v1/whois/full/raw/", SIM_PREFIX, SIM_AUTH_APIKEY, whois_full_raw, "whois.full.raw"},
    {"GET", "/v1/whois/full/", SIM_PREFIX, SIM_AUTH_APIKEY, whois_full, "whois.full"},
    {"GET", "/v1/whois/raw/", SIM_PREFIX, SIM_AUTH_APIKEY, whois_raw, "whois.raw"},
    {"GET", "/v1/whois/", SIM_PREFIX, SIM_AUTH_APIKEY, whois_std, "whois"},
    {0}};
