/* data.c: rstsim's deterministic data model: seeded streams (FNV-1a + splitmix64), IoC
 * typing, pinned hit/miss outcomes, the vocabularies taken from the RST spec and small
 * formatting helpers. Nothing here knows about HTTP. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sim.h"

/* FNV-1a over n bytes, continuing from h (start with the FNV offset basis). */
uint64_t sim_hash(const void *p, size_t n, uint64_t h) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) {
    h ^= c[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* splitmix64's finaliser: FNV alone mixes high bits poorly. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void sim_stream_init(sim_stream *s, uint64_t seed, const char *topic, const char *value) {
  uint64_t h = 0xcbf29ce484222325ULL;
  h = sim_hash(&seed, sizeof seed, h);
  h = sim_hash(topic, strlen(topic) + 1, h); /* the NUL separates topic from value */
  h = sim_hash(value, strlen(value), h);
  s->state = mix64(h);
}

uint64_t sim_next(sim_stream *s) {
  s->state += 0x9e3779b97f4a7c15ULL;
  return mix64(s->state);
}

double sim_unit(sim_stream *s) { return (double)(sim_next(s) >> 11) * 0x1.0p-53; }

long sim_range(sim_stream *s, long lo, long hi) {
  if (hi <= lo)
    return lo;
  uint64_t span = (uint64_t)(hi - lo) + 1;
  return lo + (long)(sim_next(s) % span);
}

static size_t vocab_len(const char *const *vocab) {
  size_t n = 0;
  while (vocab[n])
    n++;
  return n;
}

const char *sim_pick(sim_stream *s, const char *const *vocab) {
  size_t n = vocab_len(vocab);
  return vocab[sim_next(s) % n];
}

static size_t gcd(size_t a, size_t b) {
  while (b) {
    size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

cJSON *sim_pick_array(sim_stream *s, const char *const *vocab, int min, int max) {
  cJSON *arr = cJSON_CreateArray();
  if (arr == NULL)
    return NULL;
  size_t n = vocab_len(vocab);
  long want = sim_range(s, min, max);
  if ((size_t)want > n)
    want = (long)n;
  /* Walk from a random start with a stride coprime to n: the first n steps visit distinct
   * words, so no bookkeeping of what was picked is needed. */
  size_t start = sim_next(s) % n;
  size_t stride = n > 1 ? 1 + sim_next(s) % (n - 1) : 1;
  while (gcd(stride, n) != 1)
    stride++;
  for (long i = 0; i < want; i++) {
    cJSON *str = cJSON_CreateStringReference(vocab[(start + (size_t)i * stride) % n]);
    if (str == NULL || !cJSON_AddItemToArray(arr, str)) {
      cJSON_Delete(str);
      cJSON_Delete(arr);
      return NULL;
    }
  }
  return arr;
}

void sim_hex(sim_stream *s, char *out, size_t n) {
  static const char digits[] = "0123456789abcdef";
  uint64_t word = 0;
  for (size_t i = 0; i < n; i++) {
    if (i % 8 == 0)
      word = sim_next(s);
    unsigned byte = (unsigned)(word & 0xff);
    word >>= 8;
    out[2 * i] = digits[byte >> 4];
    out[2 * i + 1] = digits[byte & 15];
  }
  out[2 * n] = '\0';
}

/* Formats 16 bytes as a UUID with the given version digit and RFC 4122 variant. */
static void uuid_format(uint64_t hi, uint64_t lo, int version, char out[37]) {
  hi = (hi & ~0xf000ULL) | ((uint64_t)version << 12);
  lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48);
  snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
           (unsigned)((hi >> 16) & 0xffff), (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
           (unsigned long long)(lo & 0xffffffffffffULL));
}

void sim_uuid3(uint64_t seed, const char *topic, const char *value, char out[37]) {
  sim_stream s;
  sim_stream_init(&s, seed, topic, value);
  uint64_t hi = sim_next(&s);
  uint64_t lo = sim_next(&s);
  uuid_format(hi, lo, 3, out);
}

void sim_uuid4(sim_stream *s, char out[37]) {
  uint64_t hi = sim_next(s);
  uint64_t lo = sim_next(s);
  uuid_format(hi, lo, 4, out);
}

/* ---- IoC typing ------------------------------------------------------------------------- */
static int all_hex(const char *v) {
  for (; *v; v++)
    if (!isxdigit((unsigned char)*v))
      return 0;
  return 1;
}

/* A host name: labels of [A-Za-z0-9-_] or non-ASCII (IDN) bytes, at least one dot, the last
 * label not all digits. */
static int looks_like_domain(const char *v) {
  size_t n = strlen(v);
  if (n == 0 || n > 253 || v[0] == '.' || v[n - 1] == '.' || strchr(v, '.') == NULL)
    return 0;
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c >= 0x80))
      return 0;
    if (c == '.' && p[1] == '.')
      return 0;
  }
  const char *last = strrchr(v, '.') + 1;
  for (const char *p = last; *p; p++)
    if (!isdigit((unsigned char)*p))
      return 1;
  return 0;
}

static int looks_like_url(const char *v) {
  const char *sep = strstr(v, "://");
  if (sep == NULL || sep == v || sep[3] == '\0')
    return 0;
  for (const char *p = v; p < sep; p++)
    if (!(isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))
      return 0;
  return 1;
}

sim_ioc_type sim_ioc_classify(const char *value) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, value, buf) == 1)
    return SIM_IOC_IPV4;
  if (inet_pton(AF_INET6, value, buf) == 1)
    return SIM_IOC_IPV6;
  size_t n = strlen(value);
  if (all_hex(value) && (n == 32 || n == 40 || n == 64))
    return n == 32 ? SIM_IOC_MD5 : n == 40 ? SIM_IOC_SHA1 : SIM_IOC_SHA256;
  if (looks_like_url(value))
    return SIM_IOC_URL;
  if (looks_like_domain(value))
    return SIM_IOC_DOMAIN;
  return SIM_IOC_UNKNOWN;
}

const char *sim_ioc_type_name(sim_ioc_type t) {
  switch (t) {
  case SIM_IOC_IPV4: return "ipv4";
  case SIM_IOC_IPV6: return "ipv6";
  case SIM_IOC_DOMAIN: return "domain";
  case SIM_IOC_URL: return "url";
  case SIM_IOC_MD5: return "md5";
  case SIM_IOC_SHA1: return "sha1";
  case SIM_IOC_SHA256: return "sha256";
  case SIM_IOC_UNKNOWN: break;
  }
  return "unknown";
}

const char *sim_ioc_family_name(sim_ioc_type t) {
  switch (t) {
  case SIM_IOC_IPV4:
  case SIM_IOC_IPV6: return "ip";
  case SIM_IOC_DOMAIN: return "domain";
  case SIM_IOC_URL: return "url";
  case SIM_IOC_MD5:
  case SIM_IOC_SHA1:
  case SIM_IOC_SHA256: return "hash";
  case SIM_IOC_UNKNOWN: break;
  }
  return "unknown";
}

static int contains_nocase(const char *hay, const char *needle) {
  return strcasestr(hay, needle) != NULL;
}

static int all_same(const char *v, char c) {
  for (; *v; v++)
    if (tolower((unsigned char)*v) != c)
      return 0;
  return 1;
}

/* Pinned outcomes let a test pick a hit or a miss whatever the seed (README "Pinned"):
 * returns 1 hit, 0 miss, -1 not pinned. */
static int pinned_outcome(const char *value, sim_ioc_type t) {
  if (t == SIM_IOC_UNKNOWN || contains_nocase(value, "notfound"))
    return 0;
  if (contains_nocase(value, "malicious"))
    return 1;
  if (t == SIM_IOC_IPV4 && tq_str_startswith(value, "192.0.2."))
    return 0;
  if (t == SIM_IOC_IPV4 && tq_str_startswith(value, "198.51.100."))
    return 1;
  if (t == SIM_IOC_IPV6 && tq_str_startswith(value, "100::"))
    return 0; /* the discard-only prefix */
  if (t == SIM_IOC_IPV6 && tq_str_startswith(value, "2001:db8:"))
    return 1; /* the documentation prefix */
  if (t >= SIM_IOC_MD5 && all_same(value, '0'))
    return 0;
  if (t >= SIM_IOC_MD5 && all_same(value, 'f'))
    return 1;
  return -1;
}

int sim_ioc_is_hit(const sim_config *cfg, const char *value, sim_ioc_type t) {
  int pinned = pinned_outcome(value, t);
  if (pinned >= 0)
    return pinned;
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "hit", value);
  return sim_unit(&s) < cfg->hit_ratio;
}

/* ---- vocabularies (RST spec sections 2.3-2.6 and 4) ------------------------------------- */
const char *const sim_vocab_threats[] = {"emotet",
                                         "cobalt_strike",
                                         "reflectiveloader",
                                         "metasploit_tool",
                                         "njrat_rat",
                                         "quasar_rat",
                                         "cleaver_group",
                                         "educated_manticore_group",
                                         "redline_stealer",
                                         "lokibot_stealer",
                                         "lockbit_ransomware",
                                         "lockbit_raas",
                                         "plugx_backdoor",
                                         "xmrig_miner",
                                         "mirai_botnet",
                                         "lumma_maas",
                                         "ta505_actor",
                                         "apt28_group",
                                         "operation_dream_job_campaign",
                                         "citrix_bleed_vuln",
                                         "fallout_exploit",
                                         "powershell_download_technique",
                                         "sliver_tool",
                                         "qakbot",
                                         "agenttesla",
                                         NULL};

const char *const sim_vocab_ttps[] = {
    "t1059", "t1059.001", "t1566.001", "t1071.001", "t1105",     "t1027", "t1204.002", "t1547.001",
    "t1055", "t1486",     "t1190",     "t1078",     "t1021.001", "t1110", "t1595.002", NULL};

const char *const sim_vocab_cves[] = {"cve-2017-11882", "cve-2021-44228", "cve-2023-4966",
                                      "cve-2023-34362", "cve-2024-3400",  "cve-2022-30190",
                                      "cve-2021-40444", "cve-2019-19781", NULL};

const char *const sim_vocab_industries[] = {"aerospace",
                                            "biotechnology",
                                            "bp_outsourcing",
                                            "chemical",
                                            "critical_infrastructure",
                                            "e-commerce",
                                            "education",
                                            "energy",
                                            "entertainment",
                                            "financial",
                                            "foodtech",
                                            "game_industry",
                                            "government",
                                            "healthcare",
                                            "iot",
                                            "isc",
                                            "logistic",
                                            "maritime",
                                            "media",
                                            "military",
                                            "ngo",
                                            "nuclear_power",
                                            "petroleum",
                                            "religion",
                                            "retail",
                                            "semiconductor_industry",
                                            "software_development",
                                            "telco",
                                            "transport",
                                            NULL};

const char *const sim_vocab_sources[] = {"twitter", "github_repos", "threatreports",
                                         "vmray",   "otx",          NULL};

const char *const sim_vocab_registrars[] = {
    "NameCheap Inc",       "GoDaddy.com, LLC",
    "NameSilo, LLC",       "PDR Ltd. d/b/a PublicDomainRegistry.com",
    "Tucows Domains Inc.", "Hostinger Operations, UAB",
    "REG.RU LLC",          NULL};

const char *const sim_vocab_registrants[] = {"unknown",
                                             "Privacy Protection",
                                             "Anonymize Inc",
                                             "TotalDomain Privacy Ltd",
                                             "Domains By Proxy, LLC",
                                             NULL};

const char *const sim_vocab_words[] = {
    "secure",  "login",  "update", "cloud", "mail",    "portal", "verify", "account", "cdn",
    "service", "office", "pay",    "bank",  "support", "docs",   "files",  "track",   "delivery",
    "auth",    "online", "apps",   "micro", "data",    "sync",   NULL};

const char *const sim_vocab_tlds[] = {"com", "net",    "org",  "info", "xyz", "top",
                                      "ru",  "online", "site", "io",   NULL};

/* ---- formatting ------------------------------------------------------------------------- */
void sim_fmt_time(int64_t t, char out[20]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

void sim_fmt_iso(int64_t t, char out[21]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Keys are always string literals here, so they are added by reference (no copy): the
 * profile of /v1/ioc was dominated by malloc and snprintf. */
static void put_cs(cJSON *o, const char *k, cJSON *item, int *ok) {
  if (item == NULL || o == NULL) {
    cJSON_Delete(item);
    *ok = 0;
    return;
  }
  cJSON_AddItemToObjectCS(o, k, item);
}

void sim_j_str(cJSON *o, const char *k, const char *v, int *ok) {
  put_cs(o, k, cJSON_CreateString(v), ok);
}

void sim_j_int(cJSON *o, const char *k, long long v, int *ok) {
  put_cs(o, k, cJSON_CreateNumber((double)v), ok);
}

/* Writes v in decimal at the end of out (>= 24 bytes) and returns where it starts. */
static char *fmt_ll(long long v, char *out, size_t n) {
  char *p = out + n - 1;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  *p = '\0';
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    *--p = '-';
  return p;
}

void sim_j_int_str(cJSON *o, const char *k, long long v, int *ok) {
  char buf[24];
  sim_j_str(o, k, fmt_ll(v, buf, sizeof buf), ok);
}

void sim_j_cents_str(cJSON *o, const char *k, long long hundredths, int *ok) {
  char buf[32];
  char *p = fmt_ll(hundredths / 100, buf, sizeof buf - 3); /* leaves room for ".ff" */
  size_t len = strlen(p);
  p[len] = '.';
  p[len + 1] = (char)('0' + hundredths % 100 / 10);
  p[len + 2] = (char)('0' + hundredths % 10);
  p[len + 3] = '\0';
  sim_j_str(o, k, p, ok);
}

void sim_j_bool(cJSON *o, const char *k, int v, int *ok) { put_cs(o, k, cJSON_CreateBool(v), ok); }

void sim_j_null(cJSON *o, const char *k, int *ok) { put_cs(o, k, cJSON_CreateNull(), ok); }

cJSON *sim_j_obj(cJSON *o, const char *k, int *ok) {
  cJSON *child = o ? cJSON_CreateObject() : NULL;
  put_cs(o, k, child, ok);
  return *ok ? child : NULL;
}

cJSON *sim_j_arr(cJSON *o, const char *k, int *ok) {
  cJSON *child = o ? cJSON_CreateArray() : NULL;
  put_cs(o, k, child, ok);
  return *ok ? child : NULL;
}

void sim_j_put(cJSON *o, const char *k, cJSON *item, int *ok) { put_cs(o, k, item, ok); }

void sim_j_push_str(cJSON *arr, const char *v, int *ok) {
  cJSON *item = cJSON_CreateString(v);
  if (item == NULL || arr == NULL || !cJSON_AddItemToArray(arr, item)) {
    cJSON_Delete(item);
    *ok = 0;
  }
}

void sim_fake_domain(sim_stream *s, char *out, size_t n) {
  snprintf(out, n, "%s%s%ld.%s", sim_pick(s, sim_vocab_words), sim_pick(s, sim_vocab_words),
           sim_range(s, 1, 99), sim_pick(s, sim_vocab_tlds));
}

uint32_t sim_fake_ipv4(sim_stream *s) {
  for (;;) {
    uint32_t ip = (uint32_t)sim_next(s);
    unsigned a = ip >> 24, b = (ip >> 16) & 0xff;
    int reserved = a == 0 || a == 10 || a == 127 || a >= 224 || (a == 169 && b == 254) ||
                   (a == 172 && b >= 16 && b < 32) || (a == 192 && b == 168) ||
                   (a == 100 && b >= 64 && b < 128);
    if (!reserved)
      return ip;
  }
}

void sim_ipv4_str(uint32_t ip, char out[16]) {
  snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}
