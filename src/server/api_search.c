/* api_search.c: the routes of search: the indicator list with filters (GET /api/indicators),
 * keyword search (GET /api/search), ThreatQ's criteria language (POST /api/indicators/query),
 * its hash with cursorMark pages (GET /api/indicators/query/hash/{hash}), saved searches (data
 * collections: /api/search/query) and the score explained (GET /api/indicators/{id}/score).
 *
 * The language, its pages and the score terms are the library's (criteria.c, score.c); this
 * file turns requests into documents and answers. Reads run on the HTTP thread (rq->rd);
 * remembering a hash and saving or deleting a search are engine jobs. A hash is the BLAKE2b-128
 * of the document's canonical text; its rows live in the part "search" (table search_hashes).
 * A cursorMark is the last id seen with a MAC over (hash, id) under the library's key (table
 * search_secret): a forged mark is a 400, never a crash; a genuine one outlives a restart. */
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "api_input.h"
#include "auth_int.h"
#include "render.h"
#include "server_int.h"
#include "tqhost/workflow.h"

enum { PAGE_DEFAULT = 20, PAGE_MAX = TQ_CRITERIA_MAX_PAGE, HASH_HEX = 32 };
/* uicoll: the time a page of ?with=count may spend counting, all its collections together. */
enum { COUNT_BUDGET_MS = 3000 };
_Static_assert(TQ_LIB_MAX_NAME == 1024, "the PUT's message on a long name says 1024 bytes");

/* ---- the part's table ---------------------------------------------------------------------- */

static const char *const SEARCH_MIGRATIONS[] = {
    /* 1: criteria documents by hash (what a hash query and a saved search run) */
    "CREATE TABLE search_hashes(hash TEXT PRIMARY KEY, criteria TEXT NOT NULL,"
    " created_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 2: the key cursorMarks are signed with, made once per library so that a mark outlives
     * a restart of the server (a client polling a collection keeps its place) */
    "CREATE TABLE search_secret(k BLOB NOT NULL);"
    "INSERT INTO search_secret VALUES(randomblob(32));",
};
static const tq_lib_part SEARCH_PART = {
    "search", SEARCH_MIGRATIONS, (int)(sizeof SEARCH_MIGRATIONS / sizeof SEARCH_MIGRATIONS[0])};

static void criteria_hash(const char *canonical, char out[HASH_HEX + 1]) {
  unsigned char h[HASH_HEX / 2];
  crypto_generichash(h, sizeof h, (const unsigned char *)canonical, strlen(canonical), NULL, 0);
  sodium_bin2hex(out, HASH_HEX + 1, h, sizeof h);
}

/* The document of a hash (malloc'd) on the read connection; TQ_ENOTFOUND when unknown (also
 * before the part's table exists). */
static tq_code hash_lookup(tq_lib *lib, const char *hash, char **doc, tq_err *err) {
  *doc = NULL;
  if (tq_lib_part_version(lib, SEARCH_PART.name) < 1)
    return tq_err_set(err, TQ_ENOTFOUND, "no query with hash '%s'", hash);
  sqlite3_stmt *st = NULL;
  sqlite3 *db = tq_lib_db(lib);
  if (sqlite3_prepare_v2(db, "SELECT criteria FROM search_hashes WHERE hash=?1", -1, &st, NULL) !=
      SQLITE_OK)
    return tq_err_set(err, TQ_EDB, "reading a query hash: %s", sqlite3_errmsg(db));
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW)
    *doc = tq_strdup((const char *)sqlite3_column_text(st, 0));
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no query with hash '%s'", hash);
  else
    rc = tq_err_set(err, TQ_EDB, "reading a query hash: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (rc == TQ_OK && *doc == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  return rc;
}

/* On the engine, inside the caller's transaction. */
static tq_code hash_store(tq_lib *lib, const char *hash, const char *doc, tq_err *err) {
  sqlite3_stmt *st = NULL;
  sqlite3 *db = tq_lib_db(lib);
  if (sqlite3_prepare_v2(db,
                         "INSERT OR IGNORE INTO search_hashes(hash, criteria, created_at)"
                         " VALUES(?1, ?2, ?3)",
                         -1, &st, NULL) != SQLITE_OK)
    return tq_err_set(err, TQ_EDB, "storing a query hash: %s", sqlite3_errmsg(db));
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, doc, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, tq_time_now());
  tq_code rc = sqlite3_step(st) == SQLITE_DONE
                   ? TQ_OK
                   : tq_err_set(err, TQ_EDB, "storing a query hash: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

/* ---- cursorMark ------------------------------------------------------------------------------ */

/* The signing key: the library's (table search_secret), read once per process; a process
 * that finds none (the part's tables not made yet) uses a random key of its own, whose marks
 * last as long as it runs. */
static unsigned char MARK_KEY[crypto_generichash_KEYBYTES];
static int MARK_HAVE;
static pthread_mutex_t MARK_LOCK = PTHREAD_MUTEX_INITIALIZER;

static void mark_key_load(tq_lib *lib) {
  pthread_mutex_lock(&MARK_LOCK);
  if (!MARK_HAVE) {
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (tq_lib_part_version(lib, SEARCH_PART.name) >= 2 &&
        sqlite3_prepare_v2(tq_lib_db(lib), "SELECT k FROM search_secret LIMIT 1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == sizeof MARK_KEY) {
      memcpy(MARK_KEY, sqlite3_column_blob(st, 0), sizeof MARK_KEY);
      found = 1;
    }
    sqlite3_finalize(st);
    if (!found)
      randombytes_buf(MARK_KEY, sizeof MARK_KEY);
    MARK_HAVE = 1;
  }
  pthread_mutex_unlock(&MARK_LOCK);
}

enum { MARK_MAC = 16, MARK_BIN = 8 + MARK_MAC };

static void mark_mac(tq_lib *lib, const char *hash, int64_t last, unsigned char mac[MARK_MAC]) {
  mark_key_load(lib);
  unsigned char msg[HASH_HEX + 8];
  memcpy(msg, hash, HASH_HEX);
  for (int i = 0; i < 8; i++)
    msg[HASH_HEX + i] = (unsigned char)((uint64_t)last >> (56 - 8 * i));
  crypto_generichash(mac, MARK_MAC, msg, sizeof msg, MARK_KEY, sizeof MARK_KEY);
}

static void mark_make(tq_lib *lib, const char *hash, int64_t last, char *out, size_t out_len) {
  unsigned char bin[MARK_BIN];
  for (int i = 0; i < 8; i++)
    bin[i] = (unsigned char)((uint64_t)last >> (56 - 8 * i));
  mark_mac(lib, hash, last, bin + 8);
  sodium_bin2base64(out, out_len, bin, sizeof bin, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* "*" is the start (0); else the id the mark carries, or -1 when forged. */
static int64_t mark_read(tq_lib *lib, const char *hash, const char *mark) {
  if (strcmp(mark, "*") == 0)
    return 0;
  unsigned char bin[MARK_BIN], mac[MARK_MAC];
  size_t n = 0;
  if (strlen(mark) > 64 ||
      sodium_base642bin(bin, sizeof bin, mark, strlen(mark), NULL, &n, NULL,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      n != MARK_BIN)
    return -1;
  uint64_t last = 0;
  for (int i = 0; i < 8; i++)
    last = (last << 8) | bin[i];
  mark_mac(lib, hash, (int64_t)last, mac);
  if (sodium_memcmp(mac, bin + 8, MARK_MAC) != 0 || (int64_t)last < 0)
    return -1;
  return (int64_t)last;
}

/* ---- shared pieces ------------------------------------------------------------------------- */

/* The objects of ids rendered in order (deleted ones skipped): heads unless with asks for
 * attributes, sources or tags. */
static tq_code render_ids(tq_lib *lib, const int64_t *ids, size_t n, unsigned with,
                          const char *add_type_as, cJSON **out, tq_err *err) {
  cJSON *list = cJSON_CreateArray();
  if (list == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  int whole = (with & (TQ_WITH_ATTRIBUTES | TQ_WITH_SOURCES | TQ_WITH_TAGS)) != 0;
  for (size_t i = 0; i < n;) {
    size_t k = n - i < TQ_LIB_HEADS_MAX ? n - i : TQ_LIB_HEADS_MAX;
    tq_object *objs[TQ_LIB_HEADS_MAX] = {0};
    tq_code rc = TQ_OK;
    if (whole) {
      for (size_t j = 0; j < k && rc == TQ_OK; j++) {
        rc = tq_lib_object_get(lib, ids[i + j], &objs[j], err);
        if (rc == TQ_ENOTFOUND) {
          objs[j] = NULL;
          rc = TQ_OK;
        }
      }
    } else {
      /* tq_lib_object_heads wants ascending ids: look each up in order of the page. */
      int64_t sorted[TQ_LIB_HEADS_MAX];
      tq_object *heads[TQ_LIB_HEADS_MAX] = {0};
      memcpy(sorted, ids + i, k * sizeof *sorted);
      for (size_t a = 1; a < k; a++)
        for (size_t b = a; b > 0 && sorted[b - 1] > sorted[b]; b--) {
          int64_t t = sorted[b];
          sorted[b] = sorted[b - 1];
          sorted[b - 1] = t;
        }
      rc = tq_lib_object_heads(lib, sorted, k, heads, err);
      for (size_t j = 0; j < k && rc == TQ_OK; j++)
        for (size_t s = 0; s < k; s++)
          if (heads[s] && heads[s]->id == ids[i + j]) {
            objs[j] = heads[s];
            heads[s] = NULL;
            break;
          }
      for (size_t s = 0; s < k; s++)
        tq_object_free(heads[s]);
    }
    for (size_t j = 0; j < k; j++) {
      if (rc == TQ_OK && objs[j]) {
        cJSON *o = tq_render_object(objs[j], with);
        if (o && add_type_as)
          cJSON_AddStringToObject(o, add_type_as, objs[j]->object_type);
        if (o == NULL || !cJSON_AddItemToArray(list, o))
          rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      }
      tq_object_free(objs[j]);
    }
    if (rc != TQ_OK) {
      cJSON_Delete(list);
      return rc;
    }
    i += k;
  }
  *out = list;
  return TQ_OK;
}

/* A compile error as a 400 naming where (the JSON path) or the field the caller maps it to. */
static void criteria_invalid(tq_resp *rs, const char *where, const tq_err *err) {
  if (err->code != TQ_EINVAL)
    return tq_resp_err(rs, NULL, err);
  const char *msg = err->msg;
  size_t wl = strlen(where);
  if (wl && strncmp(msg, where, wl) == 0 && msg[wl] == ':')
    msg += wl + 1 + (msg[wl + 1] == ' ');
  tq_resp_invalid(rs, where[0] ? where : "criteria", "%s", msg);
}

/* uicore: ?count=false leaves the count out ("total": null): counting every match of a wide
 * query over a large library costs far more than the page itself, and a screen shows the page
 * first and asks for the count apart. Returns 1 (count), 0 (not), -1 after a 400. */
static int wants_count(const tq_req *rq, tq_resp *rs) {
  const char *v = tq_req_arg(rq, "count");
  if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
    return 1;
  if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
    return 0;
  tq_resp_invalid(rs, "count", "true or false");
  return -1;
}

/* The envelope's total as null (count=false). */
static void total_null(tq_resp *rs) {
  if (rs->json && cJSON_GetObjectItemCaseSensitive(rs->json, "total"))
    cJSON_ReplaceItemInObjectCaseSensitive(rs->json, "total", cJSON_CreateNull());
}

/* One page of a compiled document: the list envelope with rendered objects. */
static void answer_page(tq_req *rq, tq_resp *rs, const tq_criteria *c, unsigned with, int64_t limit,
                        int64_t offset) {
  tq_err err;
  tq_err_clear(&err);
  int64_t *ids = NULL, total = 0;
  size_t n = 0;
  cJSON *list = NULL;
  const char *sort = tq_req_arg(rq, "sort");
  int count = wants_count(rq, rs);
  if (count < 0)
    return;
  if (tq_lib_criteria_ids(rq->rd, c, NULL, sort, 0, limit, offset, &ids, &n, count ? &total : NULL,
                          &err) != TQ_OK) {
    if (err.code == TQ_EINVAL && strncmp(err.msg, "sort:", 5) == 0)
      tq_resp_invalid(rs, "sort", "%s", err.msg + 6);
    else
      tq_resp_err(rs, NULL, &err);
    return;
  }
  tq_code rc = render_ids(rq->rd, ids, n, with, NULL, &list, &err);
  free(ids);
  if (rc != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  tq_resp_list(rs, list, total, limit, offset);
  if (!count)
    total_null(rs);
}

/* ---- GET /api/indicators: the list with filters ------------------------------------------- */

/* A query parameter and the criteria it becomes: field (op NULL: equals). */
static const struct {
  const char *param;
  const char *field;
  const char *op;
} LIST_PARAMS[] = {
    {"id", "id", NULL},
    {"value", "value", NULL},
    {"type", "type_name", NULL},
    {"type_name", "type_name", NULL},
    {"type_id", "type_id", NULL},
    {"status", "status_name", NULL},
    {"status_name", "status_name", NULL},
    {"status_id", "status_id", NULL},
    {"score", "score", NULL},
    {"score_gte", "score", "+gte"},
    {"score[gte]", "score", "+gte"},
    {"score_lte", "score", "+lte"},
    {"score[lte]", "score", "+lte"},
    {"score_gt", "score", "+gt"},
    {"score[gt]", "score", "+gt"},
    {"score_lt", "score", "+lt"},
    {"score[lt]", "score", "+lt"},
    {"source", "source", NULL},
    {"source_name", "source", NULL},
    {"tag", "tag", NULL},
    {"tag_name", "tag", NULL},
    {"updated_since", "updated_at", "+gte"},
    {"updated_at[gte]", "updated_at", "+gte"},
    {"created_since", "created_at", "+gte"},
};

static void api_indicators_list(tq_req *rq, tq_resp *rs) {
  unsigned with = 0;
  int64_t limit, offset;
  if (!tq_render_with(rq, &with, rs) ||
      !tq_req_page(rq, PAGE_DEFAULT, PAGE_MAX, &limit, &offset, rs))
    return;
  cJSON *doc = cJSON_CreateObject(), *crit = doc ? cJSON_AddObjectToObject(doc, "criteria") : NULL;
  cJSON *and = crit ? cJSON_AddArrayToObject(crit, "+and") : NULL;
  if (and == NULL) {
    cJSON_Delete(doc);
    return tq_resp_fail(rs, 500, "out of memory");
  }
  /* Which parameter made which condition, to name it in a 400. */
  const char *who[64];
  size_t n_who = 0;
  for (size_t i = 0; i < sizeof LIST_PARAMS / sizeof LIST_PARAMS[0]; i++) {
    const char *v = tq_req_arg(rq, LIST_PARAMS[i].param);
    if (v == NULL)
      continue;
    cJSON *term = cJSON_CreateObject();
    cJSON *val = cJSON_CreateString(v);
    if (LIST_PARAMS[i].op) {
      cJSON *ops = cJSON_CreateObject();
      cJSON_AddItemToObject(ops, LIST_PARAMS[i].op, val);
      val = ops;
    }
    cJSON_AddItemToObject(term, LIST_PARAMS[i].field, val);
    cJSON_AddItemToArray(and, term);
    who[n_who++] = LIST_PARAMS[i].param;
  }
  const char *an = tq_req_arg(rq, "attribute"), *av = tq_req_arg(rq, "attribute_value");
  if (an || av) {
    cJSON *term = cJSON_CreateObject(), *a = cJSON_AddObjectToObject(term, "attribute");
    if (an)
      cJSON_AddStringToObject(a, "name", an);
    if (av)
      cJSON_AddStringToObject(a, "value", av);
    cJSON_AddItemToArray(and, term);
    who[n_who++] = an ? "attribute" : "attribute_value";
  }
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  if (text == NULL)
    return tq_resp_fail(rs, 500, "out of memory");
  tq_criteria *c = NULL;
  char where[256];
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = tq_criteria_compile(text, strlen(text), &c, where, sizeof where, &err);
  free(text);
  if (rc != TQ_OK) {
    /* where is "criteria.+and[i]...": the i-th parameter given. */
    const char *p = strstr(where, "+and[");
    int idx = p ? atoi(p + 5) : -1;
    const char *field = idx >= 0 && (size_t)idx < n_who ? who[idx] : "request";
    if (rc == TQ_EINVAL && idx >= 0 && (size_t)idx < n_who && strcmp(field, "attribute") == 0 &&
        strstr(where, ".value"))
      field = "attribute_value";
    if (rc != TQ_EINVAL)
      return tq_resp_err(rs, NULL, &err);
    size_t wl = strlen(where);
    const char *msg =
        strncmp(err.msg, where, wl) == 0 && err.msg[wl] == ':' ? err.msg + wl + 1 : err.msg;
    return tq_resp_invalid(rs, field, "%s", msg + (*msg == ' '));
  }
  answer_page(rq, rs, c, with, limit, offset);
  tq_criteria_free(c);
}

/* ---- GET /api/search?query= ------------------------------------------------------------------ */

static void api_search(tq_req *rq, tq_resp *rs) {
  const char *q = tq_req_arg(rq, "query");
  int64_t limit, offset;
  if (!tq_req_page(rq, 10, PAGE_MAX, &limit, &offset, rs))
    return;
  if (q == NULL || *q == '\0')
    return tq_resp_invalid(rs, "query", "give the text to search for (?query=...)");
  if (strlen(q) > TQ_CRITERIA_MAX_STRING)
    return tq_resp_invalid(rs, "query", "at most %d bytes", TQ_CRITERIA_MAX_STRING);
  if (tq_utf8_invalid_at(q, strlen(q)) < strlen(q))
    return tq_resp_invalid(rs, "query", "not valid UTF-8");
  tq_err err;
  tq_err_clear(&err);
  int64_t *ids = NULL;
  size_t n = 0;
  cJSON *list = NULL;
  if (tq_lib_keyword_ids(rq->rd, q, limit, &ids, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  tq_code rc = render_ids(rq->rd, ids, n, 0, "object", &list, &err);
  free(ids);
  if (rc != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  tq_resp_list(rs, list, (int64_t)n, limit, 0);
}

/* ---- POST /api/indicators/query ---------------------------------------------------------- */

/* An engine job that remembers a hash and then hands over the answer prepared on the HTTP
 * thread (or, for saved searches, does the whole write). */
typedef enum { J_HASH, J_SAVE, J_DELETE, J_UPDATE } job_kind;
typedef struct search_job {
  job_kind kind;
  tq_resp ready; /* J_HASH: the answer to give */
  char hash[HASH_HEX + 1];
  char *doc;  /* canonical document */
  char *name; /* J_SAVE; J_UPDATE: the new name or NULL (doc NULL: criteria kept) */
  int64_t id; /* J_DELETE, J_UPDATE */
  char who[128], addr[64];
} search_job;

static void job_free(void *p) {
  search_job *j = p;
  if (j == NULL)
    return;
  tq_resp_free(&j->ready);
  free(j->doc);
  free(j->name);
  free(j);
}

static search_job *job_new(const tq_req *rq, job_kind kind) {
  search_job *j = calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  j->kind = kind;
  tq_strlcpy(j->who, rq->who.name[0] ? rq->who.name : "-", sizeof j->who);
  tq_strlcpy(j->addr, rq->remote ? rq->remote : "", sizeof j->addr);
  return j;
}

static cJSON *saved_json(const tq_collection_row *r) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL)
    return NULL;
  char t[20];
  cJSON_AddNumberToObject(j, "id", (double)r->id);
  cJSON_AddStringToObject(j, "name", r->name);
  cJSON *q = cJSON_Parse(r->query);
  cJSON *crit = q ? cJSON_DetachItemFromObjectCaseSensitive(q, "criteria") : NULL;
  if (crit) {
    char *canon = cJSON_PrintUnformatted(crit);
    tq_criteria *c = NULL;
    tq_err err;
    /* The hash of what the search runs, as POST /api/indicators/query gives it. */
    if (canon && tq_criteria_compile(canon, strlen(canon), &c, NULL, 0, &err) == TQ_OK) {
      char hash[HASH_HEX + 1];
      criteria_hash(tq_criteria_canonical(c), hash);
      cJSON_AddStringToObject(j, "hash", hash);
    }
    tq_criteria_free(c);
    free(canon);
    cJSON_AddItemToObject(j, "api_query", crit);
  } else
    cJSON_AddNullToObject(j, "hash");
  if (q)
    cJSON_AddItemToObject(j, "query", q); /* the flat fields of older collections */
  tq_time_format(r->created_at, t);
  cJSON_AddStringToObject(j, "created_at", t);
  tq_time_format(r->updated_at, t);
  cJSON_AddStringToObject(j, "updated_at", t);
  return j;
}

/* TQ_EEXIST (409) when a workflow runs over the collection name. */
static tq_code in_use(tq_lib *lib, const char *name, tq_err *err) {
  tq_workflow **ws = NULL;
  size_t n = 0;
  tq_code rc = tq_workflow_list(lib, &ws, &n, err);
  for (size_t i = 0; i < n; i++) {
    if (rc == TQ_OK && ws[i]->collection && strcmp(ws[i]->collection, name) == 0)
      rc = tq_err_set(err, TQ_EEXIST, "the saved search '%s' is the collection of workflow '%s'",
                      name, ws[i]->name);
    tq_workflow_free(ws[i]);
  }
  free(ws);
  return rc;
}

static void run_job(tq_engine *eng, tq_job *job) {
  search_job *j = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  tq_err err;
  tq_err_clear(&err);
  tq_collection_row *rows = NULL;
  size_t n = 0;
  if (tq_lib_part_migrate(lib, &SEARCH_PART, &err) != TQ_OK ||
      tq_auth_migrate(lib, &err) != TQ_OK ||
      ((j->kind == J_DELETE || j->kind == J_UPDATE) && tq_workflow_migrate(lib, &err) != TQ_OK) ||
      tq_lib_begin(lib, &err) != TQ_OK) {
    tq_resp_err(rs, NULL, &err);
    return tq_job_done(job);
  }
  tq_code rc = TQ_OK;
  if (j->kind == J_HASH) {
    rc = hash_store(lib, j->hash, j->doc, &err);
    if (rc == TQ_OK)
      rc = tq_lib_commit(lib, &err);
    if (rc == TQ_OK) {
      *rs = j->ready;
      memset(&j->ready, 0, sizeof j->ready);
    }
  } else if (j->kind == J_SAVE) {
    tq_query q;
    tq_query_init(&q);
    q.criteria = j->doc;
    rc = tq_lib_collection_put(lib, j->name, &q, 1, &err);
    q.criteria = NULL;
    if (rc == TQ_OK)
      rc = hash_store(lib, j->hash, j->doc, &err);
    if (rc == TQ_OK)
      rc = tq_auth_audit(lib, j->who, "search.save", j->name, j->hash, j->addr, &err);
    /* The new row: the highest id of that name. */
    if (rc == TQ_OK)
      rc = tq_lib_collection_rows(lib, 0, &rows, &n, &err);
    if (rc == TQ_OK)
      rc = tq_lib_commit(lib, &err);
    if (rc == TQ_OK) {
      cJSON *out = NULL;
      for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, j->name) == 0)
          out = saved_json(&rows[i]);
      tq_resp_data(rs, 201, out);
    }
  } else if (j->kind == J_UPDATE) {
    /* uicoll: in place, the id kept; a workflow names its collection, so renaming one that a
     * workflow runs over is refused (409 naming the workflow) while new criteria are not: the
     * workflow's next run walks them. */
    rc = tq_lib_collection_rows(lib, j->id, &rows, &n, &err);
    if (rc == TQ_OK && j->name && strcmp(j->name, rows[0].name) != 0)
      rc = in_use(lib, rows[0].name, &err);
    tq_query q;
    tq_query_init(&q);
    q.criteria = j->doc;
    if (rc == TQ_OK)
      rc = tq_lib_collection_update(lib, j->id, j->name, j->doc ? &q : NULL, &err);
    q.criteria = NULL;
    if (rc == TQ_OK && j->doc)
      rc = hash_store(lib, j->hash, j->doc, &err);
    if (rc == TQ_OK)
      rc = tq_auth_audit(lib, j->who, "search.update", j->name ? j->name : rows[0].name,
                         j->doc ? j->hash : NULL, j->addr, &err);
    tq_collection_rows_free(rows, n);
    rows = NULL;
    n = 0;
    if (rc == TQ_OK)
      rc = tq_lib_collection_rows(lib, j->id, &rows, &n, &err);
    if (rc == TQ_OK)
      rc = tq_lib_commit(lib, &err);
    if (rc == TQ_OK)
      tq_resp_data(rs, 200, saved_json(&rows[0]));
  } else {
    rc = tq_lib_collection_rows(lib, j->id, &rows, &n, &err);
    /* A workflow's collection stays: deleting it would break the workflow's next run. */
    if (rc == TQ_OK)
      rc = in_use(lib, rows[0].name, &err);
    if (rc == TQ_OK)
      rc = tq_lib_collection_delete(lib, rows[0].name, &err);
    if (rc == TQ_OK)
      rc = tq_auth_audit(lib, j->who, "search.delete", rows[0].name, NULL, j->addr, &err);
    if (rc == TQ_OK)
      rc = tq_lib_commit(lib, &err);
    if (rc == TQ_OK)
      tq_resp_raw(rs, 204, "application/json", "", 0);
  }
  tq_collection_rows_free(rows, n);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    if (err.code == TQ_EINVAL)
      tq_resp_invalid(rs, j->kind == J_SAVE || j->kind == J_UPDATE ? "name" : "request", "%s",
                      err.msg);
    else
      tq_resp_err(rs, NULL, &err);
  }
  tq_job_done(job);
}

/* Compiles a request's criteria document; fills rs and returns NULL when it is refused. */
static tq_criteria *compile_or_400(const char *text, size_t len, tq_resp *rs) {
  tq_criteria *c = NULL;
  char where[256];
  tq_err err;
  tq_err_clear(&err);
  if (tq_criteria_compile(text, len, &c, where, sizeof where, &err) != TQ_OK) {
    criteria_invalid(rs, where, &err);
    return NULL;
  }
  return c;
}

static void api_indicators_query(tq_req *rq, tq_resp *rs) {
  unsigned with = 0;
  int64_t limit, offset;
  if (!tq_render_with(rq, &with, rs) ||
      !tq_req_page(rq, PAGE_DEFAULT, PAGE_MAX, &limit, &offset, rs))
    return;
  if (rq->body == NULL || rq->body_len == 0)
    return tq_resp_invalid(rs, "criteria",
                           "the body is a JSON object {\"criteria\": {...}, "
                           "\"filters\": {...}}");
  tq_criteria *c = compile_or_400(rq->body, rq->body_len, rs);
  if (c == NULL)
    return;
  char hash[HASH_HEX + 1];
  criteria_hash(tq_criteria_canonical(c), hash);
  search_job *j = job_new(rq, J_HASH);
  if (j == NULL || (j->doc = tq_strdup(tq_criteria_canonical(c))) == NULL) {
    job_free(j);
    tq_criteria_free(c);
    return tq_resp_fail(rs, 500, "out of memory");
  }
  answer_page(rq, &j->ready, c, with, limit, offset);
  tq_criteria_free(c);
  if (j->ready.status != 200) {
    *rs = j->ready;
    memset(&j->ready, 0, sizeof j->ready);
    return job_free(j);
  }
  cJSON_AddStringToObject(j->ready.json, "hash", hash);
  memcpy(j->hash, hash, sizeof hash);
  /* Known already: answer at once; else the engine remembers it first. */
  char *doc = NULL;
  tq_err err;
  if (hash_lookup(rq->rd, hash, &doc, &err) == TQ_OK) {
    free(doc);
    *rs = j->ready;
    memset(&j->ready, 0, sizeof j->ready);
    return job_free(j);
  }
  tq_req_engine(rq, rs, run_job, j, job_free);
}

/* ---- GET /api/indicators/query/hash/{hash} --------------------------------------------------- */

static void api_query_hash(tq_req *rq, tq_resp *rs) {
  const char *hash = rq->params[0];
  if (strlen(hash) != HASH_HEX || strspn(hash, "0123456789abcdef") != HASH_HEX)
    return tq_resp_fail(rs, 404, "no query with hash '%.40s'", hash);
  unsigned with = 0;
  int64_t limit, offset;
  if (!tq_render_with(rq, &with, rs) ||
      !tq_req_page(rq, PAGE_DEFAULT, PAGE_MAX, &limit, &offset, rs))
    return;
  const char *mark = tq_req_arg(rq, "cursorMark");
  int64_t after = 0;
  if (mark) {
    if (offset)
      return tq_resp_invalid(rs, "offset", "give cursorMark or offset, not both");
    const char *sort = tq_req_arg(rq, "sort");
    if (sort && strcmp(sort, "id") != 0 && strcmp(sort, "+id") != 0)
      return tq_resp_invalid(rs, "sort", "a cursorMark walks by id ascending only");
    if ((after = mark_read(rq->rd, hash, mark)) < 0)
      return tq_resp_invalid(rs, "cursorMark",
                             "not a mark this server gave for this query "
                             "(start with *)");
  }
  tq_err err;
  tq_err_clear(&err);
  char *doc = NULL;
  if (hash_lookup(rq->rd, hash, &doc, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  tq_criteria *c = NULL;
  tq_code rc = tq_criteria_compile(doc, strlen(doc), &c, NULL, 0, &err);
  free(doc);
  if (rc != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (!mark) {
    answer_page(rq, rs, c, with, limit, offset);
    tq_criteria_free(c);
    return;
  }
  int64_t *ids = NULL, total = 0;
  size_t n = 0;
  cJSON *list = NULL;
  int count = wants_count(rq, rs);
  if (count < 0) {
    tq_criteria_free(c);
    return;
  }
  rc = tq_lib_criteria_ids(rq->rd, c, NULL, NULL, after, limit, 0, &ids, &n, count ? &total : NULL,
                           &err);
  tq_criteria_free(c);
  if (rc == TQ_OK)
    rc = render_ids(rq->rd, ids, n, with, NULL, &list, &err);
  int64_t last = n ? ids[n - 1] : after;
  free(ids);
  if (rc != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  tq_resp_list(rs, list, total, limit, 0);
  if (!count)
    total_null(rs);
  char next[64];
  /* Solr's rule: the walk is over when nextCursorMark equals the cursorMark sent. */
  if (last == after)
    tq_strlcpy(next, mark, sizeof next);
  else
    mark_make(rq->rd, hash, last, next, sizeof next);
  cJSON_AddStringToObject(rs->json, "cursorMark", mark);
  cJSON_AddStringToObject(rs->json, "nextCursorMark", next);
}

/* ---- saved searches: /api/search/query ------------------------------------------------------- */

static void api_saved_list(tq_req *rq, tq_resp *rs) {
  int64_t limit, offset;
  if (!tq_req_page(rq, PAGE_DEFAULT, PAGE_MAX, &limit, &offset, rs))
    return;
  /* uicoll: ?with=count adds each collection's count on this page, computed by the library
   * and capped at TQ_COLLECTION_COUNT_CAP rows ("count_capped": true past it) and, for the
   * whole page, at COUNT_BUDGET_MS: the collections not counted in time have "count": null
   * and "count_timed_out": true. */
  const char *w = tq_req_arg(rq, "with");
  int with_count = 0;
  if (w) {
    if (strcmp(w, "count") != 0)
      return tq_resp_invalid(rs, "with", "only \"count\" (each collection's count)");
    with_count = 1;
  }
  tq_err err;
  tq_err_clear(&err);
  tq_collection_row *rows = NULL;
  size_t n = 0;
  if (tq_lib_collection_rows(rq->rd, 0, &rows, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *list = cJSON_CreateArray();
  int64_t deadline = with_count ? tq_mono_ms() + COUNT_BUDGET_MS : 0;
  for (size_t i = (size_t)offset; list && i < n && i < (size_t)(offset + limit); i++) {
    cJSON *o = saved_json(&rows[i]);
    if (o && with_count) {
      int64_t c = 0;
      int capped = 0;
      tq_code crc = tq_lib_collection_count(rq->rd, rows[i].query, TQ_COLLECTION_COUNT_CAP,
                                            deadline, &c, &capped, &err);
      if (crc == TQ_ETIMEOUT) {
        cJSON_AddNullToObject(o, "count");
        cJSON_AddBoolToObject(o, "count_timed_out", 1);
        cJSON_AddItemToArray(list, o);
        continue;
      }
      if (crc != TQ_OK) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        tq_collection_rows_free(rows, n);
        return tq_resp_err(rs, NULL, &err);
      }
      cJSON_AddNumberToObject(o, "count", (double)c);
      cJSON_AddBoolToObject(o, "count_capped", capped);
    }
    cJSON_AddItemToArray(list, o);
  }
  tq_collection_rows_free(rows, n);
  tq_resp_list(rs, list, (int64_t)n, limit, offset);
  if (with_count && rs->json) {
    cJSON_AddNumberToObject(rs->json, "count_cap", TQ_COLLECTION_COUNT_CAP);
    cJSON_AddNumberToObject(rs->json, "count_budget_ms", COUNT_BUDGET_MS);
  }
}

/* By id, or by hash as ThreatQ's clients name a saved search (the first of that hash). */
static void api_saved_get(tq_req *rq, tq_resp *rs) {
  const char *p = rq->params[0];
  int by_hash = strlen(p) == HASH_HEX && strspn(p, "0123456789abcdef") == HASH_HEX;
  int64_t id = by_hash ? 0 : tq_req_id(rq, 0, rs);
  if (id == 0 && !by_hash)
    return;
  tq_err err;
  tq_err_clear(&err);
  tq_collection_row *rows = NULL;
  size_t n = 0;
  if (tq_lib_collection_rows(rq->rd, id, &rows, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *found = NULL;
  for (size_t i = 0; i < n && found == NULL; i++) {
    cJSON *j = saved_json(&rows[i]);
    const cJSON *h = j ? cJSON_GetObjectItemCaseSensitive(j, "hash") : NULL;
    if (!by_hash || (cJSON_IsString(h) && strcmp(h->valuestring, p) == 0))
      found = j;
    else
      cJSON_Delete(j);
  }
  tq_collection_rows_free(rows, n);
  if (found == NULL)
    return tq_resp_fail(rs, 404, "no saved search with hash '%s'", p);
  tq_resp_data(rs, 200, found);
}

/* The criteria document text into *doc (the canonical form, malloc'd) and its hash; field is
 * the prefix of a refusal's field ("" or "api_query."). 0 after a 400. */
static int saved_doc(const char *text, const char *prefix, char **doc, char hash[HASH_HEX + 1],
                     tq_resp *rs) {
  tq_criteria *c = NULL;
  char where[256], field[300];
  tq_err err;
  tq_err_clear(&err);
  if (tq_criteria_compile(text, strlen(text), &c, where, sizeof where, &err) != TQ_OK) {
    snprintf(field, sizeof field, "%s%s", prefix, where);
    criteria_invalid(rs, field[0] ? field : "criteria", &err);
    return 0;
  }
  criteria_hash(tq_criteria_canonical(c), hash);
  *doc = tq_strdup(tq_criteria_canonical(c));
  tq_criteria_free(c);
  if (*doc == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return 0;
  }
  return 1;
}

/* A saved search's name: 1..TQ_LIB_MAX_NAME bytes of UTF-8 without control characters. */
static int saved_name_ok(const char *s) {
  tq_err err;
  size_t n = strlen(s);
  return n > 0 && n <= TQ_LIB_MAX_NAME && tq_utf8_invalid_at(s, n) >= n &&
         tq_lib_name_check("name", s, &err) == TQ_OK;
}

int tq_api_saved_search(const cJSON *body, int creating, char **name, char **doc, char hash[33],
                        tq_resp *rs) {
  *name = *doc = NULL;
  hash[0] = '\0';
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request",
                    "the body is a JSON object {\"name\", \"criteria\", "
                    "\"filters\"}");
    return 0;
  }
  if (!creating)
    for (const cJSON *it = body->child; it; it = it->next)
      if (strcmp(it->string, "name") != 0 && strcmp(it->string, "criteria") != 0 &&
          strcmp(it->string, "filters") != 0 && strcmp(it->string, "api_query") != 0) {
        /* escaped and cut whole (found by fuzz_api_input: "%.64s" cut a UTF-8 character in
         * two, answering a field that is no UTF-8) */
        char *field = tq_auth_clean(it->string, 64);
        tq_resp_invalid(rs, field && field[0] ? field : "request",
                        "unknown field (name, criteria, filters, api_query)");
        free(field);
        return 0;
      }
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(body, "name");
  const cJSON *api = cJSON_GetObjectItemCaseSensitive(body, "api_query");
  const cJSON *crit = cJSON_GetObjectItemCaseSensitive(body, "criteria");
  const cJSON *filt = cJSON_GetObjectItemCaseSensitive(body, "filters");
  const char *bad = NULL, *why = NULL;
  if (creating && (!cJSON_IsString(nm) || nm->valuestring[0] == '\0'))
    bad = "name", why = "a saved search needs a name (a non-empty string)";
  else if (nm && (!cJSON_IsString(nm) || nm->valuestring[0] == '\0'))
    bad = "name", why = "a non-empty string";
  else if (nm && !saved_name_ok(nm->valuestring))
    bad = "name", why = "at most 1024 bytes of UTF-8 without control characters";
  else if (api && !creating && (crit || filt))
    bad = "api_query", why = "give api_query or criteria/filters, not both";
  else if (api && !cJSON_IsObject(api))
    bad = "api_query", why = "expected {\"criteria\": ..., \"filters\": ...}";
  else if (!creating && filt && !crit)
    bad = "criteria", why = "filters go with criteria";
  else if (!creating && !nm && !api && !crit)
    bad = "request", why = "nothing to change: give name and/or criteria";
  if (bad) {
    tq_resp_invalid(rs, bad, "%s", why);
    return 0;
  }
  if (nm && (*name = tq_strdup(nm->valuestring)) == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return 0;
  }
  if (!creating && !api && !crit)
    return 1; /* a rename: the criteria are kept */
  /* The document: {"criteria", "filters"} (POST: every member beside the name), or ThreatQ's
   * "api_query" holding them. */
  cJSON *d = api ? cJSON_Duplicate(api, 1) : cJSON_CreateObject();
  for (const cJSON *it = body->child; !api && d && it; it = it->next)
    if (strcmp(it->string, "name") != 0 &&
        (creating || strcmp(it->string, "criteria") == 0 || strcmp(it->string, "filters") == 0))
      cJSON_AddItemToObject(d, it->string, cJSON_Duplicate(it, 1));
  char *text = d ? cJSON_PrintUnformatted(d) : NULL;
  cJSON_Delete(d);
  if (text == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return 0;
  }
  int ok = saved_doc(text, api ? "api_query." : "", doc, hash, rs);
  free(text);
  return ok;
}

/* POST /api/search/query (creating) and PUT /api/search/query/{id}: the body checked by
 * tq_api_saved_search, then the engine job J_SAVE or J_UPDATE. */
static void saved_write(tq_req *rq, tq_resp *rs, int creating, int64_t id) {
  cJSON *body = tq_req_json(rq, rs);
  if (body == NULL)
    return;
  search_job *j = job_new(rq, creating ? J_SAVE : J_UPDATE);
  if (j == NULL) {
    cJSON_Delete(body);
    return tq_resp_fail(rs, 500, "out of memory");
  }
  j->id = id;
  if (!tq_api_saved_search(body, creating, &j->name, &j->doc, j->hash, rs)) {
    cJSON_Delete(body);
    return job_free(j);
  }
  cJSON_Delete(body);
  tq_req_engine(rq, rs, run_job, j, job_free);
}

static void api_saved_add(tq_req *rq, tq_resp *rs) { saved_write(rq, rs, 1, 0); }

/* uicoll: PUT /api/search/query/{id}: {"name"} and/or the document ({"criteria", "filters"} or
 * ThreatQ's "api_query" holding them), checked as POST checks them; any other field is a 400
 * naming it. The write (404, 409 for a taken name or renaming a workflow's collection, audit)
 * is the engine job J_UPDATE over tq_lib_collection_update. */
static void api_saved_update(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id != 0)
    saved_write(rq, rs, 0, id);
}

static void api_saved_delete(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  search_job *j = job_new(rq, J_DELETE);
  if (j == NULL)
    return tq_resp_fail(rs, 500, "out of memory");
  j->id = id;
  tq_req_engine(rq, rs, run_job, j, job_free);
}

/* ---- GET /api/indicators/{id}/score ---------------------------------------------------------- */

static void api_score(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  tq_err err;
  tq_err_clear(&err);
  tq_score_explain x;
  if (tq_lib_score_explain(rq->rd, id, &x, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *d = cJSON_CreateObject();
  cJSON_AddNumberToObject(d, "indicator_id", (double)id);
  cJSON_AddNumberToObject(d, "generated_score", x.stored);
  if (x.manual >= 0)
    cJSON_AddNumberToObject(d, "manual_score", x.manual);
  else
    cJSON_AddNullToObject(d, "manual_score");
  cJSON_AddNumberToObject(d, "score", x.score);
  cJSON_AddStringToObject(d, "counts", x.manual >= 0 ? "manual" : "generated");
  cJSON *terms = cJSON_AddArrayToObject(d, "terms");
  for (size_t i = 0; terms && i < x.n_terms; i++) {
    const tq_score_term *t = &x.terms[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", t->kind);
    if (strcmp(t->kind, "source") == 0 || strcmp(t->kind, "revoked") == 0)
      cJSON_AddStringToObject(o, "source", t->name);
    else if (t->name)
      cJSON_AddStringToObject(o, "attribute", t->name);
    if (t->value)
      cJSON_AddStringToObject(o, "value", t->value);
    if (strcmp(t->kind, "source") == 0) {
      cJSON_AddNumberToObject(o, "sensitivity", t->sensitivity);
      cJSON_AddBoolToObject(o, "counted", t->counted);
    }
    cJSON_AddNumberToObject(o, "delta", t->delta);
    cJSON_AddItemToArray(terms, o);
  }
  cJSON_AddNumberToObject(d, "source_max", x.source_max);
  cJSON_AddNumberToObject(d, "rules", x.rules);
  cJSON_AddNumberToObject(d, "revoked", -x.revoked);
  cJSON_AddNumberToObject(d, "unclamped", x.unclamped);
  cJSON_AddNumberToObject(d, "computed_score", x.generated);
  cJSON_AddBoolToObject(d, "current", x.generated == x.stored);
  tq_score_explain_free(&x);
  tq_resp_data(rs, 200, d);
}

#define RO TQ_ROLE_READONLY
const tq_route tq_routes_search[] = {
    {"GET", "/api/indicators", RO, api_indicators_list},
    {"POST", "/api/indicators/query", RO, api_indicators_query},
    {"GET", "/api/indicators/query/hash/{hash}", RO, api_query_hash},
    {"GET", "/api/indicators/{id}/score", RO, api_score},
    {"GET", "/api/search", RO, api_search},
    {"GET", "/api/search/query", RO, api_saved_list},
    {"POST", "/api/search/query", TQ_ROLE_ANALYST, api_saved_add},
    {"GET", "/api/search/query/{id}", RO, api_saved_get},
    {"DELETE", "/api/search/query/{id}", TQ_ROLE_ANALYST, api_saved_delete},
    {"PUT", "/api/search/query/{id}", TQ_ROLE_ANALYST, api_saved_update},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
