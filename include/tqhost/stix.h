/* stix.h: STIX 2.1 for tqhost: timestamps as instants, identifiers (UUIDv4, UUIDv5, SCO ids
 * from canonical JSON), objects parsed and checked from TAXII envelopes and bundles, and the
 * STIX patterning language (parser, observable extraction, ThreatQ indicator types).
 * Uses cJSON for JSON and OpenSSL's libcrypto for SHA-1. Nothing here does I/O. */
#ifndef TQHOST_STIX_H
#define TQHOST_STIX_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tqhost/core.h"

/* ---- timestamps ------------------------------------------------------------------------
 * An instant: seconds since the Unix epoch (UTC) plus nanoseconds 0..999999999. Two texts
 * that name the same instant ("...00.1Z", "...00.100000Z", "...02:00:00.1+02:00") compare
 * equal. */
typedef struct tq_stix_time {
  int64_t seconds;
  int32_t nanos;
} tq_stix_time;

/* Bytes needed by tq_stix_time_format (with the NUL). */
#define TQ_STIX_TIME_LEN 32

/* Parses a STIX timestamp leniently: "YYYY-MM-DDTHH:MM:SS", an optional fraction of any number
 * of digits (beyond 9 digits it is truncated to nanoseconds), then "Z", "+HH:MM", "-HH:MM",
 * "+HHMM" or nothing (taken as UTC); 't'/' ' for 'T' and 'z' for 'Z' are accepted. Seconds may
 * be 60 (a leap second). TQ_EINVAL names the text and what is wrong. */
tq_code tq_stix_time_parse(const char *s, tq_stix_time *out, tq_err *err);
/* <0, 0, >0 as a is before, the same instant as, or after b. */
int tq_stix_time_cmp(tq_stix_time a, tq_stix_time b);
/* Writes "YYYY-MM-DDTHH:MM:SS.sssZ" with 3, 6 or 9 fractional digits (the fewest that keep
 * the instant exact; STIX wants at least milliseconds). */
void tq_stix_time_format(tq_stix_time t, char out[TQ_STIX_TIME_LEN]);

/* ---- identifiers -----------------------------------------------------------------------
 * An id is "<type>--<UUID>"; type is 3..250 of [a-z0-9-] (no "--"), so an id fits in
 * TQ_STIX_ID_MAX bytes with its NUL. */
#define TQ_STIX_ID_MAX 290

/* The namespace of SCO ids (STIX 2.1 section 2.9): 00abedb4-aa42-466c-9c01-fed23315a9b7. */
extern const uint8_t tq_stix_sco_namespace[16];
/* The namespace of ids that tqhost mints for objects it creates (UUIDv5 of the DNS name
 * "stix.tqhost" in the RFC 4122 DNS namespace): 852f223f-b206-542d-aaa8-063b22e00cf6. */
extern const uint8_t tq_stix_tqhost_namespace[16];

/* Checks that id is "<type>--<UUID>" (any UUID version, hex of either case); when type is
 * non-NULL the prefix must equal it. TQ_EINVAL says what is wrong. */
tq_code tq_stix_id_check(const char *id, const char *type, tq_err *err);
/* "<type>--<random UUIDv4>" (getrandom). */
tq_code tq_stix_id_random(const char *type, char out[TQ_STIX_ID_MAX], tq_err *err);
/* "<type>--<UUIDv5(ns, name[0..len))>". */
tq_code tq_stix_id_v5(const char *type, const uint8_t ns[16], const void *name, size_t len,
                      char out[TQ_STIX_ID_MAX], tq_err *err);
/* A deterministic id for an object tqhost creates: UUIDv5 in tq_stix_tqhost_namespace of
 * name (e.g. "report:<source>:<title>"). */
tq_code tq_stix_id_tqhost(const char *type, const char *name, char out[TQ_STIX_ID_MAX],
                          tq_err *err);
/* The id an SCO should have (STIX 2.1 section 2.9): UUIDv5 in the SCO namespace of the RFC 8785
 * canonical JSON of the type's ID Contributing Properties (for "hashes" only one hash, in the
 * order MD5, SHA-1, SHA-256, SHA-512, else the first); a UUIDv4 when none is present or the
 * type has none (process, unknown types). sco must have a string "type". */
tq_code tq_stix_id_sco(const cJSON *sco, char out[TQ_STIX_ID_MAX], tq_err *err);
/* Shortcut for the common one-property SCOs: the id of {"type": type, prop: value}, e.g.
 * ("domain-name", "value", "example.com") -> "domain-name--bedb4899-d24b-5401-bc86-...". */
tq_code tq_stix_id_sco_value(const char *type, const char *prop, const char *value,
                             char out[TQ_STIX_ID_MAX], tq_err *err);
/* Appends the RFC 8785 (JCS) canonical JSON of v to out: object members sorted by name,
 * no white space, minimal string escapes, numbers in their shortest round-trip form. */
tq_code tq_stix_json_canonical(const cJSON *v, tq_buf *out, tq_err *err);

/* ---- objects ---------------------------------------------------------------------------- */
typedef enum tq_stix_kind {
  TQ_STIX_SDO,   /* domain objects: indicator, malware, report, ... */
  TQ_STIX_SRO,   /* relationship, sighting */
  TQ_STIX_SCO,   /* cyber observables: ipv4-addr, file, ... */
  TQ_STIX_META,  /* marking-definition, language-content, extension-definition */
  TQ_STIX_CUSTOM /* any other type (x-mitre-tactic, ...): only type and id are required */
} tq_stix_kind;

/* A list of strings borrowed from the object's JSON. */
typedef struct tq_stix_strs {
  size_t n;
  const char **v;
} tq_stix_strs;

typedef struct tq_stix_extref {
  const char *source_name; /* never NULL */
  const char *external_id, *url, *description;
} tq_stix_extref;

typedef struct tq_stix_kcp {
  const char *kill_chain_name, *phase_name; /* never NULL */
} tq_stix_kcp;

/* One parsed and checked object. Every string points into json, which the object borrows:
 * it stays valid while the cJSON tree does (for a page, until tq_stix_page_free). Absent
 * properties are NULL, empty lists, or has_* = 0. Anything not listed here (x_ properties,
 * extensions, per-type properties) is read from json. */
typedef struct tq_stix_object {
  const cJSON *json;
  tq_stix_kind kind;
  const char *type, *id, *spec_version, *created_by_ref;
  int has_created, has_modified;
  tq_stix_time created, modified;
  int revoked;    /* 0 when absent */
  int confidence; /* -1 when absent, else 0..100 */
  tq_stix_strs labels, object_marking_refs;
  size_t n_external_references;
  tq_stix_extref *external_references;
  size_t n_kill_chain_phases;
  tq_stix_kcp *kill_chain_phases;
  const char *name, *description;
  tq_stix_strs aliases;
  tq_stix_strs types; /* "<type>_types": indicator_types, malware_types, report_types, ... */
  /* indicator */
  const char *pattern, *pattern_type, *pattern_version;
  int has_valid_from, has_valid_until;
  tq_stix_time valid_from, valid_until;
  /* malware: 1, 0, or -1 when absent (tolerated: the JSON schema requires it, the spec
   * text prints it optional) */
  int is_family;
  /* report */
  int has_published;
  tq_stix_time published;
  tq_stix_strs object_refs; /* report, grouping, note, opinion, observed-data */
  /* relationship, sighting */
  const char *relationship_type, *source_ref, *target_ref, *sighting_of_ref;
  int has_first_seen, has_last_seen;
  tq_stix_time first_seen, last_seen;
  /* An SCO's main value: "name" of mutex, file and software, "path" of directory, "key" of
   * windows-registry-key, else "value" (ipv4-addr, domain-name, url, ...); NULL if absent */
  const char *value;
} tq_stix_object;

/* Parses and checks one object (the required properties of its type, the form of its id,
 * its timestamps and list properties). json is borrowed and must outlive out. On failure out
 * holds nothing to free and err says "<id>: <property>: <what>", e.g.
 * "indicator--1b0e...: 'pattern': required property is missing". */
tq_code tq_stix_object_parse(const cJSON *json, tq_stix_object *out, tq_err *err);
/* Frees what tq_stix_object_parse allocated (not json). Safe on a zeroed object. */
void tq_stix_object_clear(tq_stix_object *obj);

/* One object of a page that failed its checks. */
typedef struct tq_stix_bad_object {
  size_t index;      /* position in the "objects" list, 0-based */
  const char *id;    /* its "id" when it had a string one, else NULL (borrowed) */
  const char *type;  /* its "type" when it had a string one, else NULL (borrowed) */
  char message[400]; /* "object 3 (indicator--...): 'valid_from': required property is missing" */
} tq_stix_bad_object;

/* A TAXII envelope ({"objects": [...], "more": b, "next": "..."}) or a bundle
 * ({"type": "bundle", "id": ..., "objects": [...]}), parsed. The page owns root; objects and
 * bad hold the objects in their original order, split into good and bad. */
typedef struct tq_stix_page {
  cJSON *root;
  int is_bundle;
  int more;         /* envelope "more" (0 when absent) */
  const char *next; /* envelope "next" (NULL when absent) */
  size_t n_objects;
  tq_stix_object *objects;
  size_t n_bad;
  tq_stix_bad_object *bad;
} tq_stix_page;

/* Parses text[0..len) as an envelope or a bundle. A malformed object does not fail the page:
 * it goes to bad with its index, id and the property at fault. Fails (TQ_EINVAL) only when
 * the text is not JSON (with the byte offset), not an object, or "objects" is not a list.
 * At most max_objects objects are read (0 = no limit); more is TQ_ELIMIT. */
tq_code tq_stix_page_parse(const char *text, size_t len, size_t max_objects, tq_stix_page *out,
                           tq_err *err);
void tq_stix_page_free(tq_stix_page *page);

/* The TLP level named by a standard marking-definition id (TLP 1.0 and 2.0, spec section
 * 7.2): "TLP:WHITE", "TLP:GREEN", "TLP:AMBER", "TLP:RED", "TLP:CLEAR", "TLP:AMBER+STRICT";
 * NULL for any other id. */
const char *tq_stix_tlp_from_marking_ref(const char *id);

/* ---- patterns ----------------------------------------------------------------------------
 * The STIX 2.1 patterning language (STIXPattern.g4). A parsed pattern is a tree of nodes
 * allocated in one arena that the pattern owns; every pointer below lives until
 * tq_stix_pattern_free. */

/* The deepest nesting of parentheses and brackets a pattern may have. */
#define TQ_STIX_PATTERN_MAX_DEPTH 64

typedef enum tq_stix_lit_kind {
  TQ_STIX_LIT_STRING,
  TQ_STIX_LIT_INT,
  TQ_STIX_LIT_FLOAT,
  TQ_STIX_LIT_BOOL,
  TQ_STIX_LIT_HEX,      /* h'..': text is the hex digits */
  TQ_STIX_LIT_BINARY,   /* b'..': text is the base64 */
  TQ_STIX_LIT_TIMESTAMP /* t'..': text is the timestamp, t the instant */
} tq_stix_lit_kind;

typedef struct tq_stix_literal {
  tq_stix_lit_kind kind;
  const char *text; /* NUL-terminated; for strings unescaped (\' and \\ resolved) */
  size_t len;       /* bytes of text */
  int64_t i;        /* INT */
  double f;         /* FLOAT (and INT as a double) */
  int b;            /* BOOL */
  tq_stix_time t;   /* TIMESTAMP */
  size_t offset;    /* byte offset in the pattern */
  const struct tq_stix_literal *next; /* next member of an IN set */
} tq_stix_literal;

typedef enum tq_stix_step_kind {
  TQ_STIX_STEP_PROP,  /* .name or .'quoted name' */
  TQ_STIX_STEP_INDEX, /* [n] (n may be negative) */
  TQ_STIX_STEP_ANY    /* [*] */
} tq_stix_step_kind;

typedef struct tq_stix_step {
  tq_stix_step_kind kind;
  const char *name; /* PROP: unquoted name */
  int64_t index;    /* INDEX */
} tq_stix_step;

typedef struct tq_stix_path {
  const char *object_type; /* "file" */
  size_t n_steps;          /* >= 1: the first step is always a property */
  const tq_stix_step *steps;
  /* The steps in one canonical text: names that are identifiers unquoted, others quoted:
   * "value", "hashes.'SHA-256'", "hashes.MD5", "values[*].name". */
  const char *text;
} tq_stix_path;

typedef enum tq_stix_op {
  TQ_STIX_OP_EQ, /* = or == */
  TQ_STIX_OP_NE, /* != or <> */
  TQ_STIX_OP_LT,
  TQ_STIX_OP_LE,
  TQ_STIX_OP_GT,
  TQ_STIX_OP_GE,
  TQ_STIX_OP_IN,
  TQ_STIX_OP_LIKE,
  TQ_STIX_OP_MATCHES,
  TQ_STIX_OP_ISSUBSET,
  TQ_STIX_OP_ISSUPERSET,
  TQ_STIX_OP_EXISTS
} tq_stix_op;

/* "=", "!=", "<", ..., "IN", "LIKE", ..., "EXISTS". */
const char *tq_stix_op_name(tq_stix_op op);

typedef enum tq_stix_node_kind {
  /* observation level */
  TQ_STIX_NODE_FOLLOWEDBY, /* children: two or more observation-level nodes, in order */
  TQ_STIX_NODE_OBS_OR,
  TQ_STIX_NODE_OBS_AND,
  TQ_STIX_NODE_OBSERVATION, /* [ ... ]: child is one comparison-level node */
  /* comparison level (inside [ ]) */
  TQ_STIX_NODE_OR,
  TQ_STIX_NODE_AND,
  TQ_STIX_NODE_COMPARISON,
  /* observation level: ( ... ) with a qualifier of a kind its inner expression has already,
   * e.g. ([a:b = 1] WITHIN 5 SECONDS) WITHIN 10 SECONDS; child is one observation-level node */
  TQ_STIX_NODE_GROUP
} tq_stix_node_kind;

enum { TQ_STIX_QUAL_WITHIN = 1, TQ_STIX_QUAL_REPEATS = 2, TQ_STIX_QUAL_STARTSTOP = 4 };

typedef struct tq_stix_node {
  tq_stix_node_kind kind;
  size_t offset;              /* byte offset of the node's first token */
  struct tq_stix_node *child; /* first operand */
  struct tq_stix_node *next;  /* next sibling operand */
  /* observation-level nodes: qualifiers (at most one of each kind) */
  unsigned quals; /* TQ_STIX_QUAL_* bits */
  double within_seconds;
  int64_t repeats;
  tq_stix_time start, stop;
  /* OBSERVATION and COMPARISON: index of the [ ] in the pattern, 0-based */
  size_t observation;
  /* COMPARISON */
  tq_stix_path path;
  tq_stix_op op;
  int negated;                  /* NOT before the operator (or before EXISTS) */
  const tq_stix_literal *value; /* NULL for EXISTS; IN: first member (NULL for "()") */
} tq_stix_node;

/* One comparison of a pattern as a mapper sees it. An IN comparison gives one observable per
 * member of its set. */
typedef struct tq_stix_observable {
  const char *object_type;  /* "ipv4-addr" */
  const tq_stix_path *path; /* path->text "value", "hashes.'SHA-256'" */
  tq_stix_op op;            /* TQ_STIX_OP_IN for a member of a set */
  int negated;
  const tq_stix_literal *value; /* NULL for EXISTS */
  size_t observation;           /* which [ ] it came from, 0-based */
  /* 1 when this comparison alone is an indicator of the pattern: it is a positive '=' or IN
   * and only OR joins it to the rest (no AND, FOLLOWEDBY or qualifier above it). */
  int independent;
  /* ThreatQ indicator type for (object_type, path, value) when the operator is a positive
   * '=' or IN, else NULL; see tq_stix_indicator_type. */
  const char *indicator_type;
} tq_stix_observable;

typedef struct tq_stix_pattern {
  tq_stix_node *root;
  size_t n_observations; /* number of [ ] */
  size_t n_comparisons;
  size_t n_observables;
  const tq_stix_observable *observables;
  /* 1 when every observable is independent: the pattern is an OR of IOCs and each can be
   * stored as an indicator of its own. 0 means complex: keep the pattern whole. */
  int simple;
  struct tq_stix_arena *arena_; /* private */
} tq_stix_pattern;

/* Where and why a pattern was rejected. */
typedef struct tq_stix_pattern_error {
  size_t offset;      /* byte offset of the fault, 0-based */
  size_t column;      /* character (code point) column, 1-based */
  char expected[160]; /* what the parser wanted there: "']' or AND or OR", ... */
  char found[64];     /* what it found: "'foo'", "end of pattern" */
} tq_stix_pattern_error;

/* Parses text[0..len) and extracts its observables. On success *out is the pattern (free it
 * with tq_stix_pattern_free). On failure TQ_EINVAL (TQ_ELIMIT past
 * TQ_STIX_PATTERN_MAX_DEPTH): *perr (if non-NULL) has the position and err the message
 * "pattern column 14: expected ']' or AND or OR, found 'and'". */
tq_code tq_stix_pattern_parse(const char *text, size_t len, tq_stix_pattern **out,
                              tq_stix_pattern_error *perr, tq_err *err);
void tq_stix_pattern_free(tq_stix_pattern *p);

/* ThreatQ indicator type name for an observable: ("ipv4-addr", "value", "10.0.0.1") ->
 * "IP Address"; a value with '/' -> "CIDR Block"; ("file", "hashes.'SHA-256'", ..) ->
 * "SHA-256" (hash names in any case, with or without '-'). NULL when ThreatQ has no such
 * type. value may be NULL where the type does not depend on it. The table is in
 * docs/stix.md. */
const char *tq_stix_indicator_type(const char *object_type, const char *path_text,
                                   const char *value);

#endif
