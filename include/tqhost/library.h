/* library.h: the threat library on embedded SQLite (WAL). ThreatQ's data model: objects
 * (indicators and others), indicator types with their class, statuses, sources with TLP,
 * score sensitivity and expiration policy, attributes with source and TLP, tags, links with
 * link attributes, generated and manual scores, expiration; data collections (saved queries)
 * read through keyset cursors; the HTTP response cache and plugin configuration.
 *
 * Ownership: every pointer a tq_lib_* function returns through an out-parameter is owned by
 * the caller and freed with the matching *_free function named beside it. Input pointers are
 * borrowed for the duration of the call only.
 *
 * Threads: one tq_lib handle per thread. Several processes may write the same file at once:
 * writes take the lock up front (BEGIN IMMEDIATE) and wait up to the busy timeout. */
#ifndef TQHOST_LIBRARY_H
#define TQHOST_LIBRARY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tqhost/core.h"

typedef struct tq_lib tq_lib;

/* ---- opening --------------------------------------------------------------------------- */

enum {
  TQ_LIB_OPEN_EXISTING = 0, /* the file must be a tqhost library already */
  TQ_LIB_OPEN_CREATE = 1,   /* create it (or an empty file) if needed, then migrate */
  TQ_LIB_OPEN_READONLY = 2, /* read only (also chosen when the file is not writable) */
};

/* Opens the library at path and brings its schema to the current version. A file that is not
 * an SQLite database, or an SQLite database that is not tqhost's, gets TQ_ECORRUPT and is
 * never written. A missing file without TQ_LIB_OPEN_CREATE gets TQ_ENOTFOUND; so does a
 * zero-length file (only TQ_LIB_OPEN_CREATE initialises one). A file this process may not
 * write is opened read only: reads work, writes fail with TQ_EDB naming the read-only file;
 * when its write-ahead log is absent and its folder is not writable either, it is read as
 * immutable (nobody can be writing it). */
tq_code tq_lib_open(const char *path, int flags, tq_lib **out, tq_err *err);
void tq_lib_close(tq_lib *lib);
int tq_lib_schema_version(tq_lib *lib);

/* Write transactions. Batches of writes go between begin and commit; commit also recomputes
 * the score and expiration of every object the batch touched. A begin inside an open
 * transaction is a savepoint: its commit releases it (only the outermost commit commits) and
 * its rollback undoes the writes since that begin alone, keeping the outer ones. */
tq_code tq_lib_begin(tq_lib *lib, tq_err *err);
tq_code tq_lib_commit(tq_lib *lib, tq_err *err);
void tq_lib_rollback(tq_lib *lib);

/* Checkpoints on a thread of their own while a long writer (feed poll, bulk run) commits
 * often: after a commit leaves at least frames frames in the WAL, a second connection copies
 * them back into the database (PASSIVE: never blocks the writer) while the writer goes on.
 * Replaces SQLite's automatic checkpoint in the committing thread until stop, which brings
 * that back. Stop before tq_lib_close. */
typedef struct tq_lib_checkpointer tq_lib_checkpointer;
tq_code tq_lib_checkpointer_start(tq_lib *lib, int frames, tq_lib_checkpointer **out, tq_err *err);
void tq_lib_checkpointer_stop(tq_lib_checkpointer *c);

/* ---- reference data -------------------------------------------------------------------- */

/* Statuses, with ThreatQ's ids. */
enum {
  TQ_STATUS_ACTIVE = 1,
  TQ_STATUS_EXPIRED,
  TQ_STATUS_INDIRECT,
  TQ_STATUS_REVIEW,
  TQ_STATUS_WHITELISTED
};
const char *tq_lib_status_name(int status);    /* "Active" ... ; NULL if unknown */
int tq_lib_status_from_name(const char *name); /* case-insensitive; 0 if unknown */

/* TLP ids as ThreatQ's: red 1, amber 2, green 3, white 4; 0 = none. */
const char *tq_lib_tlp_name(int tlp);    /* "red" ...; "" for 0 */
int tq_lib_tlp_from_name(const char *s); /* "red"/"TLP:RED"/"clear"(=white); -1 if unknown */

/* The canonical spelling of an indicator type name among ThreatQ's 34 (case-insensitive
 * match), or NULL. *class_out (may be NULL) gets "network" or "host". */
const char *tq_lib_indicator_type_canon(const char *name, const char **class_out);
/* The n-th of the 34 names (0-based), NULL past the end. */
const char *tq_lib_indicator_type_at(size_t i);
/* Whether name is one of the object types (indicator, adversary, malware, ...). */
int tq_lib_object_type_valid(const char *name);
/* The i-th object type (0-based; 0 past the end): its name ("attack_pattern"), display name
 * ("Attack Pattern"), ThreatQ's API collection ("attack_pattern") and a plural spelling
 * ("attack_patterns"; the collection when that is plural already). Out pointers may be NULL;
 * the strings are static. */
int tq_lib_object_type_info(size_t i, const char **name, const char **display,
                            const char **collection, const char **plural);
/* The object type whose collection or plural spelling is collection ("reports": "report"),
 * NULL if none. */
const char *tq_lib_object_type_by_collection(const char *collection);

/* ---- names ---------------------------------------------------------------------------------
 * Every name the library stores (tag, attribute name, source name, link type, collection
 * name) is refused when it holds a control character (C0 such as newline, tab or escape,
 * DEL, or a C1 control): TQ_EINVAL naming the field and showing the name escaped. Attribute
 * values and descriptions may hold newlines; outputs escape them (tq_str_escape). The write
 * functions below check their names themselves; this is for callers that want to check
 * earlier (field: "tag", "attribute name", ...). */
tq_code tq_lib_name_check(const char *field, const char *name, tq_err *err);

/* ---- sources ----------------------------------------------------------------------------- */

#define TQ_EXPIRE_NONE (-1)  /* source has no expiration policy */
#define TQ_EXPIRE_NEVER (-2) /* source says: never expire */
#define TQ_UNSET (-1000)     /* in tq_source_opts: leave as it is */

typedef struct tq_source {
  int64_t id;
  char name[128];
  char kind[16];        /* "user", "feed", "plugin" */
  int tlp;              /* 0..4 */
  int score;            /* score sensitivity 0..10 */
  int expire_days;      /* > 0 days, TQ_EXPIRE_NONE or TQ_EXPIRE_NEVER */
  int revoked_decrease; /* 0..10 */
  int64_t objects;      /* how many objects it reports (filled by list) */
} tq_source;

/* Fields to set; TQ_UNSET leaves one as it is (or at its default on creation). kind NULL
 * leaves it ("user" on creation). */
typedef struct tq_source_opts {
  const char *kind;
  int tlp;
  int score;
  int expire_days;
  int revoked_decrease;
} tq_source_opts;
void tq_source_opts_init(tq_source_opts *o);

/* Creates the source (TQ_EEXIST if it exists and must_create) or updates the given fields.
 * A change of score, expiration or revoked decrease recomputes every object of the source. */
tq_code tq_lib_source_put(tq_lib *lib, const char *name, const tq_source_opts *opts,
                          int must_create, int64_t *id_out, tq_err *err);
tq_code tq_lib_source_get(tq_lib *lib, const char *name, tq_source *out, tq_err *err);
/* The id of the source named name, created with kind (and default settings) when missing;
 * an existing source is left as it is. Cheap: names are cached per handle. */
tq_code tq_lib_source_ensure(tq_lib *lib, const char *name, const char *kind, int64_t *id_out,
                             tq_err *err);
/* All sources, ordered by name. *out is malloc'd (free()). */
tq_code tq_lib_source_list(tq_lib *lib, tq_source **out, size_t *n, tq_err *err);

/* ---- writing objects --------------------------------------------------------------------- */

typedef struct tq_attr_in {
  const char *name;
  const char *value;
  const char *source; /* NULL: the object's first source */
  int tlp;            /* 0: the source's TLP */
} tq_attr_in;

/* One object to create or merge. Indicators are unique by (indicator type, canonical value);
 * other objects by (object type, value). */
/* The largest texts the library stores, in bytes; a longer one gets TQ_EINVAL naming the
 * field and the limit. Every text it stores must also be well-formed UTF-8 (TQ_EINVAL names
 * the field and the byte offset otherwise), whichever entry point hands it over. */
enum {
  TQ_LIB_MAX_VALUE = 65536,        /* an object's value */
  TQ_LIB_MAX_DESCRIPTION = 262144, /* an object's description */
  TQ_LIB_MAX_ATTR_NAME = 256,      /* an attribute's name */
  TQ_LIB_MAX_ATTR_VALUE = 65536,   /* an attribute's value */
  TQ_LIB_MAX_NAME = 1024,          /* a source, a tag, a link type */
};

typedef struct tq_object_in {
  const char *object_type;    /* NULL or "indicator" for indicators */
  const char *indicator_type; /* NULL: detected from the value (indicators only) */
  const char *value;
  const char *status;         /* NULL: Active for new objects, unchanged for existing */
  const char *description;    /* NULL: unchanged */
  const char *const *sources; /* names; created as kind "user" when unknown */
  size_t n_sources;
  const tq_attr_in *attrs;
  size_t n_attrs;
  const char *const *tags;
  size_t n_tags;
  int64_t published_at; /* 0: now */
  int64_t reported_at;  /* when the sources reported it (expiration base); 0: now */
  int source_tlp;       /* TLP 1..4 the sources give the object (kept on each object-source
                           row); 0: leave the rows' TLP as it is */
} tq_object_in;

/* Creates or merges one object (inside the caller's transaction if one is open, else in its
 * own). *id_out (may be NULL) gets its id, *created (may be NULL) whether it is new.
 * TQ_EINVAL names the reason for a bad value or type. */
tq_code tq_lib_object_put(tq_lib *lib, const tq_object_in *in, int64_t *id_out, int *created,
                          tq_err *err);

/* Adds one attribute to an existing object (merged if the same name/value/source exists). */
tq_code tq_lib_attribute_add(tq_lib *lib, int64_t object_id, const tq_attr_in *attr, tq_err *err);
tq_code tq_lib_tag_add(tq_lib *lib, int64_t object_id, const char *tag, tq_err *err);
/* Adds attributes and tags to an existing object in one go (multi-row inserts): what an
 * enrichment writes. An attribute without a source gets the source "tqhost". */
tq_code tq_lib_annotate(tq_lib *lib, int64_t object_id, const tq_attr_in *attrs, size_t n_attrs,
                        const char *const *tags, size_t n_tags, tq_err *err);
/* Links two objects (unordered; once per pair and source). link_type (may be NULL) is kept as
 * the link attribute "type" (e.g. a STIX relationship type). */
tq_code tq_lib_link(tq_lib *lib, int64_t a, int64_t b, const char *source, const char *link_type,
                    tq_err *err);
tq_code tq_lib_status_set(tq_lib *lib, int64_t object_id, int status, tq_err *err);
/* Manual score 0..10, or -1 to revert to the generated score. */
tq_code tq_lib_score_set(tq_lib *lib, int64_t object_id, int manual, tq_err *err);
/* Per-indicator expiration exception: a date (Unix s), TQ_EXPIRE_NEVER, or TQ_EXPIRE_NONE to
 * remove the exception. */
tq_code tq_lib_expire_exception_set(tq_lib *lib, int64_t object_id, int64_t when, tq_err *err);
/* Adds an attribute score rule: an attribute name (and value, NULL = any) adds delta. */
tq_code tq_lib_score_rule_put(tq_lib *lib, const char *name, const char *value, double delta,
                              tq_err *err);
/* Moves every indicator whose expiration date is due (<= now) and whose status is not
 * Expired or Whitelisted to Expired. *n_out gets how many. */
tq_code tq_lib_expire_due(tq_lib *lib, int64_t now, int64_t *n_out, tq_err *err);

/* ---- reading objects --------------------------------------------------------------------- */

typedef struct tq_attr {
  char *name;
  char *value;
  char *source;
  int tlp;
  int64_t id;        /* the attribute row's id (its handle in the API) */
  int64_t source_id; /* the id of source */
} tq_attr;

typedef struct tq_link {
  int64_t id;
  int64_t other_id;
  char *other_type; /* object type */
  char *other_value;
  char *other_indicator_type; /* NULL unless an indicator */
  char *link_type;            /* NULL if none */
  char *source;
} tq_link;

typedef struct tq_object {
  int64_t id;
  char *object_type;
  char *indicator_type; /* NULL for non-indicators */
  char *indicator_class;
  char *value;
  char *description;
  int status;
  double score_generated; /* 0..10 */
  int score_manual;       /* -1: none */
  int score;              /* what counts: manual if set, else floor(generated) */
  int64_t published_at, created_at, updated_at;
  int64_t expires_at;       /* 0: never / no policy */
  int64_t expire_exception; /* 0 none, TQ_EXPIRE_NEVER, or a date */
  char **sources;
  size_t n_sources;
  tq_attr *attrs;
  size_t n_attrs;
  char **tags;
  size_t n_tags;
  tq_link *links;
  size_t n_links;
  int64_t *source_ids; /* n_sources ids of sources[] (tq_lib_object_get only; else NULL) */
  int *source_tlps;    /* n_sources TLPs the sources give the object (0: the source's) */
  int64_t *tag_ids;    /* n_tags ids of tags[] (tq_lib_object_get only; else NULL) */
} tq_object;

/* Reads one object with its sources, attributes, tags and links. */
tq_code tq_lib_object_get(tq_lib *lib, int64_t id, tq_object **out, tq_err *err);
/* The same reading only the parts given besides the object's own row (the others stay
 * empty, their counts 0): for a reader that shows a few of them (the API's with=). */
enum {
  TQ_LIB_PART_SOURCES = 1 << 0,
  TQ_LIB_PART_ATTRS = 1 << 1,
  TQ_LIB_PART_TAGS = 1 << 2,
  TQ_LIB_PART_LINKS = 1 << 3,
  TQ_LIB_PART_ALL = 0xf
};
tq_code tq_lib_object_get_parts(tq_lib *lib, int64_t id, unsigned parts, tq_object **out,
                                tq_err *err);
void tq_object_free(tq_object *obj);
/* Finds an object by type and value. For indicators (object_type NULL or "indicator") the
 * value is normalised first and indicator_type may be NULL (detected). TQ_ENOTFOUND when
 * absent. */
tq_code tq_lib_object_find(tq_lib *lib, const char *object_type, const char *indicator_type,
                           const char *value, int64_t *id_out, tq_err *err);
/* Counts of objects per type / indicators per status, for summaries. */
tq_code tq_lib_count(tq_lib *lib, const char *object_type, int64_t *n, tq_err *err);

/* ---- data collections (saved queries) and cursors ------------------------------------------ */

typedef struct tq_query {
  char *object_type;      /* NULL: "indicator" */
  char **indicator_types; /* any of these (canonical names); n = 0: any */
  size_t n_indicator_types;
  int *statuses; /* any of these; n = 0: any */
  size_t n_statuses;
  int score_min; /* -1: no bound */
  int score_max; /* -1: no bound */
  char *source;  /* reported by this source */
  char *tag;
  char *attr_name;       /* has an attribute of this name ... */
  char *attr_value;      /* ... with this value (NULL: any) */
  int64_t updated_since; /* 0: no bound */
  char *criteria;        /* a criteria document (JSON text, see tq_criteria_compile) ANDed with the
                            fields above; NULL: none. Owned (tq_query_free). */
} tq_query;

void tq_query_init(tq_query *q);
void tq_query_free(tq_query *q); /* frees the members, not q */
/* The query as JSON text (malloc'd) and back; parse errors name the field. */
char *tq_query_to_json(const tq_query *q);
tq_code tq_query_from_json(const char *json, tq_query *q, tq_err *err);
/* Checks names (types, statuses, sources) so that a typo is an error, not an empty result. */
tq_code tq_query_validate(tq_lib *lib, const tq_query *q, tq_err *err);

tq_code tq_lib_collection_put(tq_lib *lib, const char *name, const tq_query *q, int must_create,
                              tq_err *err);
tq_code tq_lib_collection_get(tq_lib *lib, const char *name, tq_query *q, tq_err *err);
tq_code tq_lib_collection_delete(tq_lib *lib, const char *name, tq_err *err);
/* Names of all collections (malloc'd array of malloc'd strings; free each and the array). */
tq_code tq_lib_collection_list(tq_lib *lib, char ***names, size_t *n, tq_err *err);

/* Collections as rows, with the id (stable while the collection exists) that the API names
 * them by: one (id > 0; TQ_ENOTFOUND when absent) or all (id 0), by id. *rows malloc'd and
 * freed with tq_collection_rows_free. */
typedef struct tq_collection_row {
  int64_t id;
  char *name;
  char *query; /* tq_query_to_json's text */
  int64_t created_at, updated_at;
} tq_collection_row;
tq_code tq_lib_collection_rows(tq_lib *lib, int64_t id, tq_collection_row **rows, size_t *n,
                               tq_err *err);
void tq_collection_rows_free(tq_collection_row *rows, size_t n);
/* uicoll: edits collection id in place: its name (NULL: kept) and/or its query (NULL: kept);
 * the id stays, so whatever runs over the collection by name or id sees the new query next
 * time. The same checks as tq_lib_collection_put (name, query validated); TQ_ENOTFOUND for an
 * unknown id, TQ_EEXIST when another collection has the name; nothing written on error. The
 * caller holds the write transaction. name and q stay the caller's. */
tq_code tq_lib_collection_update(tq_lib *lib, int64_t id, const char *name, const tq_query *q,
                                 tq_err *err);
/* uicoll: the count of a collection's query (query_json: a tq_collection_row's query) capped
 * at cap rows (cap > 0): *n is min(matches, cap) and *capped 1 when there are more, so a list
 * of collections over a large library costs at most cap rows each. deadline_ms (a tq_mono_ms
 * time; 0: none) bounds it in time too: TQ_ETIMEOUT when it passes first (or has passed). */
enum { TQ_COLLECTION_COUNT_CAP = 100000 };
tq_code tq_lib_collection_count(tq_lib *lib, const char *query_json, int64_t cap,
                                int64_t deadline_ms, int64_t *n, int *capped, tq_err *err);

/* A keyset cursor: ids in ascending order, one page at a time, never the whole result. */
typedef struct tq_cursor tq_cursor;
/* after_id: start after this id (0 = from the start); used to resume a walk. */
tq_code tq_lib_cursor_open(tq_lib *lib, const tq_query *q, int64_t after_id, tq_cursor **out,
                           tq_err *err);
/* Fills ids[0..*n) with up to max next ids; *n = 0 at the end. */
tq_code tq_lib_cursor_next(tq_cursor *c, int64_t *ids, size_t max, size_t *n, tq_err *err);
void tq_lib_cursor_close(tq_cursor *c);
/* How many objects the query matches (a full count; for progress totals). */
tq_code tq_lib_query_count(tq_lib *lib, const tq_query *q, int64_t *n, tq_err *err);

/* The generated score of one object explained (score.c), with the same terms and the same
 * combination the recompute uses: the most sensitive source, each attribute score rule met,
 * each Revoked decrease, and the clamp to 0..10 when it bites. The deltas of the counted terms
 * add up to generated; stored is what the library holds (equal unless a recompute is due). */
typedef struct tq_score_term {
  char kind[16];   /* "source", "attribute" (a rule on the name), "attribute_value" (name and
                      value), "revoked", "clamp" */
  char *name;      /* source or attribute name (owned; NULL for clamp) */
  char *value;     /* the attribute's value (owned; NULL unless an attribute rule) */
  double delta;    /* what it adds (negative: takes away) */
  int counted;     /* 0: a source listed but not the most sensitive (delta 0) */
  int sensitivity; /* sources: the source's score sensitivity */
} tq_score_term;
typedef struct tq_score_explain {
  int64_t id;
  double source_max, rules, revoked; /* the three sums */
  double unclamped, generated;       /* source_max + rules - revoked, and clamped */
  double stored;                     /* the stored generated score */
  int manual;                        /* -1: none (it overrides when set) */
  int score;                         /* what counts */
  tq_score_term *terms;              /* owned (tq_score_explain_free) */
  size_t n_terms;
} tq_score_explain;
tq_code tq_lib_score_explain(tq_lib *lib, int64_t id, tq_score_explain *out, tq_err *err);
void tq_score_explain_free(tq_score_explain *x);

/* ---- criteria (criteria.c) -------------------------------------------------------------------
 * ThreatQ's criteria/filters language ({"criteria": {...}, "filters": {...}, "fields": [...]})
 * compiled to one SQL boolean expression over the objects table (alias o) with bound
 * parameters; docs/api.md describes the fields and operators. A document too big, too deep,
 * with too many conditions, an unknown field or operator or a wrong type is TQ_EINVAL whose
 * message starts with the JSON path of the fault, also copied to where ("filters.+or[1].score"). */
typedef struct tq_criteria tq_criteria;
enum {
  TQ_CRITERIA_MAX_BYTES = 65536, /* the document's size */
  TQ_CRITERIA_MAX_DEPTH = 12,    /* nested +and/+or levels */
  TQ_CRITERIA_MAX_TERMS = 200,   /* conditions in the whole document */
  TQ_CRITERIA_MAX_LIST = 100,    /* values in one list */
  TQ_CRITERIA_MAX_STRING = 4096, /* bytes of one string */
  TQ_CRITERIA_MAX_PAGE = 1000,   /* ids one page returns at most */
};
/* *out is owned by the caller (tq_criteria_free); where may be NULL. */
tq_code tq_criteria_compile(const char *json, size_t len, tq_criteria **out, char *where,
                            size_t where_len, tq_err *err);
void tq_criteria_free(tq_criteria *c);
/* The expression (borrowed from c) and its parameters: one '?' per parameter, bound in order
 * from first; returns the number after the last one bound. */
const char *tq_criteria_sql(const tq_criteria *c);
struct sqlite3_stmt;
int tq_criteria_bind(const tq_criteria *c, struct sqlite3_stmt *st, int first);
size_t tq_criteria_params(const tq_criteria *c);
/* The document with its keys sorted and no blanks ("fields" left out): two documents that
 * differ only in key order or spacing have the same text (borrowed from c). */
const char *tq_criteria_canonical(const tq_criteria *c);
/* One page of the ids of objects of object_type (NULL: indicators) matching c: sorted by sort
 * ("id", "-score", "value", "updated_at", ...; NULL: id), after after_id (> 0: keyset, id order
 * only), at most limit (clamped to TQ_CRITERIA_MAX_PAGE) from offset. *ids malloc'd (free());
 * *total (may be NULL: not counted) gets the full count. An unknown sort is TQ_EINVAL
 * starting "sort:". */
tq_code tq_lib_criteria_ids(tq_lib *lib, const tq_criteria *c, const char *object_type,
                            const char *sort, int64_t after_id, int64_t limit, int64_t offset,
                            int64_t **ids, size_t *n, int64_t *total, tq_err *err);
/* Objects of any type whose value (an indicator's value, another object's name or title)
 * contains text (every character literal, ASCII case-insensitive): exact matches first, then
 * prefixes, then by id; at most limit. *ids malloc'd (free()). */
tq_code tq_lib_keyword_ids(tq_lib *lib, const char *text, int64_t limit, int64_t **ids, size_t *n,
                           tq_err *err);

/* ---- HTTP response cache ------------------------------------------------------------------- */

/* Looks key up; TQ_ENOTFOUND when absent or expired at now. *body is malloc'd (free()). */
tq_code tq_lib_cache_get(tq_lib *lib, const char *key, int64_t now, int *status, char **body,
                         size_t *len, tq_err *err);
/* One response to store (borrowed strings). */
typedef struct tq_lib_cache_row {
  const char *key;
  int status;
  const char *body;
  size_t len;
  int64_t expires_at;
} tq_lib_cache_row;
/* What a purge keeps: rows not expired at now, at most max_rows of them and max_bytes of
 * bodies; past a cap, the rows that expire first go. */
typedef struct tq_lib_cache_caps {
  int64_t now;
  int64_t max_rows;
  int64_t max_bytes;
} tq_lib_cache_caps;
/* Stores n rows (replacing rows of the same key) and then, when caps is non-NULL, purges the
 * table to them; one transaction, nested in the caller's when one is open (a failure then is
 * the caller's to roll back). *purged (may be NULL) gets how many rows the purge deleted. */
tq_code tq_lib_cache_put(tq_lib *lib, const tq_lib_cache_row *rows, size_t n,
                         const tq_lib_cache_caps *caps, int64_t *purged, tq_err *err);

/* ---- key/value settings (plugin configuration, feed state) -------------------------------- */

/* A value per (scope, key); secret values are stored encrypted by the caller's choice of
 * API above this one (the plugin part); this layer stores bytes. */
tq_code tq_lib_setting_put(tq_lib *lib, const char *scope, const char *key, const char *value,
                           int secret, tq_err *err);
/* TQ_ENOTFOUND when absent; *value malloc'd. *secret (may be NULL) gets the flag. */
tq_code tq_lib_setting_get(tq_lib *lib, const char *scope, const char *key, char **value,
                           int *secret, tq_err *err);

/* The raw SQLite handle, for parts that keep their own tables (runs, feed_state) through
 * migrations registered here. Borrowed: valid until tq_lib_close. Rows the library has queued
 * (see tq_lib_rows) are written before it is returned, so a raw read sees them; a statement
 * prepared earlier and stepped later does not trigger that. */
struct sqlite3 *tq_lib_db(tq_lib *lib);
/* A statement on this connection cached by the address of its SQL text, which must be a string
 * literal (the same address on every call): prepared on first use, reset with its bindings
 * cleared on each call; for the reads a part repeats on its own tables per request (the
 * server's token check). Borrowed, owned by lib: valid until tq_lib_close, never finalized by
 * the caller, who resets it (sqlite3_reset) when done so that no read transaction stays open.
 * NULL with err when it cannot be prepared (a missing table...). */
struct sqlite3_stmt *tq_lib_stmt(tq_lib *lib, const char *sql, tq_err *err);

/* ---- a part's own tables ---------------------------------------------------------------------
 * A part above the library (feed/, workflow/, server/) owns its tables: it lists their
 * migrations (SQL texts, in order) beside its code and calls tq_lib_part_migrate on a
 * writable handle before it uses them (cheap once current). Each step runs in its own
 * transaction together with the part's level in table tq_parts; a level newer than the part
 * knows is TQ_ECORRUPT, never touched. Errors name the library, the part and the step. */
typedef struct tq_lib_part {
  const char *name; /* "feed", "workflow", "server" */
  const char *const *migrations;
  int n_migrations;
} tq_lib_part;
tq_code tq_lib_part_migrate(tq_lib *lib, const tq_lib_part *part, tq_err *err);
/* The part's level in this library: 0 when its tables were never made. */
int tq_lib_part_version(tq_lib *lib, const char *name);
/* ---- rows from C memory ----------------------------------------------------------------------
 * A statement reads rows held in C memory as the table-valued function tq_rows(?N), columns
 * c0..c7 (as many as the rows have; the others NULL): one INSERT ... SELECT FROM tq_rows(?1)
 * writes a whole batch, one SELECT ... JOIN tq_rows(?1) looks a whole batch up. A cell is
 * text (borrowed: it must outlive the statement's steps) or, when text is NULL, an integer.
 * The library queues its own batched writes the same way (rows.c). */
typedef struct tq_lib_cell {
  const char *text;
  int64_t i;
} tq_lib_cell;
typedef struct tq_lib_rows {
  tq_lib_cell *cells; /* n rows of ncol cells */
  size_t n, cap;
  int ncol; /* set before the first add; at most 8 */
} tq_lib_rows;
/* Appends one row of ncol cells (copied; texts stay borrowed). */
tq_code tq_lib_rows_add(tq_lib_rows *r, const tq_lib_cell *row, tq_err *err);
void tq_lib_rows_free(tq_lib_rows *r);
/* Binds r to parameter param of a statement of this library's connection (SQLITE_OK...). */
struct sqlite3_stmt;
int tq_lib_rows_bind(struct sqlite3_stmt *st, int param, const tq_lib_rows *r);

/* ---- object rows for the bulk runner (batch.c) ----------------------------------------------
 * What the bulk runner needs per object, at a few thousand objects a second. */

/* The object's own row only: no sources, attributes, tags or links (their counts are 0). One
 * cached statement; TQ_ENOTFOUND when there is no such object. Free with tq_object_free. */
tq_code tq_lib_object_head(tq_lib *lib, int64_t id, tq_object **out, tq_err *err);
/* The same for up to TQ_LIB_HEADS_MAX ids, sorted ascending, in one statement: out[i] gets the
 * object of ids[i], NULL when there is none. On error every out[i] is NULL. */
#define TQ_LIB_HEADS_MAX 64
tq_code tq_lib_object_heads(tq_lib *lib, const int64_t *ids, size_t n, tq_object **out,
                            tq_err *err);

/* ---- writing many objects (writer.c) --------------------------------------------------------
 * The one batching of bulk writes (tq_lib_import, the service's consume): objects are put in
 * transactions of per_tx objects (0: one transaction until close). A put refused for its
 * content (TQ_EINVAL; counted in refused) writes nothing of that object and the writer goes
 * on; any other failure rolls the open transaction back (committed batches stay) and the
 * writer refuses further puts. Close commits the open transaction (commit != 0) or rolls it
 * back, and frees the writer. */
typedef struct tq_lib_writer tq_lib_writer;
typedef struct tq_lib_writer_stats {
  long added, merged, refused;
  long committed; /* objects in transactions committed so far (not counting close's) */
} tq_lib_writer_stats;
tq_code tq_lib_writer_open(tq_lib *lib, size_t per_tx, tq_lib_writer **out, tq_err *err);
/* *id, *created and *value (the value as stored, canonical; malloc'd) may be NULL. */
tq_code tq_lib_writer_put(tq_lib_writer *w, const tq_object_in *in, int64_t *id, int *created,
                          char **value, tq_err *err);
const tq_lib_writer_stats *tq_lib_writer_stats_get(const tq_lib_writer *w);
tq_code tq_lib_writer_close(tq_lib_writer *w, int commit, tq_err *err);

/* ---- changing one object (edit.c) --------------------------------------------------------------
 * Each runs in the caller's transaction when one is open, else in its own; the object's score
 * and expiration are recomputed at commit. An unknown object is TQ_ENOTFOUND. */
typedef struct tq_object_edit {
  const char *value;          /* NULL: unchanged; a new identity (TQ_EEXIST if taken) */
  const char *indicator_type; /* NULL: unchanged (indicators only) */
  const char *status;         /* NULL: unchanged */
  const char *description;    /* NULL: unchanged */
} tq_object_edit;
void tq_object_edit_init(tq_object_edit *e);
tq_code tq_lib_object_edit(tq_lib *lib, int64_t id, const tq_object_edit *e, tq_err *err);
/* Deletes the object with its attributes, sources, tags and links. */
tq_code tq_lib_object_delete(tq_lib *lib, int64_t id, tq_err *err);
/* One attribute row (tq_attr.id): a new value (NULL: unchanged), source (NULL: unchanged),
 * tlp (-1: unchanged). TQ_ENOTFOUND when the object has no such row; TQ_EEXIST when the
 * change makes it a duplicate of another row. */
tq_code tq_lib_attribute_edit(tq_lib *lib, int64_t object_id, int64_t attr_id, const char *value,
                              const char *source, int tlp, tq_err *err);
tq_code tq_lib_attribute_delete(tq_lib *lib, int64_t object_id, int64_t attr_id, tq_err *err);
/* Adds the source named name (created as kind "user" when unknown) to the object, with the
 * TLP it gives the object (0: the source's). */
tq_code tq_lib_object_source_add(tq_lib *lib, int64_t object_id, const char *name, int tlp,
                                 tq_err *err);
tq_code tq_lib_object_source_remove(tq_lib *lib, int64_t object_id, int64_t source_id, tq_err *err);
tq_code tq_lib_tag_remove(tq_lib *lib, int64_t object_id, int64_t tag_id, tq_err *err);
/* A page of the ids of objects of type (ascending), optionally whose value is value ('%' in
 * it is a wildcard for any text; '_' and '\' match themselves), and how many match in all.
 * *ids is malloc'd (free()). */
tq_code tq_lib_object_page(tq_lib *lib, const char *type, const char *value, int64_t limit,
                           int64_t offset, int64_t **ids, size_t *n, int64_t *total, tq_err *err);

/* ---- import ---------------------------------------------------------------------------- */

enum { TQ_IMPORT_BATCH_ROWS = 50000 }; /* rows written per transaction */

typedef struct tq_import_opts {
  const char *path;                   /* named in reports */
  const char *source, *status, *type; /* for rows that name none (source: "Analyst") */
  /* Called for each refused row with the line where it began and why; may be NULL. */
  void (*on_bad)(void *ud, const char *path, long line, const char *why);
  void *ud;
} tq_import_opts;

typedef struct tq_import_stats {
  long rows, added, merged, bad;
  long line; /* lines read */
} tq_import_stats;

/* Imports indicators from f: one value a line ('#' starts a comment), or CSV whose header
 * names a 'value' column and optionally type, source, status, description and tags (';'
 * separated); every other column is an attribute of that name. A row is refused (reported,
 * counted in bad) for a NUL byte or invalid UTF-8 in any cell (naming the column), more cells
 * than the header, or anything tq_lib_object_put refuses; a quote left open at the end of
 * the file refuses its row (the rows before it are imported). Good rows are written in
 * transactions of TQ_IMPORT_BATCH_ROWS. Returns TQ_OK unless the database or the stream
 * failed: then the current batch is rolled back (earlier ones stay) and err says why. */
tq_code tq_lib_import(tq_lib *lib, FILE *f, const tq_import_opts *o, tq_import_stats *st,
                      tq_err *err);

#endif
