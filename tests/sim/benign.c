/* benign.c: the RST Noise Control family of rstsim (spec section 3): GET /v1/benign/lookup,
 * POST /v1/benign/batch/{type} (newline-separated values -> a token) and
 * POST /v1/benign/result/{type} (the token -> 301 while pending, then 200 with the verdicts).
 * Verdicts are deterministic per (seed, value); batch jobs live in a small table here. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MAX_JOBS 1024          /* oldest jobs are forgotten beyond this */
#define MAX_BATCH_VALUES 10000 /* per batch */

/* ---- verdicts --------------------------------------------------------------------------- */
typedef struct category_set {
  const char *const *drop;
  const char *const *change;
} category_set;

static const char *const ip_drop[] = {"DNS/Public DNS/Google", "CDN/Cloudflare/Cloudflare",
                                      "Cloud/AWS/Amazon", NULL};
static const char *const ip_change[] = {"Shodan/Scanners/Shodan", "Scanners/Censys/Censys",
                                        "Cloud/Hosting/DigitalOcean", NULL};
static const char *const domain_drop[] = {"Popular/Top Sites/Tranco", "Software/Updates/Microsoft",
                                          NULL};
static const char *const domain_change[] = {"CDN/Edge/Akamai", "Dynamic DNS/Providers/No-IP", NULL};
static const char *const url_drop[] = {"Software/Updates/Microsoft", NULL};
static const char *const url_change[] = {"File Sharing/Cloud Storage/Dropbox", NULL};
static const char *const hash_drop[] = {"Ubuntu Server 26.04 LTS/pam_sepermit.so/",
                                        "Windows 11/System32/powershell.exe", NULL};
static const char *const hash_change[] = {"Software/Installers/7-Zip", NULL};

static category_set categories_for(sim_ioc_type t) {
  switch (sim_ioc_family_name(t)[0]) {
  case 'i': return (category_set){ip_drop, ip_change};
  case 'd': return (category_set){domain_drop, domain_change};
  case 'u': return (category_set){url_drop, url_change};
  default: return (category_set){hash_drop, hash_change};
  }
}

typedef enum verdict { V_NOT_FOUND, V_DROP, V_CHANGE } verdict;

/* Pinned: "benign" in a value means Drop, "noisy" Change Score; 8.8.8.8 and 1.1.1.1 are the
 * public resolvers. Otherwise 15% Drop, 15% Change Score, the rest not found. */
static verdict draw_verdict(const sim_config *cfg, const char *value, sim_ioc_type t,
                            sim_stream *s) {
  sim_stream_init(s, cfg->seed, "benign", value);
  double u = sim_unit(s);
  if (t == SIM_IOC_UNKNOWN || strcasestr(value, "notfound"))
    return V_NOT_FOUND;
  if (strcasestr(value, "benign") || !strcmp(value, "8.8.8.8") || !strcmp(value, "1.1.1.1"))
    return V_DROP;
  if (strcasestr(value, "noisy"))
    return V_CHANGE;
  return u < 0.15 ? V_DROP : u < 0.30 ? V_CHANGE : V_NOT_FOUND;
}

/* One {value, type, benign, reason} object, all strings. */
static cJSON *benign_verdict(const sim_config *cfg, const char *value) {
  sim_ioc_type t = sim_ioc_classify(value);
  sim_stream s;
  verdict v = draw_verdict(cfg, value, t, &s);
  char reason[160];
  category_set cats = categories_for(t);
  if (v == V_NOT_FOUND)
    tq_strlcpy(reason, "Not Found in our database", sizeof reason);
  else if (!strcmp(value, "8.8.8.8") || !strcmp(value, "1.1.1.1"))
    snprintf(reason, sizeof reason, "Drop DNS/Public DNS/%s",
             value[0] == '8' ? "Google" : "Cloudflare");
  else
    snprintf(reason, sizeof reason, "%s %s", v == V_DROP ? "Drop" : "Change Score",
             sim_pick(&s, v == V_DROP ? cats.drop : cats.change));
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "value", value, &ok);
  sim_j_str(o, "type", sim_ioc_family_name(t), &ok);
  sim_j_str(o, "benign", v == V_NOT_FOUND ? "false" : "true", &ok);
  sim_j_str(o, "reason", reason, &ok);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static tq_code benign_lookup(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                             tq_err *err) {
  char *value = sim_query_get(rq->query, "value");
  tq_code code;
  if (value == NULL || *value == '\0')
    code = sim_reply_message(out, 400, "missing query parameter 'value'", err);
  else {
    cJSON *o = benign_verdict(cfg, value);
    code = o ? sim_reply_json(out, 200, o, err)
             : tq_err_set(err, TQ_ENOMEM, "benign: no memory for '%.100s'", value);
  }
  free(value);
  return code;
}

/* ---- batch jobs ------------------------------------------------------------------------- */
typedef struct job {
  char token[33];
  char type[8];
  char *values; /* n NUL-separated values */
  size_t n;
  int64_t created_ms;
  unsigned polls;
} job;

static struct {
  pthread_mutex_t lock;
  job jobs[MAX_JOBS];
  size_t next; /* ring position of the next job */
  unsigned long made;
} g_jobs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int valid_type(const char *t) {
  return !strcmp(t, "ip") || !strcmp(t, "domain") || !strcmp(t, "url") || !strcmp(t, "hash");
}

/* Splits body on newlines into NUL-separated trimmed values (empty lines dropped). */
static char *split_values(const char *body, size_t len, size_t *n) {
  char *out = malloc(len + 1);
  if (out == NULL)
    return NULL;
  size_t o = 0;
  *n = 0;
  for (size_t i = 0; i < len;) {
    size_t end = i;
    while (end < len && body[end] != '\n')
      end++;
    size_t a = i, b = end;
    while (a < b && isspace((unsigned char)body[a]))
      a++;
    while (b > a && isspace((unsigned char)body[b - 1]))
      b--;
    if (b > a) {
      memcpy(out + o, body + a, b - a);
      o += b - a;
      out[o++] = '\0';
      (*n)++;
    }
    i = end + 1;
  }
  return out;
}

/* Stores a job and writes its token; the oldest job is dropped when the table is full. */
static void job_store(const sim_config *cfg, const char *type, char *values, size_t n,
                      char token[33]) {
  pthread_mutex_lock(&g_jobs.lock);
  job *j = &g_jobs.jobs[g_jobs.next];
  g_jobs.next = (g_jobs.next + 1) % MAX_JOBS;
  free(j->values);
  char seq[24];
  snprintf(seq, sizeof seq, "%lu", g_jobs.made++);
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "batch.token", seq);
  sim_hex(&s, j->token, 16);
  tq_strlcpy(j->type, type, sizeof j->type);
  j->values = values;
  j->n = n;
  j->created_ms = tq_mono_ms();
  j->polls = 0;
  memcpy(token, j->token, 33);
  pthread_mutex_unlock(&g_jobs.lock);
}

static tq_code benign_batch(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                            tq_err *err) {
  size_t n = 0;
  char *values = NULL;
  if (!valid_type(rq->tail))
    return sim_reply_message(out, 400, "batch type must be one of ip, domain, url, hash", err);
  values = split_values(rq->body, rq->body_len, &n);
  if (values == NULL)
    return tq_err_set(err, TQ_ENOMEM, "benign batch: no memory for %zu bytes", rq->body_len);
  if (n == 0 || n > MAX_BATCH_VALUES) {
    free(values);
    return sim_reply_message(
        out, 400,
        n ? "batch over 10000 values" : "batch body must hold values separated by newlines", err);
  }
  char token[33];
  job_store(cfg, rq->tail, values, n, token);
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "token", token, &ok);
  sim_j_str(o, "type", rq->tail, &ok);
  sim_j_int(o, "count", (long long)n, &ok);
  sim_j_str(o, "status", "accepted", &ok);
  if (!ok) {
    cJSON_Delete(o);
    o = NULL;
  }
  return sim_reply_json(out, 200, o, err);
}

/* The token as the client sent it: the batch answer object, a JSON string or plain text. */
static int read_token(const sim_request *rq, char token[33]) {
  cJSON *in = cJSON_ParseWithLength(rq->body, rq->body_len);
  const cJSON *t = cJSON_IsObject(in) ? cJSON_GetObjectItemCaseSensitive(in, "token") : in;
  int found = 0;
  if (cJSON_IsString(t) && strlen(t->valuestring) == 32) {
    memcpy(token, t->valuestring, 33);
    found = 1;
  } else if (in == NULL && rq->body_len >= 32) {
    char *copy = tq_strndup(rq->body, rq->body_len);
    if (copy && strlen(tq_str_trim(copy)) == 32) {
      memcpy(token, tq_str_trim(copy), 33);
      found = 1;
    }
    free(copy);
  }
  cJSON_Delete(in);
  return found;
}

typedef enum job_state { JOB_UNKNOWN, JOB_WRONG_TYPE, JOB_PENDING, JOB_DONE } job_state;

/* Counts a poll of token and says where its job stands; when done, copies its values. */
static job_state job_poll(const sim_config *cfg, const char *token, const char *type, char **values,
                          size_t *n, size_t *len) {
  job_state st = JOB_UNKNOWN;
  pthread_mutex_lock(&g_jobs.lock);
  for (size_t i = 0; i < MAX_JOBS; i++) {
    job *j = &g_jobs.jobs[i];
    if (j->values == NULL || strcmp(j->token, token) != 0)
      continue;
    if (strcmp(j->type, type) != 0) {
      st = JOB_WRONG_TYPE;
      break;
    }
    j->polls++;
    int64_t age = tq_mono_ms() - j->created_ms;
    if (age < (int64_t)cfg->pending_ms || j->polls <= cfg->pending_polls) {
      st = JOB_PENDING;
      break;
    }
    size_t total = 0;
    for (size_t k = 0; k < j->n; k++)
      total += strlen(j->values + total) + 1;
    *values = malloc(total);
    if (*values)
      memcpy(*values, j->values, total);
    *n = j->n;
    *len = total;
    st = JOB_DONE;
    break;
  }
  pthread_mutex_unlock(&g_jobs.lock);
  return st;
}

static tq_code reply_results(const sim_config *cfg, const char *values, size_t n, sim_reply *out,
                             tq_err *err) {
  cJSON *arr = cJSON_CreateArray();
  const char *v = values;
  for (size_t i = 0; arr && i < n; i++, v += strlen(v) + 1) {
    cJSON *o = benign_verdict(cfg, v);
    if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      cJSON_Delete(arr);
      return tq_err_set(err, TQ_ENOMEM, "benign result: no memory for %zu verdicts", n);
    }
  }
  return sim_reply_json(out, 200, arr, err);
}

static tq_code benign_result(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                             tq_err *err) {
  char token[33];
  char *values = NULL;
  size_t n = 0, len = 0;
  if (!valid_type(rq->tail))
    return sim_reply_message(out, 400, "batch type must be one of ip, domain, url, hash", err);
  if (!read_token(rq, token))
    return sim_reply_message(out, 400, "body must be the token object of the batch call", err);
  switch (job_poll(cfg, token, rq->tail, &values, &n, &len)) {
  case JOB_UNKNOWN: return sim_reply_message(out, 404, "unknown or expired token", err);
  case JOB_WRONG_TYPE:
    return sim_reply_message(out, 400, "token belongs to a batch of another type", err);
  case JOB_PENDING: {
    /* 301 without Location: clients poll again instead of following a redirect. */
    int ok = 1;
    cJSON *o = cJSON_CreateObject();
    sim_j_str(o, "token", token, &ok);
    sim_j_str(o, "status", "pending", &ok);
    sim_j_str(o, "message", "Batch is being processed", &ok);
    if (!ok) {
      cJSON_Delete(o);
      o = NULL;
    }
    return sim_reply_json(out, 301, o, err);
  }
  case JOB_DONE: break;
  }
  if (values == NULL)
    return tq_err_set(err, TQ_ENOMEM, "benign result: no memory for %zu bytes", len);
  tq_code code = reply_results(cfg, values, n, out, err);
  free(values);
  return code;
}

void sim_benign_cleanup(void) {
  pthread_mutex_lock(&g_jobs.lock);
  for (size_t i = 0; i < MAX_JOBS; i++) {
    free(g_jobs.jobs[i].values);
    g_jobs.jobs[i].values = NULL;
  }
  pthread_mutex_unlock(&g_jobs.lock);
}

const sim_route sim_routes_benign[] = {
    {"GET", "/v1/benign/lookup", SIM_EXACT, SIM_AUTH_APIKEY, benign_lookup, "benign.lookup"},
    {"POST", "/v1/benign/batch/", SIM_PREFIX, SIM_AUTH_APIKEY, benign_batch, "benign.batch"},
    {"POST", "/v1/benign/result/", SIM_PREFIX, SIM_AUTH_APIKEY, benign_result, "benign.result"},
    {0}};
