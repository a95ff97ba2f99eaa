/* ioc.c: the RST IoC Lookup family of rstsim (spec section 2): GET /v1/ioc?value= answers a
 * hit with the field set of section 2.3 (string-typed scalars, section 1.3) or a miss with
 * {"ioc_value", "error": "Not Found"}, both 200; POST and PUT /v1/ioc take a submission.
 * Every field is drawn from streams seeded by (seed, topic, value): same input, same body. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DAY 86400

typedef struct tag_def {
  const char *name;
  int code;
} tag_def;

/* Category/code pairs observed in RST data (spec section 2.3 notes), grouped by IoC family. */
static const tag_def tags_ip[] = {{"c2", 8},         {"tor_exit", 9}, {"proxy", 100},
                                  {"shellprobe", 4}, {"malware", 10}, {"backdoor", 18},
                                  {"generic", 0},    {NULL, 0}};
static const tag_def tags_domain[] = {{"phishing", 6}, {"c2", 8},      {"malware", 10},
                                      {"scam", 25},    {"generic", 0}, {NULL, 0}};
static const tag_def tags_url[] = {{"phishing", 6}, {"malware", 10},   {"c2", 8},
                                   {"scam", 25},    {"shellprobe", 4}, {NULL, 0}};
static const tag_def tags_hash[] = {{"malware", 10}, {"backdoor", 18}, {"generic", 0}, {NULL, 0}};

typedef struct asn_def {
  long num;
  const char *org, *isp, *cloud, *country, *city, *region;
} asn_def;

/* The first two come from the spec's samples; the clouds let "Cloud provider IP" be true. */
static const asn_def asns[] = {
    {4685, "Asahi Net", "ASAHINET", "", "Japan", "Shibuya", "Tokyo"},
    {200313, "", "INTERNETIT", "", "British Virgin Islands", "", ""},
    {9009, "M247 Europe SRL", "M247", "", "Romania", "Bucharest", "Bucuresti"},
    {4134, "Chinanet", "CHINANET-BACKBONE", "", "China", "Shanghai", "Shanghai"},
    {49505, "Selectel", "SELECTEL", "", "Russia", "Saint Petersburg", "St.-Petersburg"},
    {14061, "DigitalOcean, LLC", "DIGITALOCEAN-ASN", "digitalocean", "United States",
     "North Bergen", "New Jersey"},
    {45102, "Alibaba (US) Technology Co., Ltd.", "ALIBABA-CN-NET", "alibaba", "Singapore",
     "Singapore", "Singapore"},
    {13335, "Cloudflare, Inc.", "CLOUDFLARENET", "cloudflare", "United States", "San Francisco",
     "California"},
    {16276, "OVH SAS", "OVH", "ovh", "France", "Roubaix", "Hauts-de-France"},
    {24940, "Hetzner Online GmbH", "HETZNER-AS", "hetzner", "Germany", "Falkenstein", "Saxony"},
};
#define N_ASNS (sizeof asns / sizeof asns[0])
#define FIRST_CLOUD_ASN 5

static const char *const ports[] = {"80",   "443",  "8080",  "8443", "22",
                                    "3389", "4444", "50050", NULL};
static const char *const filenames[] = {"invoice.exe",  "setup.msi",   "update.dll",
                                        "document.doc", "payload.ps1", "loader.bin",
                                        "report.xls",   "svchost.exe", NULL};

/* What one hit is made of, drawn before the JSON is built. */
typedef struct ioc_facts {
  const char *value; /* as looked up */
  const char *key;   /* normalised: the seed of every stream */
  sim_ioc_type type;
  const char *alarm; /* "false", "possible", "true" */
  const char *descr;
  int unresolved; /* domain: no A records */
  int cloud;      /* ip: hosted at a cloud provider */
} ioc_facts;

static const tag_def *tags_for(sim_ioc_type t) {
  switch (sim_ioc_family_name(t)[0]) {
  case 'i': return tags_ip;
  case 'd': return tags_domain;
  case 'u': return tags_url;
  default: return tags_hash;
  }
}

/* tags {str, codes} plus the description's "IOC with tags: ..." part, built together. */
static void add_tags(cJSON *o, const sim_config *cfg, const ioc_facts *f, tq_buf *descr, int *ok) {
  const tag_def *defs = tags_for(f->type);
  size_t n = 0;
  while (defs[n].name)
    n++;
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.tags", f->key);
  size_t first = sim_next(&s) % n, count = (size_t)sim_range(&s, 1, 2);
  cJSON *tags = sim_j_obj(o, "tags", ok);
  cJSON *str = sim_j_arr(tags, "str", ok), *codes = sim_j_arr(tags, "codes", ok);
  tq_buf_adds(descr, "IOC with tags: ");
  for (size_t i = 0; i < count; i++) {
    const tag_def *d = &defs[(first + i) % n];
    char code[12];
    snprintf(code, sizeof code, "%d", d->code);
    sim_j_push_str(str, d->name, ok);
    sim_j_push_str(codes, code, ok);
    tq_buf_printf(descr, "%s%s", i ? ", " : "", d->name);
  }
}

static void add_threats(cJSON *o, const sim_config *cfg, const ioc_facts *f, tq_buf *descr,
                        int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.threat", f->key);
  cJSON *arr = sim_pick_array(&s, sim_vocab_threats, 0, 3);
  for (int i = 0; arr && i < cJSON_GetArraySize(arr); i++)
    tq_buf_printf(descr, "%s%s",
                  i ? ", " : ". Related threats: ", cJSON_GetArrayItem(arr, i)->valuestring);
  sim_j_put(o, "threat", arr, ok);
}

/* score: total = floor(src x tags x frequency) from the printed (rounded) sub-scores, unless
 * the false-positive alarm overrides it (spec section 2.4). */
static void add_score(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.score", f->key);
  long long src = sim_range(&s, 3000, 9500); /* hundredths of a percent: 70.71 */
  long long tags = sim_range(&s, 50, 100);   /* hundredths: 0.89 */
  long long freq = sim_range(&s, 20, 100);   /* hundredths: 0.45 */
  long long product = src * tags * freq / 1000000;
  long long last = src * tags / 10000; /* the last-seen day: no decay, frequency 1 */
  long long total = product;
  if (strcmp(f->alarm, "false") != 0) {
    if (f->type == SIM_IOC_URL)
      total = product * 3 / 10;
    else
      total = strcmp(f->alarm, "true") == 0 ? 10 : 20;
    last = total;
  }
  cJSON *score = sim_j_obj(o, "score", ok);
  sim_j_int_str(score, "total", total, ok);
  sim_j_cents_str(score, "src", src, ok);
  sim_j_cents_str(score, "tags", tags, ok);
  sim_j_cents_str(score, "frequency", freq, ok);
  sim_j_int_str(score, "last", last, ok);
}

static void add_sources(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.src", f->key);
  cJSON *src = sim_j_obj(o, "src", ok);
  cJSON *names = sim_pick_array(&s, sim_vocab_sources, 1, 2);
  tq_buf reports;
  tq_buf_init(&reports, 4096);
  for (int i = 0; names && i < cJSON_GetArraySize(names); i++) {
    const char *name = cJSON_GetArrayItem(names, i)->valuestring;
    char hex[33];
    sim_hex(&s, hex, 12);
    if (i)
      tq_buf_addc(&reports, ',');
    if (strcmp(name, "twitter") == 0)
      tq_buf_printf(&reports, "https://twitter.com/malwrhunter/status/%llu",
                    (unsigned long long)(sim_next(&s) >> 4));
    else if (strcmp(name, "github_repos") == 0)
      tq_buf_adds(&reports, "https://github.com/stamparm/maltrail");
    else if (strcmp(name, "vmray") == 0)
      tq_buf_printf(&reports, "https://www.vmray.com/analyses/%s/report/overview.html", hex);
    else if (strcmp(name, "otx") == 0)
      tq_buf_printf(&reports, "https://otx.alienvault.com/pulse/%s", hex);
    else
      tq_buf_printf(&reports, "https://www.malwarebytes.com/blog/threat-intelligence/%s", hex);
  }
  sim_j_put(src, "name", names, ok);
  sim_j_str(src, "report", reports.data ? reports.data : "", ok);
  tq_buf_free(&reports);
}

static void add_ports(cJSON *o, sim_stream *s, int *ok) {
  if (sim_unit(s) < 0.5) {
    cJSON *arr = sim_j_arr(o, "ports", ok);
    sim_j_push_str(arr, "-1", ok);
    return;
  }
  sim_j_put(o, "ports", sim_pick_array(s, ports, 1, 3), ok);
}

static void add_ip_block(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.net", f->key);
  size_t pick = sim_next(&s) % N_ASNS;
  if (f->cloud && pick < FIRST_CLOUD_ASN)
    pick += FIRST_CLOUD_ASN;
  else if (!f->cloud && pick >= FIRST_CLOUD_ASN)
    pick -= FIRST_CLOUD_ASN;
  const asn_def *a = &asns[pick];
  cJSON *asn = sim_j_obj(o, "asn", ok);
  sim_j_int_str(asn, "num", a->num, ok);
  if (f->type == SIM_IOC_IPV4) {
    struct in_addr addr = {0};
    inet_pton(AF_INET, f->value, &addr); /* classified as IPv4 already */
    uint32_t ip = ntohl(addr.s_addr);
    uint32_t lo = ip & 0xffff0000u, hi = ip | 0xffffu;
    char net[16];
    cJSON *first = sim_j_obj(asn, "firstip", ok), *last = sim_j_obj(asn, "lastip", ok);
    sim_ipv4_str(lo, net);
    sim_j_str(first, "netv4", net, ok);
    sim_j_int_str(first, "num", lo, ok);
    sim_ipv4_str(hi, net);
    sim_j_str(last, "netv4", net, ok);
    sim_j_int_str(last, "num", hi, ok);
  }
  sim_j_str(asn, "cloud", a->cloud, ok);
  sim_j_int_str(asn, "domains", sim_range(&s, 0, 50000), ok);
  sim_j_str(asn, "org", a->org, ok);
  sim_j_str(asn, "isp", a->isp, ok);
  cJSON *geo = sim_j_obj(o, "geo", ok);
  sim_j_str(geo, "city", a->city, ok);
  sim_j_str(geo, "country", a->country, ok);
  sim_j_str(geo, "region", a->region, ok);
  cJSON *related = sim_j_obj(o, "related", ok);
  cJSON *domains = sim_j_arr(related, "domains", ok);
  for (long i = sim_range(&s, 0, 2); i > 0; i--) {
    char d[96];
    sim_fake_domain(&s, d, sizeof d);
    sim_j_push_str(domains, d, ok);
  }
  add_ports(o, &s, ok);
}

static void add_whois_block(cJSON *resolved, const sim_config *cfg, const char *host, int *ok) {
  sim_whois_facts w;
  char *reg = sim_registrable_domain(host);
  if (reg == NULL) {
    *ok = 0;
    return;
  }
  sim_whois_facts_get(cfg, reg, &w);
  free(reg);
  char c[20], u[20], e[20];
  sim_fmt_time(w.havedata ? w.created : 0, c);
  sim_fmt_time(w.havedata ? w.updated : 0, u);
  sim_fmt_time(w.havedata ? w.expires : 0, e);
  cJSON *whois = sim_j_obj(resolved, "whois", ok);
  sim_j_str(whois, "created", c, ok);
  sim_j_str(whois, "updated", u, ok);
  sim_j_str(whois, "expires", e, ok);
  sim_j_int_str(whois, "age", w.havedata ? (cfg->now - w.created) / DAY : 0, ok);
  sim_j_str(whois, "registrar", w.registrar, ok);
  sim_j_str(whois, "registrant", w.registrant, ok);
  sim_j_str(whois, "havedata", w.havedata ? "true" : "false", ok);
}

static void add_domain_block(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.net", f->key);
  add_ports(o, &s, ok);
  cJSON *resolved = sim_j_obj(o, "resolved", ok);
  cJSON *ip = sim_j_obj(resolved, "ip", ok);
  cJSON *a = sim_j_arr(ip, "a", ok);
  for (long i = f->unresolved ? 0 : sim_range(&s, 1, 3); i > 0; i--) {
    char addr[16];
    sim_ipv4_str(sim_fake_ipv4(&s), addr);
    sim_j_push_str(a, addr, ok);
  }
  sim_j_arr(ip, "alias", ok);
  cJSON *cname = sim_j_arr(ip, "cname", ok);
  if (!f->unresolved && sim_unit(&s) < 0.2) {
    char d[96];
    sim_fake_domain(&s, d, sizeof d);
    sim_j_push_str(cname, d, ok);
  }
  add_whois_block(resolved, cfg, f->key, ok);
}

/* parsed {schema, domain, port, path, params, anchor} of a URL, plus resolved.status. */
static void add_url_block(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  const char *v = f->value;
  const char *sep = strstr(v, "://");
  const char *host = sep + 3;
  size_t host_len = strcspn(host, ":/?#");
  const char *rest = host + host_len;
  long port = 0;
  if (*rest == ':')
    port = strtol(rest + 1, (char **)&rest, 10);
  char scheme[16];
  snprintf(scheme, sizeof scheme, "%.*s", (int)(sep - v) < 15 ? (int)(sep - v) : 15, v);
  for (char *p = scheme; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (port == 0)
    port = strcmp(scheme, "https") == 0 ? 443 : strcmp(scheme, "ftp") == 0 ? 21 : 80;
  size_t path_len = strcspn(rest, "?#");
  const char *query = rest[path_len] == '?' ? rest + path_len + 1 : NULL;
  const char *anchor = strchr(rest, '#');
  char *hostz = tq_strndup(host, host_len);
  char *path = tq_strndup(rest, path_len);
  char *params = query ? tq_strndup(query, strcspn(query, "#")) : NULL;
  cJSON *parsed = sim_j_obj(o, "parsed", ok);
  sim_j_str(parsed, "schema", scheme, ok);
  sim_j_str(parsed, "domain", hostz ? hostz : "", ok);
  sim_j_int_str(parsed, "port", port, ok);
  sim_j_str(parsed, "path", path && *path ? path : "/", ok);
  if (params)
    sim_j_str(parsed, "params", params, ok);
  else
    sim_j_null(parsed, "params", ok);
  if (anchor)
    sim_j_str(parsed, "anchor", anchor + 1, ok);
  else
    sim_j_null(parsed, "anchor", ok);
  static const char *const codes[] = {"200", "200", "301", "403", "404", "0", NULL};
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.net", f->key);
  cJSON *resolved = sim_j_obj(o, "resolved", ok);
  sim_j_str(resolved, "status", strcmp(f->alarm, "false") ? "0" : sim_pick(&s, codes), ok);
  if (hostz == NULL || path == NULL || (query && params == NULL))
    *ok = 0;
  free(hostz);
  free(path);
  free(params);
}

/* md5/sha1/sha256 of the same file ("" when unknown) and observed file names. */
static void add_hash_block(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  static const struct {
    const char *key;
    sim_ioc_type type;
    size_t bytes;
  } slots[] = {
      {"md5", SIM_IOC_MD5, 16}, {"sha1", SIM_IOC_SHA1, 20}, {"sha256", SIM_IOC_SHA256, 32}};
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.net", f->key);
  for (size_t i = 0; i < 3; i++) {
    char hex[65];
    sim_hex(&s, hex, slots[i].bytes);
    int known = sim_unit(&s) < 0.7;
    sim_j_str(o, slots[i].key, f->type == slots[i].type ? f->key : known ? hex : "", ok);
  }
  sim_j_put(o, "filename", sim_pick_array(&s, filenames, 0, 2), ok);
}

/* cve, industry, ttp: context lists, often empty as in the spec's samples. */
static void add_context(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.ctx", f->key);
  int rich = sim_unit(&s) < 0.4;
  sim_j_put(o, "cve", sim_pick_array(&s, sim_vocab_cves, 0, rich ? 2 : 0), ok);
  sim_j_put(o, "industry", sim_pick_array(&s, sim_vocab_industries, 0, rich ? 2 : 0), ok);
  sim_j_put(o, "ttp", sim_pick_array(&s, sim_vocab_ttps, 0, rich ? 3 : 0), ok);
}

/* The false-positive verdict, which other fields follow (score, A records, cloud ASN). */
static void draw_alarm(const sim_config *cfg, ioc_facts *f) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.fp", f->key);
  double u = sim_unit(&s);
  f->alarm = "false";
  f->descr = "";
  if (f->type == SIM_IOC_IPV4 || f->type == SIM_IOC_IPV6) {
    f->cloud = u >= 0.80;
    if (f->cloud) {
      f->alarm = u < 0.92 ? "possible" : "true";
      f->descr = u < 0.92 ? "May be a Cloud provider IP" : "Cloud provider IP";
    }
  } else if (f->type == SIM_IOC_DOMAIN && u >= 0.85) {
    sim_whois_facts w;
    char *reg = sim_registrable_domain(f->key);
    sim_whois_facts_get(cfg, reg ? reg : f->key, &w);
    free(reg);
    f->unresolved = 1;
    f->alarm = w.havedata ? "possible" : "true";
    f->descr = w.havedata ? "Domain not resolved, but Whois records found"
                          : "Domain not resolved. Whois records not found";
  } else if (f->type == SIM_IOC_URL && u >= 0.85) {
    f->alarm = "true";
    f->descr = "Resource unavailable";
  }
}

static void add_times(cJSON *o, const sim_config *cfg, const ioc_facts *f, int *ok) {
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "ioc.time", f->key);
  int64_t collect = cfg->now;
  int64_t lseen = collect - sim_range(&s, 0, 20) * DAY;
  int64_t fseen = lseen - sim_range(&s, 0, 365) * DAY;
  sim_j_int_str(o, "fseen", fseen, ok);
  sim_j_int_str(o, "lseen", lseen, ok);
  sim_j_int_str(o, "collect", collect, ok);
}

static void add_title(cJSON *o, const ioc_facts *f, int *ok) {
  char title[600];
  if (f->type >= SIM_IOC_MD5)
    snprintf(title, sizeof title, "RST Threat feed. IOC: %s:%.16s...", sim_ioc_type_name(f->type),
             f->key);
  else
    snprintf(title, sizeof title, "RST Threat feed. IOC: %.500s", f->value);
  sim_j_str(o, "title", title, ok);
}

static cJSON *ioc_hit(const sim_config *cfg, ioc_facts *f) {
  int ok = 1;
  char id[37];
  tq_buf descr;
  tq_buf_init(&descr, 4096);
  draw_alarm(cfg, f);
  sim_uuid3(cfg->seed, "ioc.id", f->key, id);
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "id", id, &ok);
  sim_j_str(o, "ioc_value", f->value, &ok);
  sim_j_str(o, "ioc_type", sim_ioc_type_name(f->type), &ok);
  add_times(o, cfg, f, &ok);
  add_tags(o, cfg, f, &descr, &ok);
  add_threats(o, cfg, f, &descr, &ok);
  add_score(o, cfg, f, &ok);
  cJSON *fp = sim_j_obj(o, "fp", &ok);
  sim_j_str(fp, "alarm", f->alarm, &ok);
  sim_j_str(fp, "descr", f->descr, &ok);
  add_sources(o, cfg, f, &ok);
  switch (f->type) {
  case SIM_IOC_IPV4:
  case SIM_IOC_IPV6: add_ip_block(o, cfg, f, &ok); break;
  case SIM_IOC_DOMAIN: add_domain_block(o, cfg, f, &ok); break;
  case SIM_IOC_URL: add_url_block(o, cfg, f, &ok); break;
  default: add_hash_block(o, cfg, f, &ok); break;
  }
  add_context(o, cfg, f, &ok);
  add_title(o, f, &ok);
  sim_j_str(o, "description", descr.data ? descr.data : "", &ok);
  tq_buf_free(&descr);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *ioc_miss(const char *value) {
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "ioc_value", value, &ok);
  sim_j_str(o, "error", "Not Found", &ok);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* Domains and hashes are case-insensitive: their lower-case form seeds the streams. */
static char *normalise(const char *value, sim_ioc_type t) {
  char *key = tq_strdup(value);
  if (key && (t == SIM_IOC_DOMAIN || t >= SIM_IOC_MD5))
    for (char *p = key; *p; p++)
      *p = (char)tolower((unsigned char)*p);
  return key;
}

static tq_code ioc_get(const sim_config *cfg, const sim_request *rq, sim_reply *out, tq_err *err) {
  char *value = sim_query_get(rq->query, "value");
  char *key = NULL;
  tq_code code = TQ_OK;
  if (value == NULL || *value == '\0') {
    code = sim_reply_message(out, 400, "missing query parameter 'value'", err);
    goto done;
  }
  ioc_facts f = {.value = value, .type = sim_ioc_classify(value)};
  key = normalise(value, f.type);
  if (key == NULL) {
    code = tq_err_set(err, TQ_ENOMEM, "ioc: no memory for '%.100s'", value);
    goto done;
  }
  f.key = key;
  cJSON *body = sim_ioc_is_hit(cfg, key, f.type) ? ioc_hit(cfg, &f) : ioc_miss(value);
  if (body == NULL) {
    code = tq_err_set(err, TQ_ENOMEM, "ioc: no memory for the answer of '%.100s'", value);
    goto done;
  }
  code = sim_reply_json(out, 200, body, err);
done:
  free(key);
  free(value);
  return code;
}

/* POST submits a suspicious indicator, PUT reports a false positive: same answer for both. */
static tq_code ioc_submit(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                          tq_err *err) {
  (void)cfg;
  cJSON *in = cJSON_ParseWithLength(rq->body, rq->body_len);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "ioc_value");
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(in, "description");
  tq_code code = TQ_OK;
  if (!cJSON_IsString(v) || *v->valuestring == '\0' || (d && !cJSON_IsString(d))) {
    code = sim_reply_message(out, 400,
                             "body must be a JSON object {\"ioc_value\": string, "
                             "\"description\": string}",
                             err);
    goto done;
  }
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "ioc_value", v->valuestring, &ok);
  sim_j_str(o, "status", "submitted", &ok);
  if (!ok) {
    cJSON_Delete(o);
    o = NULL;
  }
  code = sim_reply_json(out, 200, o, err);
done:
  cJSON_Delete(in);
  return code;
}

const sim_route sim_routes_ioc[] = {
    {"GET", "/v1/ioc", SIM_EXACT, SIM_AUTH_APIKEY, ioc_get, "ioc.get"},
    {"POST", "/v1/ioc", SIM_EXACT, SIM_AUTH_APIKEY, ioc_submit, "ioc.submit"},
    {"PUT", "/v1/ioc", SIM_EXACT, SIM_AUTH_APIKEY, ioc_submit, "ioc.falsepositive"},
    {0}};
