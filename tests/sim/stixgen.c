/* stixgen.c: the generated content of rstsim's TAXII collections (stixgen.h). Entry i of a
 * collection is drawn from (--seed, collection, i): its kind comes from its slot in a
 * repeating cycle (indicators mostly, then malware, attack patterns, intrusion sets, threat
 * actors, vulnerabilities, relationships between objects of the same cycle, notes, an
 * x-rst-sighting-stats custom object, reports in the Report Hub collection and revoked later
 * versions of some Threat Feed indicators). The JSON is written straight into the page buffer:
 * no per-object tree, so a page of 1,000 objects costs one buffer. Nothing here knows HTTP. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stixgen.h"

#define SEC_US 1000000LL
#define DAY_S 86400LL

/* ---- the collections (spec 5.3; the Report Hub id and the aliases are sim choices) ----- */
const sim_coll sim_colls[SIM_N_COLLS] = {
    {"689709ee-8496-4da2-997d-e9face24eee9", "RST Threat Feed: High Risk Indicators",
     "rst-threat-feed-high", "Indicators with a high RST score (45-99)", "taxii.high",
     "taxii.high.id", "taxii.high.created", SIM_FAMILY_FEED, 45, 99},
    {"98ab279c-a6cc-4efc-9442-87bd8a9b4577", "RST Threat Feed: Medium Risk Indicators",
     "rst-threat-feed-medium", "Indicators with a medium RST score (30-44)", "taxii.medium",
     "taxii.medium.id", "taxii.medium.created", SIM_FAMILY_FEED, 30, 44},
    {"b2e8fa09-1389-4fab-be65-ba337b190f92", "RST Threat Feed: Low Risk Indicators",
     "rst-threat-feed-low", "Indicators with a low RST score (15-29)", "taxii.low", "taxii.low.id",
     "taxii.low.created", SIM_FAMILY_FEED, 15, 29},
    {"f3b1c6d2-8a4e-4b7f-9c15-2d6e0a9b7c31", "RST Report Hub", "rst-report-hub",
     "Threat reports with the indicators, malware and techniques they name", "taxii.reports",
     "taxii.reports.id", "taxii.reports.created", SIM_FAMILY_REPORTS, 20, 90},
};

/* ---- entry kinds and the cycle layout ----------------------------------------------------- */
enum kind {
  K_INDICATOR,
  K_MALWARE,
  K_ATTACK_PATTERN,
  K_INTRUSION_SET,
  K_THREAT_ACTOR,
  K_VULNERABILITY,
  K_RELATIONSHIP,
  K_NOTE,
  K_CUSTOM,
  K_REPORT,
  K_IDENTITY,
  K_MARKING_CLEAR, /* TLP 2.0 */
  K_MARKING_WHITE  /* TLP 1.0 */
};

static const char *const kind_types[] = {"indicator",
                                         "malware",
                                         "attack-pattern",
                                         "intrusion-set",
                                         "threat-actor",
                                         "vulnerability",
                                         "relationship",
                                         "note",
                                         "x-rst-sighting-stats",
                                         "report",
                                         "identity",
                                         "marking-definition",
                                         "marking-definition"};

/* A slot of a cycle: its kind and, for kinds that point at others, the slots they point at
 * (always earlier slots of the same cycle, so a reference never leaves the collection). */
typedef struct slot {
  int kind;
  int src, dst;         /* relationship source/target; note/custom: dst; report: src..dst */
  const char *rel_type; /* relationship_type */
} slot;

#define FEED_CYCLE 50
#define REPORTS_CYCLE 16
/* Threat Feed: slot 49 revokes the indicator of slot 36 REVOKE_LAG entries earlier, which is
 * always in an older tie group (REVOKE_LAG > the largest group), so the revoked version comes
 * strictly later by date_added. */
#define REVOKE_SLOT 49
#define REVOKE_BASE_SLOT 36
#define REVOKE_LAG (FEED_CYCLE * 20 + (REVOKE_SLOT - REVOKE_BASE_SLOT))

static slot feed_slot(int c) {
  switch (c) {
  case 37: return (slot){K_CUSTOM, 0, 9, NULL};
  case 39: return (slot){K_THREAT_ACTOR, 0, 0, NULL};
  case 40: return (slot){K_MALWARE, 0, 0, NULL};
  case 41: return (slot){K_RELATIONSHIP, 5, 40, "indicates"};
  case 42: return (slot){K_ATTACK_PATTERN, 0, 0, NULL};
  case 43: return (slot){K_RELATIONSHIP, 40, 42, "uses"};
  case 44: return (slot){K_INTRUSION_SET, 0, 0, NULL};
  case 45: return (slot){K_RELATIONSHIP, 44, 39, "attributed-to"};
  case 46: return (slot){K_RELATIONSHIP, 7, 44, "indicates"};
  case 47: return (slot){K_VULNERABILITY, 0, 0, NULL};
  case 48: return (slot){K_NOTE, 0, 8, NULL};
  default: return (slot){K_INDICATOR, 0, 0, NULL};
  }
}

static slot reports_slot(int c) {
  switch (c) {
  case 6: return (slot){K_MALWARE, 0, 0, NULL};
  case 7: return (slot){K_ATTACK_PATTERN, 0, 0, NULL};
  case 8: return (slot){K_INTRUSION_SET, 0, 0, NULL};
  case 9: return (slot){K_THREAT_ACTOR, 0, 0, NULL};
  case 10: return (slot){K_VULNERABILITY, 0, 0, NULL};
  case 11: return (slot){K_RELATIONSHIP, 3, 6, "indicates"};
  case 12: return (slot){K_RELATIONSHIP, 6, 7, "uses"};
  case 13: return (slot){K_CUSTOM, 0, 4, NULL};
  case 14: return (slot){K_REPORT, 3, 13, NULL};
  case 15: return (slot){K_NOTE, 0, 14, NULL};
  default: return (slot){K_INDICATOR, 0, 0, NULL};
  }
}

/* The slot of entry i; the first three entries of every collection are the RST identity
 * and two TLP markings (no slot refers below 3). */
static slot slot_of(const sim_coll *coll, uint32_t i, uint32_t *cycle_base) {
  uint32_t cycle = coll->family == SIM_FAMILY_FEED ? FEED_CYCLE : REPORTS_CYCLE;
  *cycle_base = i - i % cycle;
  if (i < 3)
    return (slot){i == 0 ? K_IDENTITY : i == 1 ? K_MARKING_CLEAR : K_MARKING_WHITE, 0, 0, NULL};
  return coll->family == SIM_FAMILY_FEED ? feed_slot((int)(i % cycle))
                                         : reports_slot((int)(i % cycle));
}

int sim_stix_is_revocation(const sim_coll *coll, uint32_t i) {
  return coll->family == SIM_FAMILY_FEED && i % FEED_CYCLE == REVOKE_SLOT && i >= REVOKE_LAG;
}

const char *sim_stix_type(const sim_coll *coll, uint32_t i) {
  uint32_t base;
  return kind_types[slot_of(coll, i, &base).kind];
}

int sim_stix_superseded(const sim_coll *coll, uint32_t i, uint32_t n) {
  return coll->family == SIM_FAMILY_FEED && i % FEED_CYCLE == REVOKE_BASE_SLOT &&
         (uint64_t)i + REVOKE_LAG < n;
}

/* ---- date_added: ties ----------------------------------------------------------------------
 * Entries tick one second apart (plus a drifting microsecond part, so that clients must keep
 * microseconds), except that in every block of TIE_BLOCK entries the TIE_LEN entries from
 * TIE_START share one date_added, like objects written in one transaction. */
#define TIE_BLOCK 1000u
#define TIE_START 100u
#define TIE_LEN 250u

static uint64_t tick_of(uint32_t i) {
  uint32_t off = i % TIE_BLOCK;
  if (off > TIE_START && off < TIE_START + TIE_LEN)
    return i - (off - TIE_START);
  return i;
}

void sim_stix_tie_group(uint32_t i, uint32_t n, uint32_t *lo, uint32_t *hi) {
  uint32_t off = i % TIE_BLOCK;
  if (off >= TIE_START && off < TIE_START + TIE_LEN) {
    *lo = i - (off - TIE_START);
    *hi = *lo + TIE_LEN < n ? *lo + TIE_LEN : n;
  } else {
    *lo = i;
    *hi = i + 1;
  }
}

/* The collections start 90 days before --now. */
static int64_t epoch_us(const sim_config *cfg) { return (cfg->now - 90 * DAY_S) * SEC_US; }

int64_t sim_stix_added_us(const sim_config *cfg, uint32_t i) {
  uint64_t t = tick_of(i);
  return epoch_us(cfg) + (int64_t)t * SEC_US + (int64_t)((t * 7919u) % SEC_US);
}

/* ---- time text ------------------------------------------------------------------------------
 * Written by hand: strftime and printf were most of the cost of a page (callgrind). */
static char *put_digits(char *p, uint64_t v, int width) {
  for (int i = width - 1; i >= 0; i--, v /= 10)
    p[i] = (char)('0' + v % 10);
  return p + width;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0); }

/* "YYYY-MM-DDTHH:MM:SS" (19 chars, no NUL) for Unix seconds; days to civil date after
 * H. Hinnant's algorithm (proleptic Gregorian, valid for any int64 day). */
static char *put_civil(char *p, int64_t secs) {
  int64_t days = floor_div(secs, DAY_S), sod = secs - days * DAY_S;
  int64_t z = days + 719468, era = floor_div(z, 146097);
  uint64_t doe = (uint64_t)(z - era * 146097);
  uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  uint64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
  p = put_digits(p, (uint64_t)(y < 0 ? 0 : y), 4);
  *p++ = '-';
  p = put_digits(p, m, 2);
  *p++ = '-';
  p = put_digits(p, d, 2);
  *p++ = 'T';
  p = put_digits(p, (uint64_t)sod / 3600, 2);
  *p++ = ':';
  p = put_digits(p, (uint64_t)sod / 60 % 60, 2);
  *p++ = ':';
  return put_digits(p, (uint64_t)sod % 60, 2);
}

/* secs plus a fraction of frac_digits digits (0: none), then Z. */
static void put_time(int64_t us, int frac_digits, char out[32]) {
  int64_t secs = floor_div(us, SEC_US);
  uint64_t frac = (uint64_t)(us - secs * SEC_US);
  char *p = put_civil(out, secs);
  if (frac_digits > 0) {
    *p++ = '.';
    p = put_digits(p, frac_digits == 3 ? frac / 1000 : frac, frac_digits);
  }
  *p++ = 'Z';
  *p = '\0';
}

void sim_taxii_time(int64_t us, char out[32]) { put_time(us, 6, out); }

/* STIX created/modified: milliseconds, as most producers write them. */
static void stix_time(int64_t us, char out[32]) { put_time(us, 3, out); }

static void stix_time_s(int64_t secs, char out[32]) { put_time(secs * SEC_US, 0, out); }

/* Decimal text of v into out (NUL-terminated); returns the length. */
static size_t put_uint(uint64_t v, char out[24]) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  out[n] = '\0';
  return n;
}

/* A version-4 UUID from the stream (as sim_uuid4, without printf). */
static void uuid4(sim_stream *s, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  uint64_t hi = sim_next(s), lo = sim_next(s);
  hi = (hi & ~0xf000ULL) | 0x4000ULL;
  lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48);
  char *p = out;
  for (int i = 0; i < 32; i++) {
    uint64_t word = i < 16 ? hi : lo;
    int shift = 60 - 4 * (i % 16);
    if (i == 8 || i == 12 || i == 16 || i == 20)
      *p++ = '-';
    *p++ = hex[(word >> shift) & 15];
  }
  *p = '\0';
}

/* ---- entries ---------------------------------------------------------------------------- */
#define TLP2_EXT "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
#define TLP2_CLEAR "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
#define TLP1_WHITE "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
#define TLP2_CLEAR_CREATED_US (1664582400LL * SEC_US) /* 2022-10-01 */
#define TLP1_CREATED_US (1484870400LL * SEC_US)       /* 2017-01-20 */

static void index_key(uint32_t i, char out[24]) { put_uint(i, out); }

/* The RST Cloud identity, the same in every collection; cached per thread (one seed per
 * process, so the cache never goes stale). */
static void identity_id(const sim_config *cfg, char out[96]) {
  static _Thread_local char cached[96];
  if (cached[0] == '\0') {
    sim_stream s;
    sim_stream_init(&s, cfg->seed, "taxii.identity", "RST Cloud");
    memcpy(cached, "identity--", 10);
    uuid4(&s, cached + 10);
  }
  memcpy(out, cached, 96);
}

/* The id of the (first version of the) object at index i. */
static void object_id(const sim_config *cfg, const sim_coll *coll, uint32_t i, char out[96]) {
  uint32_t cycle_base;
  int kind = slot_of(coll, i, &cycle_base).kind;
  if (kind == K_IDENTITY) {
    identity_id(cfg, out);
    return;
  }
  if (kind == K_MARKING_CLEAR || kind == K_MARKING_WHITE) {
    tq_strlcpy(out, kind == K_MARKING_CLEAR ? TLP2_CLEAR : TLP1_WHITE, 96);
    return;
  }
  char key[24];
  index_key(i, key);
  sim_stream s;
  sim_stream_init(&s, cfg->seed, coll->topic_id, key);
  size_t n = strlen(kind_types[kind]);
  memcpy(out, kind_types[kind], n);
  memcpy(out + n, "--", 2);
  uuid4(&s, out + n + 2);
}

/* created of the object first added at index base: 1 s to 1 h before its date_added. */
static int64_t created_us(const sim_config *cfg, const sim_coll *coll, uint32_t base) {
  char key[24];
  index_key(base, key);
  sim_stream s;
  sim_stream_init(&s, cfg->seed, coll->topic_created, key);
  int64_t ms = sim_stix_added_us(cfg, base) / 1000 - sim_range(&s, 1000, 3600000);
  return ms * 1000;
}

void sim_stix_entry(const sim_config *cfg, const sim_coll *coll, uint32_t i, sim_entry *e) {
  uint32_t cycle_base;
  slot sl = slot_of(coll, i, &cycle_base);
  memset(e, 0, sizeof *e);
  e->index = i;
  e->revocation = sim_stix_is_revocation(coll, i);
  e->base = e->revocation ? i - REVOKE_LAG : i;
  e->kind = sl.kind;
  e->type = kind_types[sl.kind];
  e->added_us = sim_stix_added_us(cfg, i);
  object_id(cfg, coll, e->base, e->id);
  if (sl.kind == K_MARKING_CLEAR || sl.kind == K_MARKING_WHITE)
    e->version_us = sl.kind == K_MARKING_CLEAR ? TLP2_CLEAR_CREATED_US : TLP1_CREATED_US;
  else if (sl.kind == K_IDENTITY)
    e->version_us = epoch_us(cfg) - 365 * DAY_S * SEC_US;
  else if (e->revocation) /* revoked a few seconds before it was published */
    e->version_us = (e->added_us / 1000 - 1000 * (int64_t)(1 + i % 60)) * 1000;
  else
    e->version_us = created_us(cfg, coll, i);
  /* A first version has created == modified; a revocation keeps its first version's. */
  e->created_us = e->revocation ? created_us(cfg, coll, e->base) : e->version_us;
}

/* ---- a small JSON writer over tq_buf with one sticky failure flag ------------------------ */
typedef struct jw {
  tq_buf *b;
  int ok;
  int depth;
  unsigned char first[16];
} jw;

/* Copies straight into the buffer's spare room when it fits (the NUL that tq_buf keeps is
 * written back by sim_stix_write at the end); grows it through tq_buf_add otherwise. */
static void jw_add(jw *w, const char *p, size_t n) {
  tq_buf *b = w->b;
  if (b->data && b->len + n < b->cap) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
  } else if (w->ok && tq_buf_add(b, p, n) != TQ_OK) {
    w->ok = 0;
  }
}
static void jw_adds(jw *w, const char *s) { jw_add(w, s, strlen(s)); }

static void jw_sep(jw *w) {
  if (!w->first[w->depth])
    jw_add(w, ",", 1);
  w->first[w->depth] = 0;
}

static void jw_quoted(jw *w, const char *v) {
  const char *q = v + strcspn(v, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"
                                 "\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
                                 "\x1a\x1b\x1c\x1d\x1e\x1f");
  if (*q == '\0') { /* the usual case: nothing to escape, one copy */
    size_t n = (size_t)(q - v);
    char quote = '"';
    jw_add(w, &quote, 1);
    jw_add(w, v, n);
    jw_add(w, &quote, 1);
    return;
  }
  jw_add(w, "\"", 1);
  const char *run = v;
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c != '"' && c != '\\' && c >= 0x20)
      continue;
    jw_add(w, run, (size_t)(p - run));
    char esc[8];
    snprintf(esc, sizeof esc, c == '"' ? "\\\"" : c == '\\' ? "\\\\" : "\\u%04x", c);
    jw_adds(w, esc);
    run = p + 1;
  }
  jw_adds(w, run);
  jw_add(w, "\"", 1);
}

/* Starts a member "k": (or an array element when k is NULL). */
static void jw_key(jw *w, const char *k) {
  jw_sep(w);
  if (k) {
    jw_quoted(w, k);
    jw_add(w, ":", 1);
  }
}

static void jw_open(jw *w, const char *k, char bracket) {
  jw_key(w, k);
  jw_add(w, &bracket, 1);
  if (w->depth + 1 < (int)sizeof w->first)
    w->first[++w->depth] = 1;
  else
    w->ok = 0;
}

static void jw_close(jw *w, char bracket) {
  jw_add(w, &bracket, 1);
  w->depth--;
}

static void jw_str(jw *w, const char *k, const char *v) {
  jw_key(w, k);
  jw_quoted(w, v);
}

static void jw_int(jw *w, const char *k, long long v) {
  char num[24];
  jw_key(w, k);
  if (v < 0)
    jw_add(w, "-", 1);
  jw_add(w, num, put_uint(v < 0 ? (uint64_t)-v : (uint64_t)v, num));
}

static void jw_bool(jw *w, const char *k, int v) {
  jw_key(w, k);
  jw_adds(w, v ? "true" : "false");
}

static void jw_time(jw *w, const char *k, int64_t us) {
  char t[32];
  stix_time(us, t);
  jw_str(w, k, t);
}

/* STIX lists must not be empty: an empty one is left out. */
static void jw_str_list(jw *w, const char *k, const char *const *v, int n) {
  if (n == 0)
    return;
  jw_open(w, k, '[');
  for (int i = 0; i < n; i++)
    jw_str(w, NULL, v[i]);
  jw_close(w, ']');
}

/* ---- draws -------------------------------------------------------------------------------- */
static const char *const tag_vocab[] = {"generic", "shellprobe", "phishing", "c2",    "tor_exit",
                                        "malware", "backdoor",   "scam",     "proxy", NULL};

static const char *const actor_names[] = {"APT28",    "Lazarus Group",    "FIN7",
                                          "Sandworm", "Kimsuky",          "TA505",
                                          "Turla",    "Scattered Spider", NULL};

static const struct technique {
  const char *id, *name, *tactic;
} techniques[] = {{"T1566.001", "Spearphishing Attachment", "initial-access"},
                  {"T1059.001", "PowerShell", "execution"},
                  {"T1071.001", "Web Protocols", "command-and-control"},
                  {"T1105", "Ingress Tool Transfer", "command-and-control"},
                  {"T1027", "Obfuscated Files or Information", "defense-evasion"},
                  {"T1486", "Data Encrypted for Impact", "impact"},
                  {"T1190", "Exploit Public-Facing Application", "initial-access"},
                  {"T1547.001", "Registry Run Keys / Startup Folder", "persistence"}};
#define N_TECHNIQUES (sizeof techniques / sizeof techniques[0])

static size_t vocab_count(const char *const *v) {
  size_t n = 0;
  while (v[n])
    n++;
  return n;
}

static size_t gcd(size_t a, size_t b) {
  while (b) {
    size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* min..max distinct words of vocab into out: a random start and a stride coprime to the
 * vocabulary's size visit distinct words without bookkeeping. */
static int pick_list(sim_stream *s, const char *const *vocab, int min, int max, const char **out) {
  size_t n = vocab_count(vocab);
  int want = (int)sim_range(s, min, max);
  if ((size_t)want > n)
    want = (int)n;
  size_t start = sim_next(s) % n;
  size_t stride = n > 1 ? 1 + sim_next(s) % (n - 1) : 1;
  while (gcd(stride, n) != 1)
    stride++;
  for (int i = 0; i < want; i++)
    out[i] = vocab[(start + (size_t)i * stride) % n];
  return want;
}

/* A TLP marking: mostly TLP 2.0 ids, sometimes the TLP 1.0 WHITE one. */
static const char *pick_tlp(sim_stream *s) {
  long r = sim_range(s, 0, 99);
  if (r < 50)
    return TLP2_CLEAR;
  if (r < 70)
    return "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"; /* TLP:GREEN 2.0 */
  if (r < 85)
    return "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"; /* TLP:AMBER 2.0 */
  if (r < 90)
    return "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"; /* AMBER+STRICT */
  return TLP1_WHITE;
}

/* A codename as a display name: words capitalised, '_' as space ("njrat_rat" "Njrat Rat"). */
static void display_name(const char *code, char *out, size_t n) {
  size_t o = 0;
  for (size_t i = 0; code[i] && o + 1 < n; i++) {
    char c = code[i] == '_' ? ' ' : code[i];
    out[o++] = (i == 0 || code[i - 1] == '_') && c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
  }
  out[o] = '\0';
}

static void upper(const char *in, char *out, size_t n) {
  size_t o = 0;
  for (; in[o] && o + 1 < n; o++)
    out[o] = in[o] >= 'a' && in[o] <= 'z' ? (char)(in[o] - 32) : in[o];
  out[o] = '\0';
}

/* ---- object writers ----------------------------------------------------------------------- */
typedef struct gen {
  const sim_config *cfg;
  const sim_coll *coll;
  const sim_entry *e;
  uint32_t cycle_base;
  slot sl;
  sim_stream s; /* the object's draws: from (seed, collection, first-version index) */
  jw w;
} gen;

/* The properties every SDO/SRO here carries, in STIX order. */
static void write_common(gen *g) {
  char identity[96];
  int64_t created = g->e->created_us;
  jw_str(&g->w, "type", g->e->type);
  jw_str(&g->w, "spec_version", "2.1");
  jw_str(&g->w, "id", g->e->id);
  jw_time(&g->w, "created", created);
  jw_time(&g->w, "modified", g->e->version_us);
  identity_id(g->cfg, identity);
  jw_str(&g->w, "created_by_ref", identity);
  if (g->e->revocation)
    jw_bool(&g->w, "revoked", 1);
  const char *tlp = pick_tlp(&g->s);
  jw_str_list(&g->w, "object_marking_refs", &tlp, 1);
}

/* The IoC of an indicator: its pattern, display name and observable type. */
typedef struct ioc {
  char pattern[512];
  char name[256];
  const char *observable; /* x_opencti_main_observable_type */
  int expire_days;
} ioc;

static void draw_ipv6(sim_stream *s, char *out, size_t n) {
  snprintf(out, n, "2a%02x:%x:%x:%x::%x", (unsigned)sim_range(s, 0, 15),
           (unsigned)sim_range(s, 0x100, 0xffff), (unsigned)sim_range(s, 0, 0xffff),
           (unsigned)sim_range(s, 0, 0xffff), (unsigned)sim_range(s, 1, 0xffff));
}

static void draw_url(sim_stream *s, char *out, size_t n) {
  char dom[128], hex[9];
  sim_fake_domain(s, dom, sizeof dom);
  sim_hex(s, hex, 4);
  snprintf(out, n, "%s://%s/%s/%s.php?id=%ld", sim_range(s, 0, 1) ? "https" : "http", dom,
           sim_pick(s, sim_vocab_words), hex, sim_range(s, 1, 9999));
}

static void draw_hash_ioc(sim_stream *s, long r, ioc *x) {
  char md5[33], sha1[41], sha256[65];
  sim_hex(s, md5, 16);
  sim_hex(s, sha1, 20);
  sim_hex(s, sha256, 32);
  x->observable = "StixFile";
  x->expire_days = 365;
  if (r < 73) {
    snprintf(x->pattern, sizeof x->pattern, "[file:hashes.MD5 = '%s']", md5);
    tq_strlcpy(x->name, md5, sizeof x->name);
  } else if (r < 78) {
    snprintf(x->pattern, sizeof x->pattern, "[file:hashes.'SHA-1' = '%s']", sha1);
    tq_strlcpy(x->name, sha1, sizeof x->name);
  } else if (r < 88) {
    snprintf(x->pattern, sizeof x->pattern, "[file:hashes.'SHA-256' = '%s']", sha256);
    tq_strlcpy(x->name, sha256, sizeof x->name);
  } else { /* RST's OR of every known hash of one file (spec 8.4) */
    snprintf(x->pattern, sizeof x->pattern,
             "[file:hashes.MD5 = '%s' OR file:hashes.'SHA-1' = '%s' OR file:hashes.'SHA-256' = "
             "'%s']",
             md5, sha1, sha256);
    tq_strlcpy(x->name, sha256, sizeof x->name);
  }
}

/* Complex patterns: an AND inside one observation, or two observations ANDed. */
static void draw_complex_ioc(sim_stream *s, ioc *x) {
  char ip[16], url[256], dom[128];
  sim_ipv4_str(sim_fake_ipv4(s), ip);
  if (sim_range(s, 0, 1)) {
    int port = (int)sim_range(s, 1024, 65535);
    snprintf(x->pattern, sizeof x->pattern,
             "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = "
             "'%s' AND network-traffic:dst_port = %d]",
             ip, port);
    snprintf(x->name, sizeof x->name, "%s:%d", ip, port);
    x->observable = "Network-Traffic";
    x->expire_days = 7;
    return;
  }
  draw_url(s, url, sizeof url);
  sim_fake_domain(s, dom, sizeof dom);
  snprintf(x->pattern, sizeof x->pattern, "[url:value = '%s'] AND [domain-name:value = '%s']", url,
           dom);
  tq_strlcpy(x->name, url, sizeof x->name);
  x->observable = "Url";
  x->expire_days = 30;
}

/* IoC types by share: ipv4 25%, ipv6 5%, domain 20%, url 18%, md5 5%, sha1 5%, sha256 10%,
 * ORed hashes 6%, complex ANDs 6%. */
static void draw_ioc(sim_stream *s, ioc *x) {
  char v[256];
  long r = sim_range(s, 0, 99);
  if (r >= 68 && r < 94) {
    draw_hash_ioc(s, r, x);
    return;
  }
  if (r >= 94) {
    draw_complex_ioc(s, x);
    return;
  }
  static const char *const fmt[] = {"[ipv4-addr:value = '%s']", "[ipv6-addr:value = '%s']",
                                    "[domain-name:value = '%s']", "[url:value = '%s']"};
  static const char *const obs[] = {"IPv4-Addr", "IPv6-Addr", "Domain-Name", "Url"};
  static const int days[] = {7, 7, 14, 30};
  int t = r < 25 ? 0 : r < 30 ? 1 : r < 50 ? 2 : 3;
  if (t == 0)
    sim_ipv4_str(sim_fake_ipv4(s), v);
  else if (t == 1)
    draw_ipv6(s, v, sizeof v);
  else if (t == 2)
    sim_fake_domain(s, v, sizeof v);
  else
    draw_url(s, v, sizeof v);
  snprintf(x->pattern, sizeof x->pattern, fmt[t], v);
  tq_strlcpy(x->name, v, sizeof x->name);
  x->observable = obs[t];
  x->expire_days = days[t];
}

static void join(const char *const *v, int n, char *out, size_t cap) {
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", i ? ", " : "", v[i]);
}

/* RST's facts of an indicator as x_rst_* properties (spec 5.2, 8.4), and the OpenCTI ones. */
static void write_rst_props(gen *g, int score, const char *const *tags, int n_tags,
                            const char *const *threats, int n_threats, int64_t fseen, int64_t lseen,
                            const char *observable) {
  const char *srcs[3], *ttps[3], *cves[2], *inds[3];
  char ttp_up[3][16], cve_up[2][24];
  int n_src = pick_list(&g->s, sim_vocab_sources, 1, 2, srcs);
  int n_ttp = pick_list(&g->s, sim_vocab_ttps, 0, 2, ttps);
  int n_cve = pick_list(&g->s, sim_vocab_cves, 0, 1, cves);
  int n_ind = pick_list(&g->s, sim_vocab_industries, 0, 2, inds);
  for (int i = 0; i < n_ttp; i++) {
    upper(ttps[i], ttp_up[i], sizeof ttp_up[i]);
    ttps[i] = ttp_up[i];
  }
  for (int i = 0; i < n_cve; i++) {
    upper(cves[i], cve_up[i], sizeof cve_up[i]);
    cves[i] = cve_up[i];
  }
  char t[32];
  jw_int(&g->w, "x_rst_score", score);
  stix_time_s(fseen, t);
  jw_str(&g->w, "x_rst_first_seen", t);
  stix_time_s(lseen, t);
  jw_str(&g->w, "x_rst_last_seen", t);
  jw_str_list(&g->w, "x_rst_tags", tags, n_tags);
  jw_str_list(&g->w, "x_rst_threats", threats, n_threats);
  jw_str_list(&g->w, "x_rst_sources", srcs, n_src);
  jw_str_list(&g->w, "x_rst_ttps", ttps, n_ttp);
  jw_str_list(&g->w, "x_rst_cves", cves, n_cve);
  jw_str_list(&g->w, "x_rst_industries", inds, n_ind);
  jw_str(&g->w, "x_rst_fp_alarm", sim_range(&g->s, 0, 9) == 0 ? "possible" : "false");
  jw_int(&g->w, "x_opencti_score", score);
  jw_str(&g->w, "x_opencti_main_observable_type", observable);
}

static void write_indicator(gen *g) {
  ioc x;
  const char *tags[2], *threats[3], *labels[5];
  char desc[512], tag_text[128], threat_text[256], t[32], uuid3[37], url[128];
  draw_ioc(&g->s, &x);
  int n_tags = pick_list(&g->s, tag_vocab, 1, 2, tags);
  int n_threats = pick_list(&g->s, sim_vocab_threats, 0, 3, threats);
  int score = (int)sim_range(&g->s, g->coll->score_lo, g->coll->score_hi);
  int confidence = (int)sim_range(&g->s, 30, 95);
  int64_t added_s = sim_stix_added_us(g->cfg, g->e->base) / SEC_US;
  int64_t lseen = (added_s - sim_range(&g->s, 0, 3 * DAY_S)) / DAY_S * DAY_S;
  int64_t fseen = lseen - sim_range(&g->s, 0, 365) * DAY_S;
  join(tags, n_tags, tag_text, sizeof tag_text);
  join(threats, n_threats, threat_text, sizeof threat_text);
  snprintf(desc, sizeof desc, "IOC with tags: %s.%s%s", tag_text,
           n_threats ? " Related threats: " : "", threat_text);
  write_common(g);
  jw_str(&g->w, "name", x.name);
  jw_str(&g->w, "description", desc);
  const char *itype = strcmp(tags[0], "tor_exit") == 0 || strcmp(tags[0], "proxy") == 0
                          ? "anonymization"
                          : "malicious-activity";
  jw_str_list(&g->w, "indicator_types", &itype, 1);
  jw_str(&g->w, "pattern", x.pattern);
  jw_str(&g->w, "pattern_type", "stix");
  jw_str(&g->w, "pattern_version", "2.1");
  stix_time_s(lseen, t);
  jw_str(&g->w, "valid_from", t);
  stix_time_s(lseen + x.expire_days * DAY_S, t);
  jw_str(&g->w, "valid_until", t);
  for (int i = 0; i < n_tags; i++)
    labels[i] = tags[i];
  for (int i = 0; i < n_threats; i++)
    labels[n_tags + i] = threats[i];
  jw_str_list(&g->w, "labels", labels, n_tags + n_threats);
  jw_int(&g->w, "confidence", confidence);
  sim_uuid3(g->cfg->seed, "taxii.rstid", g->e->id, uuid3);
  snprintf(url, sizeof url, "https://rstcloud.net/uuid?id=%s", uuid3);
  jw_open(&g->w, "external_references", '[');
  jw_open(&g->w, NULL, '{');
  jw_str(&g->w, "source_name", "RST Cloud");
  jw_str(&g->w, "url", url);
  jw_str(&g->w, "external_id", uuid3);
  jw_close(&g->w, '}');
  jw_close(&g->w, ']');
  write_rst_props(g, score, tags, n_tags, threats, n_threats, fseen, lseen, x.observable);
}

static void write_malware(gen *g) {
  const char *code = sim_pick(&g->s, sim_vocab_threats);
  char name[96];
  display_name(code, name, sizeof name);
  const char *mtype = strstr(code, "ransom")  ? "ransomware"
                      : strstr(code, "_rat")  ? "remote-access-trojan"
                      : strstr(code, "_tool") ? "dropper"
                                              : "trojan";
  write_common(g);
  jw_str(&g->w, "name", name);
  jw_bool(&g->w, "is_family", 1);
  jw_str_list(&g->w, "malware_types", &mtype, 1);
  jw_str_list(&g->w, "aliases", &code, 1);
  jw_str(&g->w, "description", "Malware family tracked by RST Cloud");
}

static void write_attack_pattern(gen *g) {
  const struct technique *t = &techniques[sim_range(&g->s, 0, N_TECHNIQUES - 1)];
  char url[96], path[16];
  tq_strlcpy(path, t->id, sizeof path);
  char *dot = strchr(path, '.');
  if (dot)
    *dot = '/';
  snprintf(url, sizeof url, "https://attack.mitre.org/techniques/%s/", path);
  write_common(g);
  jw_str(&g->w, "name", t->name);
  jw_open(&g->w, "kill_chain_phases", '[');
  jw_open(&g->w, NULL, '{');
  jw_str(&g->w, "kill_chain_name", "mitre-attack");
  jw_str(&g->w, "phase_name", t->tactic);
  jw_close(&g->w, '}');
  jw_close(&g->w, ']');
  jw_open(&g->w, "external_references", '[');
  jw_open(&g->w, NULL, '{');
  jw_str(&g->w, "source_name", "mitre-attack");
  jw_str(&g->w, "url", url);
  jw_str(&g->w, "external_id", t->id);
  jw_close(&g->w, '}');
  jw_close(&g->w, ']');
  jw_str(&g->w, "x_mitre_id", t->id);
}

static void write_actor(gen *g, int threat_actor) {
  const char *name = sim_pick(&g->s, actor_names);
  char alias[64];
  size_t o = 0;
  for (const char *p = name; *p && o + 8 < sizeof alias; p++)
    alias[o++] = *p == ' ' ? '_' : (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
  snprintf(alias + o, sizeof alias - o, "_group");
  const char *aliases[1] = {alias};
  write_common(g);
  jw_str(&g->w, "name", name);
  jw_str_list(&g->w, "aliases", aliases, 1);
  if (threat_actor) {
    const char *ta_type = sim_range(&g->s, 0, 1) ? "nation-state" : "crime-syndicate";
    jw_str_list(&g->w, "threat_actor_types", &ta_type, 1);
  } else {
    jw_str(&g->w, "primary_motivation", sim_range(&g->s, 0, 1) ? "espionage" : "personal-gain");
  }
}

static void write_vulnerability(gen *g) {
  char cve[32], url[96];
  upper(sim_pick(&g->s, sim_vocab_cves), cve, sizeof cve);
  snprintf(url, sizeof url, "https://www.cve.org/CVERecord?id=%s", cve);
  write_common(g);
  jw_str(&g->w, "name", cve);
  jw_str(&g->w, "description", "Vulnerability exploited in the wild");
  jw_open(&g->w, "external_references", '[');
  jw_open(&g->w, NULL, '{');
  jw_str(&g->w, "source_name", "cve");
  jw_str(&g->w, "url", url);
  jw_str(&g->w, "external_id", cve);
  jw_close(&g->w, '}');
  jw_close(&g->w, ']');
}

static void write_relationship(gen *g) {
  char src[96], dst[96];
  object_id(g->cfg, g->coll, g->cycle_base + (uint32_t)g->sl.src, src);
  object_id(g->cfg, g->coll, g->cycle_base + (uint32_t)g->sl.dst, dst);
  write_common(g);
  jw_str(&g->w, "relationship_type", g->sl.rel_type);
  jw_str(&g->w, "source_ref", src);
  jw_str(&g->w, "target_ref", dst);
}

static void write_note(gen *g) {
  char ref[96];
  object_id(g->cfg, g->coll, g->cycle_base + (uint32_t)g->sl.dst, ref);
  const char *refs[1] = {ref};
  write_common(g);
  jw_str(&g->w, "abstract", "Summary");
  jw_str(&g->w, "content",
         "Key facts: infrastructure observed in several campaigns; "
         "blocking is recommended while the score stays high.");
  jw_str_list(&g->w, "object_refs", refs, 1);
}

static void write_custom(gen *g) {
  char ref[96], t[32];
  const char *srcs[3];
  object_id(g->cfg, g->coll, g->cycle_base + (uint32_t)g->sl.dst, ref);
  int n_src = pick_list(&g->s, sim_vocab_sources, 1, 3, srcs);
  write_common(g);
  jw_str(&g->w, "object_ref", ref);
  jw_int(&g->w, "sightings", sim_range(&g->s, 1, 5000));
  jw_str_list(&g->w, "sources", srcs, n_src);
  stix_time_s(g->e->added_us / SEC_US - sim_range(&g->s, 0, 30 * DAY_S), t);
  jw_str(&g->w, "last_sighted", t);
}

static void write_report(gen *g) {
  static const char *const publishers[] = {"malwarebytes_com", "securelist_com",
                                           "thedfirreport_com", "welivesecurity_com", NULL};
  const char *threat = sim_pick(&g->s, sim_vocab_threats);
  const char *pub = sim_pick(&g->s, publishers);
  char name[160], pretty[96], ext_id[96], url[160], day[16], hex[9], domain[64];
  display_name(threat, pretty, sizeof pretty);
  snprintf(name, sizeof name, "%s activity: indicators and techniques", pretty);
  time_t pub_s = (time_t)(g->e->added_us / SEC_US);
  struct tm tm;
  gmtime_r(&pub_s, &tm);
  strftime(day, sizeof day, "%Y%m%d", &tm);
  sim_hex(&g->s, hex, 4);
  snprintf(ext_id, sizeof ext_id, "%s_%s_report_0x%.7s", day, pub, hex);
  tq_strlcpy(domain, pub, sizeof domain);
  for (char *p = domain; *p; p++)
    *p = *p == '_' ? '.' : *p;
  snprintf(url, sizeof url, "https://%s/blog/%s", domain, hex);
  write_common(g);
  jw_str(&g->w, "name", name);
  jw_time(&g->w, "published", g->e->added_us - 3600 * SEC_US);
  const char *rtype = "threat-report", *labels[2] = {"iocs_found", threat};
  jw_str_list(&g->w, "report_types", &rtype, 1);
  jw_str_list(&g->w, "labels", labels, 2);
  jw_open(&g->w, "object_refs", '[');
  for (int c = g->sl.src; c <= g->sl.dst; c++) {
    char ref[96];
    object_id(g->cfg, g->coll, g->cycle_base + (uint32_t)c, ref);
    jw_str(&g->w, NULL, ref);
  }
  jw_close(&g->w, ']');
  jw_open(&g->w, "external_references", '[');
  jw_open(&g->w, NULL, '{');
  jw_str(&g->w, "source_name", domain);
  jw_str(&g->w, "url", url);
  jw_str(&g->w, "external_id", ext_id);
  jw_close(&g->w, '}');
  jw_close(&g->w, ']');
}

static void write_identity(gen *g) {
  jw_str(&g->w, "type", "identity");
  jw_str(&g->w, "spec_version", "2.1");
  jw_str(&g->w, "id", g->e->id);
  jw_time(&g->w, "created", g->e->version_us);
  jw_time(&g->w, "modified", g->e->version_us);
  jw_str(&g->w, "name", "RST Cloud");
  jw_str(&g->w, "identity_class", "organization");
  jw_str(&g->w, "contact_information", "https://www.rstcloud.com");
}

/* The two marking objects the collections carry (spec taxii-stix 2.6); the other TLP ids
 * are referenced without their object, as real feeds do. */
static void write_marking(gen *g) {
  int tlp2 = g->e->kind == K_MARKING_CLEAR;
  jw_str(&g->w, "type", "marking-definition");
  jw_str(&g->w, "spec_version", "2.1");
  jw_str(&g->w, "id", g->e->id);
  jw_time(&g->w, "created", g->e->version_us);
  jw_str(&g->w, "name", tlp2 ? "TLP:CLEAR" : "TLP:WHITE");
  if (tlp2) {
    jw_open(&g->w, "extensions", '{');
    jw_open(&g->w, TLP2_EXT, '{');
    jw_str(&g->w, "extension_type", "property-extension");
    jw_str(&g->w, "tlp_2_0", "clear");
    jw_close(&g->w, '}');
    jw_close(&g->w, '}');
  } else {
    jw_str(&g->w, "definition_type", "tlp");
    jw_open(&g->w, "definition", '{');
    jw_str(&g->w, "tlp", "white");
    jw_close(&g->w, '}');
  }
}

tq_code sim_stix_write(const sim_config *cfg, const sim_coll *coll, const sim_entry *e, tq_buf *out,
                       tq_err *err) {
  gen g = {.cfg = cfg, .coll = coll, .e = e, .w = {.b = out, .ok = 1, .first = {1}}};
  char key[24];
  g.sl = slot_of(coll, e->base, &g.cycle_base);
  index_key(e->base, key);
  sim_stream_init(&g.s, cfg->seed, coll->topic, key);
  jw_open(&g.w, NULL, '{');
  switch (e->kind) {
  case K_INDICATOR: write_indicator(&g); break;
  case K_MALWARE: write_malware(&g); break;
  case K_ATTACK_PATTERN: write_attack_pattern(&g); break;
  case K_INTRUSION_SET: write_actor(&g, 0); break;
  case K_THREAT_ACTOR: write_actor(&g, 1); break;
  case K_VULNERABILITY: write_vulnerability(&g); break;
  case K_RELATIONSHIP: write_relationship(&g); break;
  case K_NOTE: write_note(&g); break;
  case K_CUSTOM: write_custom(&g); break;
  case K_REPORT: write_report(&g); break;
  case K_IDENTITY: write_identity(&g); break;
  default: write_marking(&g); break;
  }
  jw_close(&g.w, '}');
  if (out->data)
    out->data[out->len] = '\0';
  if (!g.w.ok)
    return tq_err_set(err, TQ_ENOMEM, "taxii: page buffer full at entry %u of '%s'", e->index,
                      coll->title);
  return TQ_OK;
}
