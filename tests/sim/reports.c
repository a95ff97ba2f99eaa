/* reports.c: the RST Report Hub family of rstsim (spec section 6): GET /v1/reports?date=
 * lists a day's report digests (404 when there are none), GET /v1/reports[/]?id=&format=
 * answers one report as a STIX 2.1 bundle, a JSON document or a small PDF. A day's reports
 * are drawn from (seed, date), so an id is valid exactly when its day's list holds it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DAY 86400
#define MAX_PER_DAY 4
#define TLP_WHITE "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"

static const char *const publishers[] = {"malwarebytes.com",
                                         "securelist.com",
                                         "unit42.paloaltonetworks.com",
                                         "thedfirreport.com",
                                         "welivesecurity.com",
                                         "blog.talosintelligence.com",
                                         "research.checkpoint.com",
                                         NULL};

/* MITRE ids with their technique names, for attack-pattern objects. */
static const struct {
  const char *id, *name;
} techniques[] = {{"T1059", "Command and Scripting Interpreter"},
                  {"T1566.001", "Spearphishing Attachment"},
                  {"T1071.001", "Web Protocols"},
                  {"T1105", "Ingress Tool Transfer"},
                  {"T1027", "Obfuscated Files or Information"},
                  {"T1486", "Data Encrypted for Impact"}};
#define N_TECHNIQUES (sizeof techniques / sizeof techniques[0])

/* One report as drawn from (seed, date, index). */
typedef struct report {
  char id[96];
  char date[9];
  char title[160];
  char source[64];
  char url[200];
  int64_t published;
  const char *threat; /* RST codename with suffix */
  const char *industry;
  size_t technique; /* index into techniques */
  const char *cve;
  sim_stream s; /* continues with the report's own draws (ids, indicators) */
} report;

/* Parses YYYYMMDD into the Unix time of that midnight; 0 when not a valid date. */
static int parse_date(const char *date, int64_t *out) {
  if (strlen(date) != 8)
    return 0;
  for (int i = 0; i < 8; i++)
    if (!isdigit((unsigned char)date[i]))
      return 0;
  char iso[11];
  snprintf(iso, sizeof iso, "%.4s-%.2s-%.2s", date, date + 4, date + 6);
  return tq_time_parse(iso, out, NULL, NULL) == TQ_OK;
}

/* A codename made readable as the spec's mapping does: suffix dropped, words capitalised. */
static void pretty_name(const char *code, char *out, size_t n) {
  static const char *const suffixes[] = {"_group",     "_actor",   "_campaign",   "_tool",
                                         "_technique", "_vuln",    "_ransomware", "_raas",
                                         "_backdoor",  "_rat",     "_exploit",    "_miner",
                                         "_maas",      "_stealer", "_botnet",     NULL};
  size_t len = strlen(code);
  for (size_t i = 0; suffixes[i]; i++) {
    size_t sl = strlen(suffixes[i]);
    if (len > sl && strcmp(code + len - sl, suffixes[i]) == 0) {
      len -= sl;
      break;
    }
  }
  size_t o = 0;
  for (size_t i = 0; i < len && o + 1 < n; i++) {
    char c = code[i] == '_' ? ' ' : code[i];
    out[o++] = (i == 0 || code[i - 1] == '_') ? (char)toupper((unsigned char)c) : c;
  }
  out[o] = '\0';
}

static int day_count(const sim_config *cfg, const char *date, int64_t day) {
  if (day > cfg->now)
    return 0; /* the future has no reports yet */
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "reports", date);
  return (int)sim_range(&s, 0, MAX_PER_DAY);
}

static void report_draw(const sim_config *cfg, const char *date, int64_t day, int index,
                        report *r) {
  char key[24];
  snprintf(key, sizeof key, "%s#%d", date, index);
  memset(r, 0, sizeof *r);
  sim_stream_init(&r->s, cfg->seed, "report", key);
  tq_strlcpy(r->date, date, sizeof r->date);
  tq_strlcpy(r->source, sim_pick(&r->s, publishers), sizeof r->source);
  char src_us[64], hex[9];
  tq_strlcpy(src_us, r->source, sizeof src_us);
  for (char *p = src_us; *p; p++)
    *p = *p == '.' ? '_' : *p;
  sim_hex(&r->s, hex, 4);
  snprintf(r->id, sizeof r->id, "%s_%s_report_0x%.7s", date, src_us, hex);
  r->published = day + sim_range(&r->s, 0, DAY - 1);
  r->threat = sim_pick(&r->s, sim_vocab_threats);
  r->industry = sim_pick(&r->s, sim_vocab_industries);
  r->technique = (size_t)sim_range(&r->s, 0, N_TECHNIQUES - 1);
  r->cve = sim_pick(&r->s, sim_vocab_cves);
  char pretty[64];
  pretty_name(r->threat, pretty, sizeof pretty);
  snprintf(r->title, sizeof r->title, "%s activity targets the %s sector", pretty, r->industry);
  snprintf(r->url, sizeof r->url, "https://%s/blog/%s-%s", r->source, hex, r->industry);
}

/* ---- the day's list --------------------------------------------------------------------- */
static cJSON *digest(const report *r, int *ok) {
  char published[21];
  sim_fmt_iso(r->published, published);
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "id", r->id, ok);
  sim_j_str(o, "title", r->title, ok);
  sim_j_str(o, "published", published, ok);
  sim_j_str(o, "source", r->source, ok);
  sim_j_str(o, "url", r->url, ok);
  sim_j_str(o, "lang", "eng", ok);
  return o;
}

static tq_code reports_list(const sim_config *cfg, const char *date, sim_reply *out, tq_err *err) {
  int64_t day;
  if (!parse_date(date, &day))
    return sim_reply_message(out, 400, "date must be YYYYMMDD", err);
  int n = day_count(cfg, date, day);
  if (n == 0)
    return sim_reply_message(out, 404, "No reports found", err);
  int ok = 1;
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < n; i++) {
    report r;
    report_draw(cfg, date, day, i, &r);
    cJSON *d = digest(&r, &ok);
    if (d == NULL || arr == NULL || !cJSON_AddItemToArray(arr, d)) {
      cJSON_Delete(d);
      ok = 0;
    }
  }
  if (!ok) {
    cJSON_Delete(arr);
    arr = NULL;
  }
  return sim_reply_json(out, 200, arr, err);
}

/* ---- one report as STIX 2.1 ------------------------------------------------------------- */
typedef struct bundle_ctx {
  cJSON *objects;
  cJSON *refs; /* the report's object_refs */
  const report *r;
  sim_stream *s;
  char published[21];
  int ok;
} bundle_ctx;

/* A new SDO/SRO with the common properties; its id is written to id (>= 80 bytes). */
static cJSON *sdo(bundle_ctx *b, const char *type, char *id, int referenced) {
  char uuid[37];
  sim_uuid4(b->s, uuid);
  snprintf(id, 80, "%s--%s", type, uuid);
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "type", type, &b->ok);
  sim_j_str(o, "spec_version", "2.1", &b->ok);
  sim_j_str(o, "id", id, &b->ok);
  sim_j_str(o, "created", b->published, &b->ok);
  sim_j_str(o, "modified", b->published, &b->ok);
  if (o == NULL || !cJSON_AddItemToArray(b->objects, o)) {
    cJSON_Delete(o);
    b->ok = 0;
    return NULL;
  }
  if (referenced)
    sim_j_push_str(b->refs, id, &b->ok);
  return o;
}

static void relationship(bundle_ctx *b, const char *type, const char *from, const char *to) {
  char id[80];
  cJSON *o = sdo(b, "relationship", id, 1);
  sim_j_str(o, "relationship_type", type, &b->ok);
  sim_j_str(o, "source_ref", from, &b->ok);
  sim_j_str(o, "target_ref", to, &b->ok);
}

/* The threat object whose STIX type follows the codename's suffix (spec section 8.4). */
static void threat_object(bundle_ctx *b, char *id) {
  const char *code = b->r->threat;
  const char *type = "malware";
  if (strstr(code, "_group") || strstr(code, "_actor"))
    type = "intrusion-set";
  else if (strstr(code, "_campaign"))
    type = "campaign";
  else if (strstr(code, "_tool"))
    type = "tool";
  else if (strstr(code, "_technique"))
    type = "attack-pattern";
  else if (strstr(code, "_vuln"))
    type = "vulnerability";
  char name[64];
  pretty_name(code, name, sizeof name);
  cJSON *o = sdo(b, type, id, 1);
  sim_j_str(o, "name", name, &b->ok);
  cJSON *aliases = sim_j_arr(o, "aliases", &b->ok);
  sim_j_push_str(aliases, code, &b->ok);
  if (strcmp(type, "malware") == 0)
    sim_j_bool(o, "is_family", 1, &b->ok);
}

static void indicator_object(bundle_ctx *b, const char *threat_id) {
  char id[80], value[96], pattern[200];
  const char *obs;
  long kind = sim_range(b->s, 0, 2);
  if (kind == 0) {
    sim_fake_domain(b->s, value, sizeof value);
    snprintf(pattern, sizeof pattern, "[domain-name:value = '%s']", value);
    obs = "Domain-Name";
  } else if (kind == 1) {
    sim_ipv4_str(sim_fake_ipv4(b->s), value);
    snprintf(pattern, sizeof pattern, "[ipv4-addr:value = '%s']", value);
    obs = "IPv4-Addr";
  } else {
    sim_hex(b->s, value, 32);
    snprintf(pattern, sizeof pattern, "[file:hashes.'SHA-256' = '%s']", value);
    obs = "StixFile";
  }
  cJSON *o = sdo(b, "indicator", id, 1);
  sim_j_str(o, "name", value, &b->ok);
  sim_j_str(o, "pattern", pattern, &b->ok);
  sim_j_str(o, "pattern_type", "stix", &b->ok);
  sim_j_str(o, "valid_from", b->published, &b->ok);
  cJSON *labels = sim_j_arr(o, "labels", &b->ok);
  sim_j_push_str(labels, b->r->threat, &b->ok);
  cJSON *marks = sim_j_arr(o, "object_marking_refs", &b->ok);
  sim_j_push_str(marks, TLP_WHITE, &b->ok);
  sim_j_str(o, "x_opencti_main_observable_type", obs, &b->ok);
  sim_j_int(o, "x_opencti_score", sim_range(b->s, 30, 90), &b->ok);
  relationship(b, "indicates", id, threat_id);
}

static void tlp_white(bundle_ctx *b) {
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "type", "marking-definition", &b->ok);
  sim_j_str(o, "spec_version", "2.1", &b->ok);
  sim_j_str(o, "id", TLP_WHITE, &b->ok);
  sim_j_str(o, "created", "2017-01-20T00:00:00.000Z", &b->ok);
  sim_j_str(o, "definition_type", "tlp", &b->ok);
  sim_j_str(o, "name", "TLP:WHITE", &b->ok);
  cJSON *def = sim_j_obj(o, "definition", &b->ok);
  sim_j_str(def, "tlp", "white", &b->ok);
  if (o == NULL || !cJSON_AddItemToArray(b->objects, o)) {
    cJSON_Delete(o);
    b->ok = 0;
  }
}

/* The report SDO goes last so that object_refs is complete when it is written. */
static void report_object(bundle_ctx *b, const char *publisher_id) {
  char id[80];
  cJSON *o = sdo(b, "report", id, 0);
  sim_j_str(o, "name", b->r->title, &b->ok);
  sim_j_str(o, "published", b->published, &b->ok);
  sim_j_str(o, "created_by_ref", publisher_id, &b->ok);
  cJSON *labels = sim_j_arr(o, "labels", &b->ok);
  sim_j_push_str(labels, "iocs_found", &b->ok);
  sim_j_push_str(labels, b->r->threat, &b->ok);
  cJSON *refs = sim_j_arr(o, "external_references", &b->ok);
  cJSON *ref = cJSON_CreateObject();
  sim_j_str(ref, "source_name", b->r->source, &b->ok);
  sim_j_str(ref, "url", b->r->url, &b->ok);
  sim_j_str(ref, "external_id", b->r->id, &b->ok);
  if (ref == NULL || refs == NULL || !cJSON_AddItemToArray(refs, ref)) {
    cJSON_Delete(ref);
    b->ok = 0;
  }
  cJSON *marks = sim_j_arr(o, "object_marking_refs", &b->ok);
  sim_j_push_str(marks, TLP_WHITE, &b->ok);
  sim_j_put(o, "object_refs", b->refs, &b->ok);
  b->refs = NULL;
}

static cJSON *report_bundle(report *r) {
  bundle_ctx b = {.r = r, .s = &r->s, .ok = 1};
  char uuid[37], bundle_id[80], publisher[80], threat[80], technique[80], vuln[80], sector[80];
  sim_fmt_iso(r->published, b.published);
  cJSON *bundle = cJSON_CreateObject();
  sim_uuid4(&r->s, uuid);
  snprintf(bundle_id, sizeof bundle_id, "bundle--%s", uuid);
  sim_j_str(bundle, "type", "bundle", &b.ok);
  sim_j_str(bundle, "id", bundle_id, &b.ok);
  b.objects = sim_j_arr(bundle, "objects", &b.ok);
  b.refs = cJSON_CreateArray();
  tlp_white(&b);
  cJSON *org = sdo(&b, "identity", publisher, 0);
  sim_j_str(org, "name", r->source, &b.ok);
  sim_j_str(org, "identity_class", "organization", &b.ok);
  threat_object(&b, threat);
  cJSON *ap = sdo(&b, "attack-pattern", technique, 1);
  sim_j_str(ap, "name", techniques[r->technique].name, &b.ok);
  sim_j_str(ap, "x_mitre_id", techniques[r->technique].id, &b.ok);
  cJSON *vu = sdo(&b, "vulnerability", vuln, 1);
  char cve[32];
  tq_strlcpy(cve, r->cve, sizeof cve);
  for (char *p = cve; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  sim_j_str(vu, "name", cve, &b.ok);
  cJSON *sec = sdo(&b, "identity", sector, 1);
  sim_j_str(sec, "name", r->industry, &b.ok);
  sim_j_str(sec, "identity_class", "class", &b.ok);
  relationship(&b, "uses", threat, technique);
  relationship(&b, "targets", threat, sector);
  relationship(&b, "targets", threat, vuln);
  for (long i = sim_range(&r->s, 2, 3); i > 0; i--)
    indicator_object(&b, threat);
  char note_id[80];
  cJSON *note = sdo(&b, "note", note_id, 1);
  sim_j_str(note, "abstract", "Summary", &b.ok);
  sim_j_str(note, "content", r->title, &b.ok);
  report_object(&b, publisher);
  cJSON_Delete(b.refs);
  if (!b.ok) {
    cJSON_Delete(bundle);
    return NULL;
  }
  return bundle;
}

/* ---- one report as JSON and PDF --------------------------------------------------------- */
static cJSON *report_json(const report *r) {
  int ok = 1;
  cJSON *o = digest(r, &ok);
  char summary[300];
  snprintf(summary, sizeof summary,
           "The publisher describes %s activity against the %s sector using %s and %s.", r->threat,
           r->industry, techniques[r->technique].id, r->cve);
  sim_j_str(o, "summary", summary, &ok);
  cJSON *threats = sim_j_arr(o, "threats", &ok);
  sim_j_push_str(threats, r->threat, &ok);
  cJSON *ttps = sim_j_arr(o, "ttps", &ok);
  sim_j_push_str(ttps, techniques[r->technique].id, &ok);
  cJSON *cves = sim_j_arr(o, "cves", &ok);
  sim_j_push_str(cves, r->cve, &ok);
  cJSON *industries = sim_j_arr(o, "industries", &ok);
  sim_j_push_str(industries, r->industry, &ok);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* A one-page PDF carrying the title: enough for clients that attach the bytes. */
static tq_code report_pdf(const report *r, sim_reply *out, tq_err *err) {
  tq_buf b;
  tq_buf_init(&b, 1 << 16);
  size_t off[6];
  char text[200];
  snprintf(text, sizeof text, "%s", r->title);
  for (char *p = text; *p; p++)
    if (*p == '(' || *p == ')' || *p == '\\')
      *p = ' ';
  char stream[300];
  int slen = snprintf(stream, sizeof stream, "BT /F1 12 Tf 50 750 Td (%s) Tj ET", text);
  tq_buf_adds(&b, "%PDF-1.4\n");
  off[1] = b.len;
  tq_buf_adds(&b, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
  off[2] = b.len;
  tq_buf_adds(&b, "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n");
  off[3] = b.len;
  tq_buf_adds(&b, "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                  "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj\n");
  off[4] = b.len;
  tq_buf_printf(&b, "4 0 obj << /Length %d >> stream\n%s\nendstream endobj\n", slen, stream);
  off[5] = b.len;
  tq_buf_adds(&b, "5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
  size_t xref = b.len;
  tq_buf_adds(&b, "xref\n0 6\n0000000000 65535 f \n");
  for (int i = 1; i <= 5; i++)
    tq_buf_printf(&b, "%010zu 00000 n \n", off[i]);
  tq_code code =
      tq_buf_printf(&b, "trailer << /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
  if (code == TQ_OK)
    code = sim_reply_bytes(out, 200, "application/pdf", b.data, b.len, err);
  else
    code = tq_err_set(err, code, "reports: cannot build the PDF of %s", r->id);
  tq_buf_free(&b);
  return code;
}

/* Finds report id among its day's reports; 0 when the id names no report. */
static int report_find(const sim_config *cfg, const char *id, report *r) {
  char date[9];
  int64_t day;
  if (strlen(id) < 10 || id[8] != '_')
    return 0;
  memcpy(date, id, 8);
  date[8] = '\0';
  if (!parse_date(date, &day))
    return 0;
  int n = day_count(cfg, date, day);
  for (int i = 0; i < n; i++) {
    report_draw(cfg, date, day, i, r);
    if (strcmp(r->id, id) == 0)
      return 1;
  }
  return 0;
}

static tq_code report_get(const sim_config *cfg, const char *id, const char *format, sim_reply *out,
                          tq_err *err) {
  report r;
  if (!report_find(cfg, id, &r))
    return sim_reply_message(out, 404, "Report not found", err);
  if (strcmp(format, "pdf") == 0)
    return report_pdf(&r, out, err);
  cJSON *body = NULL;
  if (strcmp(format, "stix") == 0)
    body = report_bundle(&r);
  else if (strcmp(format, "json") == 0)
    body = report_json(&r);
  else
    return sim_reply_message(out, 400, "format must be stix, json or pdf", err);
  if (body == NULL)
    return tq_err_set(err, TQ_ENOMEM, "reports: no memory for report %s", id);
  return sim_reply_json(out, 200, body, err);
}

static tq_code reports(const sim_config *cfg, const sim_request *rq, sim_reply *out, tq_err *err) {
  char *id = sim_query_get(rq->query, "id");
  char *date = id ? NULL : sim_query_get(rq->query, "date");
  char *format = sim_query_get(rq->query, "format");
  tq_code code;
  if (id)
    code = report_get(cfg, id, format && *format ? format : "json", out, err);
  else if (date)
    code = reports_list(cfg, date, out, err);
  else
    code = sim_reply_message(out, 400, "query must carry date=YYYYMMDD or id=<report id>", err);
  free(id);
  free(date);
  free(format);
  return code;
}

const sim_route sim_routes_reports[] = {
    {"GET", "/v1/reports", SIM_EXACT, SIM_AUTH_APIKEY, reports, "reports"},
    {"GET", "/v1/reports/", SIM_EXACT, SIM_AUTH_APIKEY, reports, "reports/"},
    {0}};
