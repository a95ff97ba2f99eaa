/* plugin.h: Operation plugins. A plugin is a folder plugins/<name>/ with a manifest.yaml
 * (schemas/operation.schema.json) and a Lua script. This part reads YAML with positions,
 * validates documents against JSON Schemas, loads manifests into tq_plugin, keeps each
 * plugin's configuration in the library (passwords encrypted with libsodium), runs one
 * operation on one object with the Lua runtime and applies its change set in one
 * transaction. It also hosts busted for `tqhost plugin test`.
 *
 * Ownership: every pointer returned through an out-parameter is owned by the caller and
 * freed with the *_free function named beside it; inputs are borrowed for the call.
 * Threads: nothing here keeps global state; one tq_lib / tq_lua per thread as below. */
#ifndef TQHOST_PLUGIN_H
#define TQHOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tqhost/core.h"
#include "tqhost/library.h"
#include "tqhost/lua.h"

/* ---- diagnostics --------------------------------------------------------------------------
 * A list of messages ("file:line:col: path: what"), for commands that report every error of
 * a file at once rather than the first. */
typedef struct tq_diags {
  char **msgs;
  size_t n;
} tq_diags;
void tq_diags_add(tq_diags *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tq_diags_free(tq_diags *d);

/* ---- YAML with positions --------------------------------------------------------------------
 * A YAML file as a cJSON tree (mappings -> objects, sequences -> arrays, plain scalars typed by
 * the YAML 1.2 core schema: null, true/false, integers, floats; quoted scalars are strings),
 * with the 1-based line and column where each node starts. */
typedef struct tq_ymark {
  const cJSON *node;
  int line, col;
} tq_ymark;

typedef struct tq_ydoc {
  char *path;
  cJSON *root;
  tq_ymark *marks;
  size_t n_marks, cap_marks;
  size_t *index; /* hash of node -> marks[i - 1], 0 empty; index_cap slots (a power of 2) */
  size_t index_cap;
} tq_ydoc;

/* Parses the first document of path. Errors (TQ_ENOTFOUND/TQ_EIO for the file, TQ_EINVAL for
 * syntax, aliases or duplicate keys) name path:line:col. *out is freed with tq_ydoc_free. */
tq_code tq_ydoc_load(const char *path, tq_ydoc **out, tq_err *err);
/* Same, from text in memory; name is used in messages. */
tq_code tq_ydoc_parse(const char *name, const char *text, size_t len, tq_ydoc **out, tq_err *err);
void tq_ydoc_free(tq_ydoc *d);
/* Where node starts; 0 when unknown (then *line = *col = 0). */
int tq_ydoc_pos(const tq_ydoc *d, const cJSON *node, int *line, int *col);

/* ---- JSON Schema (draft 2020-12 subset) -------------------------------------------------
 * Keywords: type, required, properties, additionalProperties (false or a schema), enum,
 * const, items, minItems, maxItems, minLength, maxLength, minimum, maximum, pattern (POSIX
 * extended regex), $ref to "#/$defs/NAME", and the annotations $schema $id title description
 * default examples $comment. Any other keyword is reported as unsupported so that a schema
 * never silently checks less than it says. */

/* Called once per violation: node is the failing instance node, path its location
 * ("operations[0].indicator_types[2]", "" for the root), msg what is wrong. */
typedef void (*tq_schema_error_fn)(void *ud, const cJSON *node, const char *path, const char *msg);
/* Validates instance against schema; returns the number of violations reported. */
size_t tq_schema_validate(const cJSON *schema, const cJSON *instance, tq_schema_error_fn fn,
                          void *ud);
/* Validates a YAML document; each violation is added to diags as "file:line:col: path: msg".
 * Returns the number added. */
size_t tq_schema_check_ydoc(const cJSON *schema, const tq_ydoc *doc, tq_diags *diags);
/* Loads schemas/<name> (e.g. "operation.schema.json") from the first of these folders that
 * has it: $TQHOST_SCHEMAS; the install prefix's share/tqhost/schemas (compiled in);
 * ../share/tqhost/schemas beside the executable; the source tree's schemas/ for a binary of
 * the build tree only. TQ_ENOTFOUND names every folder searched. *out is a cJSON tree
 * (cJSON_Delete). */
tq_code tq_schema_load(const char *name, cJSON **out, tq_err *err);
/* The path (into out, n bytes) of schemas/<name> found as tq_schema_load finds it; for files
 * that are served rather than parsed (openapi.yaml). Same errors. */
tq_code tq_schema_path(const char *name, char *out, size_t n, tq_err *err);

/* ---- manifests ------------------------------------------------------------------------------ */

typedef enum tq_field_type {
  TQ_FIELD_STRING,
  TQ_FIELD_URL,
  TQ_FIELD_INTEGER,
  TQ_FIELD_BOOLEAN,
  TQ_FIELD_SELECT,
  TQ_FIELD_PASSWORD, /* a secret: encrypted at rest, masked everywhere */
  TQ_FIELD_NUMBER,   /* a decimal number (a Lua float in ctx.config) */
  TQ_FIELD_LIST      /* comma-separated strings (a Lua array in ctx.config) */
} tq_field_type;
const char *tq_field_type_name(tq_field_type t);
/* The type named name (as in manifests), or -1. */
int tq_field_type_parse(const char *name);
/* How a value of type t reaches ctx.config. */
tq_lua_kind tq_field_kind(tq_field_type t);

typedef struct tq_plugin_field {
  char *key;
  char *label;
  tq_field_type type;
  int required;
  char *def;      /* the default as text, NULL if none */
  char **options; /* select fields */
  size_t n_options;
} tq_plugin_field;

typedef struct tq_plugin_op {
  char *name;
  char *label;
  char *entry;
  char **object_types;
  size_t n_object_types;
  char **indicator_types; /* canonical names */
  size_t n_indicator_types;
} tq_plugin_op;

typedef struct tq_plugin_network {
  char **hosts; /* as written, "{config.KEY}" not yet substituted */
  size_t n_hosts;
  int rate_requests; /* 0: no rate limit */
  int64_t rate_per_ms;
  int *retry_on;
  size_t n_retry_on;
  int retry_max;
  int64_t cache_ttl_ms;
} tq_plugin_network;

typedef struct tq_plugin {
  char *dir;      /* the plugin's folder */
  char *manifest; /* dir/manifest.yaml */
  char *name, *label, *version, *description, *author;
  char *script; /* absolute or relative to cwd: dir/<script> */
  tq_plugin_field *fields;
  size_t n_fields;
  tq_plugin_op *ops;
  size_t n_ops;
  tq_plugin_network net;
  tq_lua_limits limits;
} tq_plugin;

/* ---- loading documents ----------------------------------------------------------------------
 * What the manifest and action file loaders share: the first error goes to err, every error to
 * diags (may be NULL) as "file:line:col: path: what"; allocation failures set oom. */
typedef struct tq_docload {
  const tq_ydoc *doc;
  tq_diags *diags;
  size_t n_errors;
  tq_err *err;
  int oom;
} tq_docload;
/* Reads the YAML file path and checks it against schemas/<schema_name>: a file that cannot be
 * read or parsed is an error (also added to diags); schema violations go to diags and are
 * counted in *n_schema_errors. *doc is freed with tq_ydoc_free. */
tq_code tq_docload_read(const char *path, const char *schema_name, tq_diags *diags, tq_ydoc **doc,
                        size_t *n_schema_errors, tq_err *err);
void tq_docload_error(tq_docload *m, const cJSON *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* obj[key] as a malloc'd string; NULL when absent or not a string. */
char *tq_docload_str(tq_docload *m, const cJSON *obj, const char *key);
/* A scalar as text ("true", "42", "x"), malloc'd; NULL for other nodes. */
char *tq_docload_scalar(tq_docload *m, const cJSON *v);
/* The strings of an array (others skipped), malloc'd; free with tq_docload_list_free. */
char **tq_docload_list(tq_docload *m, const cJSON *arr, size_t *n);
void tq_docload_list_free(char **v, size_t n);
/* obj[key] as a duration in ms ("30s", "1h"); def when absent; an error when malformed. */
int64_t tq_docload_duration(tq_docload *m, const cJSON *obj, const char *key, const char *path,
                            int64_t def);
/* The `config` block: fields with their defaults checked against their types, unique keys. */
void tq_docload_fields(tq_docload *m, const cJSON *arr, tq_plugin_field **out, size_t *n);
/* The `network` block (hosts, rate_limit, retry, cache_ttl) and the `limits` block. */
void tq_docload_network(tq_docload *m, const cJSON *net, tq_plugin_network *n);
void tq_docload_limits(tq_docload *m, const cJSON *lim, tq_lua_limits *l);
/* Every "{config.KEY}" of n's hosts (net: the `network` node, for positions) must name a
 * non-password field of fields or more (NULL/0 when none). */
void tq_docload_hosts_check(tq_docload *m, const cJSON *net, const tq_plugin_network *n,
                            const tq_plugin_field *fields, size_t n_fields,
                            const tq_plugin_field *more, size_t n_more);
/* Free what tq_docload_fields and tq_docload_network made. */
void tq_docload_fields_free(tq_plugin_field *fields, size_t n);
void tq_docload_network_free(tq_plugin_network *n);

/* Loads and validates dir/manifest.yaml. Every schema violation and semantic error (unknown
 * indicator type, duplicate key, bad duration) is added to diags (may be NULL) as
 * "file:line:col: path: what"; the first one is also in err. TQ_EINVAL when there is any.
 * *out is freed with tq_plugin_free. */
tq_code tq_plugin_load(const char *dir, tq_plugin **out, tq_diags *diags, tq_err *err);
/* tq_plugin_load reading from dir (e.g. /proc/self/fd/N: one folder whatever is renamed
 * meanwhile) while the folder-name check uses folder (the plugin's path); folder NULL: dir. */
tq_code tq_plugin_load_as(const char *dir, const char *folder, tq_plugin **out, tq_diags *diags,
                          tq_err *err);
void tq_plugin_free(tq_plugin *p);
const tq_plugin_field *tq_plugin_field_find(const tq_plugin *p, const char *key);
const tq_plugin_op *tq_plugin_op_find(const tq_plugin *p, const char *name);
/* Whether op accepts an object of that type (and indicator type, for indicators). */
int tq_plugin_op_accepts(const tq_plugin_op *op, const char *object_type,
                         const char *indicator_type);

/* ---- scaffold (scaffold.c): `tqhost plugin new` ------------------------------------------------
 * A plugin skeleton from templates compiled into scaffold.c. */
typedef struct tq_plugin_new_opts {
  const char *name; /* checked by tq_plugin_name_check; borrowed */
  const char
      *dir;   /* the folder to create NAME in; NULL: $TQHOST_PLUGINS, else ./plugins; borrowed */
  int action; /* also write actions/NAME-action.yaml */
  int force;  /* write over an existing NAME folder */
} tq_plugin_new_opts;
/* TQ_OK if name matches the manifest schema's name (^[a-z0-9][a-z0-9-]{0,63}$); TQ_EINVAL
 * naming it otherwise ("..", "/", capitals, ...). */
tq_code tq_plugin_name_check(const char *name, tq_err *err);
/* Writes DIR/NAME/{manifest.yaml, operation.lua, README.md, spec/lookup_spec.lua,
 * spec/fixtures/hit.json} (and actions/NAME-action.yaml with o->action): in a hidden folder
 * renamed into place, so nothing is left on an error. TQ_EEXIST if DIR/NAME exists without
 * o->force. The created folder's path goes to out (n bytes; may be NULL). */
tq_code tq_plugin_new(const tq_plugin_new_opts *o, char *out, size_t n, tq_err *err);

/* ---- registry -------------------------------------------------------------------------------
 * The plugins folder: tq_host_dir(TQ_DIR_PLUGINS) ($TQHOST_PLUGINS, the host configuration,
 * the installed folder). Each sub-folder with a manifest.yaml is a
 * plugin (lib/ holds shared Lua modules, required by scripts). */
const char *tq_plugin_dir(void);
/* The folder's plugins, sorted by name. Folders whose manifest fails to load are reported in
 * diags (may be NULL) and skipped. *out is freed with tq_plugin_list_free. */
tq_code tq_plugin_list(const char *plugins_dir, tq_plugin ***out, size_t *n, tq_diags *diags,
                       tq_err *err);
void tq_plugin_list_free(tq_plugin **list, size_t n);
/* Loads plugins_dir/name. TQ_ENOTFOUND names the folder when there is no such plugin. */
tq_code tq_plugin_find(const char *plugins_dir, const char *name, tq_plugin **out, tq_err *err);

/* ---- configuration ----------------------------------------------------------------------------
 * Stored in the library's settings under scope "plugin:NAME". Password fields are encrypted
 * with crypto_secretbox under a 32-byte key file (see tq_plugin_key_path). */
#define TQ_SECRET_MASK "********"

/* The key file of the library db_path: $TQHOST_KEY_FILE, else "<db_path>.key". Malloc'd. */
char *tq_plugin_key_path(const char *db_path);
/* Checks value against the field's type: url (http/https with a host), integer, boolean
 * (true/false/yes/no/1/0, stored as "true"/"false"), select (one of the options), password
 * (non-empty). *norm (malloc'd) gets the value to store. */
tq_code tq_plugin_field_check(const tq_plugin_field *f, const char *value, char **norm,
                              tq_err *err);
/* Sets key=value pairs (all checked first; written in one transaction). key_path is the key
 * file (created 0600 on first use). */
tq_code tq_plugin_configure(tq_lib *lib, const tq_plugin *p, const char *key_path,
                            const tq_lua_kv *kvs, size_t n, tq_err *err);

/* A plugin's effective configuration: stored values over manifest defaults. Secrets are in
 * their own array, decrypted (only when want_secrets). Every string is malloc'd. */
typedef struct tq_plugin_config {
  tq_lua_kv *config; /* non-secret fields that have a value */
  size_t n_config;
  tq_lua_kv *secrets; /* password fields that have a value */
  size_t n_secrets;
  char **missing; /* required fields without a value (keys) */
  size_t n_missing;
  const tq_plugin_field *own_fields; /* borrowed: an action's own fields, which type its keys
                                        before the plugin's; NULL: the plugin's only */
  size_t n_own_fields;
} tq_plugin_config;
/* The kind (ctx.config type) of each of c's config entries, from its field (own_fields, then
 * p's; text for a key of neither). *out (n_config entries) is freed by the caller. */
tq_code tq_plugin_config_kinds(const tq_plugin *p, const tq_plugin_config *c, tq_lua_kind **out,
                               tq_err *err);
tq_code tq_plugin_config_load(tq_lib *lib, const tq_plugin *p, const char *key_path,
                              int want_secrets, tq_plugin_config *out, tq_err *err);
void tq_plugin_config_free(tq_plugin_config *c);
/* The value of key in c (config or secrets), or NULL. */
const char *tq_plugin_config_get(const tq_plugin_config *c, const char *key);

/* Encrypts/decrypts one secret with the key file (created when encrypting). The stored form
 * is "sb1:" + base64(nonce || box). *out malloc'd. */
tq_code tq_plugin_secret_seal(const char *key_path, const char *plain, char **out, tq_err *err);
tq_code tq_plugin_secret_open(const char *key_path, const char *sealed, char **out, tq_err *err);

/* ---- host configuration -------------------------------------------------------------------
 * The operator's file (schemas/host.schema.json): $TQHOST_CONFIG, else TQ_HOST_CONFIG_DEFAULT.
 * For now it holds the ceilings of every run's budgets; a manifest or action file that asks
 * for more is clamped to them with a warning in the log (not refused: a plugin written for a
 * bigger host still runs, within this host's means). */
#define TQ_HOST_CONFIG_DEFAULT "/etc/tqhost/tqhost.yaml"
#define TQ_HOST_MAX_MEMORY ((size_t)64 << 20)
#define TQ_HOST_MAX_INSTRUCTIONS 1000000000ULL
#define TQ_HOST_MAX_TIMEOUT_MS 120000

/* The host's data folders (datadir.c), each found by tq_host_dir. */
typedef enum tq_host_dir_kind {
  TQ_DIR_SCHEMAS,
  TQ_DIR_PLUGINS,
  TQ_DIR_ACTIONS,
  TQ_DIR_WEB,
  TQ_DIR_N
} tq_host_dir_kind;

typedef struct tq_host_config {
  char *path;               /* the file read; NULL: built-in values */
  tq_lua_limits max_limits; /* ceilings, every field non-zero */
  int64_t token_ttl_s;      /* server.token_ttl: access token lifetime; 0: the default */
  /* The settings below are NULL (or -1) when the file does not give them. Owned by the
   * config (freed by tq_host_config_free); paths are absolute, a relative one in the file is
   * taken from the file's folder. */
  char *library;            /* library: the library file */
  int log_level;            /* log_level: a tq_log_level; -1: not set */
  char *listen;             /* server.listen: "ADDR:PORT" */
  char *tls_cert, *tls_key; /* server.tls_cert, server.tls_key: PEM files */
  char *folders[TQ_DIR_N];  /* folders.plugins/actions/web ([TQ_DIR_SCHEMAS] stays NULL) */
} tq_host_config;

/* The built-in values (no file). */
void tq_host_config_defaults(tq_host_config *c);
/* $TQHOST_CONFIG (*named = 1) or TQ_HOST_CONFIG_DEFAULT (*named = 0). */
const char *tq_host_config_path(int *named);
/* Reads path over the built-in values. A missing file is an error when must_exist, else the
 * built-in values hold. Errors name file:line:col (all of them in diags, may be NULL; the
 * first in err); out then holds the built-in values. Free with tq_host_config_free. */
tq_code tq_host_config_load(const char *path, int must_exist, tq_host_config *out, tq_diags *diags,
                            tq_err *err);
/* tq_host_config_load of tq_host_config_path: the file $TQHOST_CONFIG names must exist. */
tq_code tq_host_config_find(tq_host_config *out, tq_err *err);
void tq_host_config_free(tq_host_config *c);
/* Clamps l to c's ceilings (a 0 field, the runtime's default, too when the ceiling is below
 * that default); logs a warning naming who (the plugin or action) for each value asked for
 * explicitly and lowered. */
void tq_host_limits_clamp(const tq_host_config *c, const char *who, tq_lua_limits *l);

/* ---- the host's folders (datadir.c) -----------------------------------------------------------
 * One lookup for schemas, plugins, actions and web files, in this order: the environment
 * ($TQHOST_SCHEMAS, $TQHOST_PLUGINS, $TQHOST_ACTIONS, $TQHOST_WEB), the host configuration's
 * folders.* (not for schemas: the configuration is checked against one), the folder beside the
 * executable (BIN/../share/tqhost/WHAT; a binary of the build tree: the source tree's WHAT),
 * then the data folder compiled in (CMAKE_INSTALL_FULL_DATADIR/tqhost/WHAT). */
#define TQ_HOST_DIR_MAX 4
/* The folders to search for kind, in order: *n of them in dirs; from[i] (may be NULL) gets
 * where each came from ("TQHOST_PLUGINS", "/etc/tqhost/tqhost.yaml", "beside the
 * executable", "the installed data folder"). The environment and the configuration, when they
 * name a folder, are the only candidate: then 1 is returned (the folder is named), else 0. */
int tq_host_dir_candidates(tq_host_dir_kind kind, char dirs[TQ_HOST_DIR_MAX][4096], int *n,
                           const char *from[TQ_HOST_DIR_MAX]);
/* The folder of kind: the first candidate that exists (or the named one even if it does not),
 * else the bare name ("plugins": the working directory's), as before installs existed. The
 * string is the calling thread's and stays valid until its next call for the same kind. */
const char *tq_host_dir(tq_host_dir_kind kind);
/* The name of kind ("plugins") and its environment variable ("TQHOST_PLUGINS"). */
const char *tq_host_dir_name(tq_host_dir_kind kind);
const char *tq_host_dir_env(tq_host_dir_kind kind);

/* ---- running an operation ---------------------------------------------------------------------
 */

/* The network policy of p with "{config.KEY}" substituted from cfg: hosts become allow-list
 * host names. Strings in *out point into *store (free with tq_plugin_policy_free). */
typedef struct tq_plugin_policy {
  tq_net_policy policy;
  char **hosts;
  size_t n_hosts;
} tq_plugin_policy;
tq_code tq_plugin_policy_build(const tq_plugin *p, const tq_plugin_config *cfg,
                               tq_plugin_policy *out, tq_err *err);
void tq_plugin_policy_free(tq_plugin_policy *pp);

/* Picks the operation of p: the one named (op_name non-NULL), else the only one, else the one
 * that accepts indicator_type. TQ_EINVAL lists the candidates when ambiguous; TQ_ENOTFOUND
 * when none fits. */
tq_code tq_plugin_op_pick(const tq_plugin *p, const char *op_name, const char *object_type,
                          const char *indicator_type, const tq_plugin_op **out, tq_err *err);

typedef struct tq_op_request {
  const tq_plugin *plugin;
  const tq_plugin_op *op;
  const tq_object *obj;        /* the object view given to the entry */
  const tq_plugin_config *cfg; /* with secrets */
  const char *plugins_dir;     /* for lib/ (require); NULL: <plugin dir>/.. */
  const char *replay_file;     /* non-NULL: recorded HTTP, no network */
  tq_lib *lib;                 /* HTTP cache and tq.* reads; may be NULL */
  const tq_host_config *host;  /* budget ceilings; NULL: tq_host_config_find */
  int dry_run;                 /* nothing is written: the HTTP cache is only read */
  tq_lua_record_fn record;     /* live mode: every HTTP exchange (tq_lua_opts.record); NULL */
  void *record_ud;
} tq_op_request;

typedef struct tq_op_result {
  tq_lua_status status;
  char *message;   /* failure reason or error message, "" if none */
  char *traceback; /* "" if none */
  tq_changeset cs;
  int64_t elapsed_us;
} tq_op_result;

/* Runs the operation to completion. Errors here are the host's (script does not compile,
 * runtime could not start); what the script did is in *res. Free res with tq_op_result_free. */
tq_code tq_plugin_op_run(const tq_op_request *rq, tq_op_result *res, tq_err *err);
void tq_op_result_free(tq_op_result *res);

/* ---- targets and outcomes (target.c): what `op run` and the server share ---------------------
 * The object an operation runs on: an object of the library, or a transient indicator view
 * for a value not in the library (typed and normalised by ioc). Owns its strings; a target
 * may be moved by value (the view points to heap strings only). */
typedef struct tq_plugin_target {
  tq_object *stored; /* the library's object, or NULL */
  tq_object view;    /* transient view when not stored */
  char *type, *value;
} tq_plugin_target;
/* The indicator value (with an optional type) names: the library's when lib has it (lib may
 * be NULL), else transient. TQ_EINVAL names a type that is not an indicator type, or a value
 * whose type cannot be told. */
tq_code tq_plugin_target_resolve(tq_lib *lib, const char *type, const char *value,
                                 tq_plugin_target *t, tq_err *err);
/* The library's object id (TQ_ENOTFOUND when absent). */
tq_code tq_plugin_target_id(tq_lib *lib, int64_t id, tq_plugin_target *t, tq_err *err);
const tq_object *tq_plugin_target_obj(const tq_plugin_target *t); /* borrowed from t */
void tq_plugin_target_free(tq_plugin_target *t);

/* A change set as JSON: {"attributes": [{"name","value"}], "tags": [...], "links":
 * [{"object_type","value","link_type"?,"description"?}], "indicators": [{"type","value",
 * "attributes"}], "score": n|null, "status": s|null}. Owned by the caller. */
cJSON *tq_changeset_json(const tq_changeset *cs);
/* The change set back from what tq_changeset_json wrote (j; borrowed) and what the analyst
 * sees (show, may be NULL; copied): every string copied into cs (free with
 * tq_changeset_free). TQ_EINVAL for another shape (a member of a wrong type, an array past
 * TQ_LUA_MAX_ITEMS, a string past TQ_LUA_MAX_VALUE, a score outside 0..10); nothing kept then. */
tq_code tq_changeset_from_json(const cJSON *j, const cJSON *show, tq_changeset *cs, tq_err *err);

/* What one run did, as `op run --json` prints it and the server answers it. */
typedef struct tq_op_outcome {
  const char *plugin, *operation; /* names */
  const tq_object *obj;           /* the target */
  const tq_op_result *res;
  int applied;             /* written */
  int64_t object_id;       /* the object written (when applied) */
  const char *apply_error; /* why nothing was written despite asking; NULL if none */
} tq_op_outcome;
/* {"plugin","operation","object": {"type","indicator_type"?,"value","id"|null}, "status",
 * "message", "traceback"?, "show", "changes", "applied", "apply_error"?}. Owned by the caller. */
cJSON *tq_op_outcome_json(const tq_op_outcome *o);

/* ---- warm runs (target.c): for a caller that owns a runtime and a net (the server's engine)
 * and runs many operations at once on them. */
/* Loads p's script into rt with cfg (secrets included), p's limits clamped to host's
 * ceilings, and the provider of net for p's network policy with cfg substituted (named after
 * the plugin and its hosts: runs of the same plugin and hosts share its rate limit). *out is
 * freed with tq_lua_script_free. Errors are the host's (syntax, budgets refused, a host
 * that names an unset field). */
tq_code tq_plugin_script_load(tq_lua *rt, tq_net *net, const tq_plugin *p,
                              const tq_plugin_config *cfg, const char *plugins_dir,
                              const tq_host_config *host, tq_lua_script **out, tq_err *err);
/* tq_plugin_script_load on texts read before (src: a registry's snapshot, borrowed for the
 * call), so that the script and its modules are those of the manifest p. src NULL: read now. */
struct tq_plugin_src;
tq_code tq_plugin_script_load_src(tq_lua *rt, tq_net *net, const tq_plugin *p,
                                  const struct tq_plugin_src *src, const tq_plugin_config *cfg,
                                  const char *plugins_dir, const tq_host_config *host,
                                  tq_lua_script **out, tq_err *err);
/* Starts op's entry on obj in rt (see tq_lua_run_start: done is called from tq_lua_step). */
tq_code tq_plugin_op_start(tq_lua *rt, tq_lua_script *script, const tq_plugin *p,
                           const tq_plugin_op *op, const tq_object *obj, tq_lua_done_fn done,
                           void *ud, tq_lua_run **out, tq_err *err);
/* A finished run's result moved into *res (free with tq_op_result_free). */
tq_code tq_op_result_take(tq_lua_run *run, tq_op_result *res, tq_err *err);

/* Checks a change set before writing: names, types, values (indicator values must normalise
 * as their type, link targets must be object types or indicator types). */
tq_code tq_plugin_changeset_check(const tq_changeset *cs, tq_err *err);

/* What tq_plugin_apply wrote. */
typedef struct tq_apply_summary {
  int64_t object_id;
  int object_created;
  size_t attrs, tags, links, indicators;
  int score_set, status_set;
} tq_apply_summary;

/* Writes cs in one transaction: the object (created if obj->id == 0, with the plugin's label
 * as source of kind "plugin"), attributes (source = label), tags, links (targets created),
 * related indicators (new ones Indirect, linked to the object), manual score, status. On any
 * error nothing is written. */
tq_code tq_plugin_apply(tq_lib *lib, const tq_plugin *p, const tq_object *obj,
                        const tq_changeset *cs, tq_apply_summary *out, tq_err *err);

/* ---- plugin tests ---------------------------------------------------------------------------
 * Runs dir/spec/ *_spec.lua with busted (Lua 5.4, Debian's lua-busted) inside the host, in an
 * unsandboxed lua_State that offers require "tqhost.test" (T.run, see docs/plugins.md). The
 * working directory is dir for the duration. Returns busted's exit status (0 all passed),
 * or -1 with err set when the host could not start busted. Busted may exit the process
 * itself on failures (os.exit), with its status. */
int tq_plugin_test(const char *dir, tq_err *err);
/* `plugin test DIR --record BASE_URL`: the same run, but each T.run that names a replay file
 * runs once against the live API at BASE_URL and writes that file, secrets removed (record.c,
 * docs/plugins.md "Recording fixtures"). */
typedef struct tq_plugin_record_opts {
  const char *base_url; /* http(s) URL standing for the plugin's base_url field; required */
  int force;            /* record fixtures that exist too */
  const tq_lua_kv *set; /* KEY=VALUE for the live runs: password fields as secrets (the
                           real API key), other fields as config; borrowed */
  size_t n_set;
} tq_plugin_record_opts;
int tq_plugin_test_record(const char *dir, const tq_plugin_record_opts *o, tq_err *err);

/* ---- snapshots and the registry (snapshot.c) ------------------------------------------------
 * What a long-lived host runs: a plugin read whole, and the plugins folder's registry that
 * reloads what changed (tqhost serve: installs, upgrades, edits take effect for new runs). */

/* A plugin's texts as read once: its script and every module of its own lib/ folder
 * (plugins/NAME/lib/a/b.lua -> "a.b"). Owned; free with tq_plugin_src_free. */
typedef struct tq_plugin_src {
  char *script;
  size_t script_len;
  tq_lua_module *mods; /* sorted by name */
  size_t n_mods;
} tq_plugin_src;
/* Reads p's script (through its canonical path, inside p->dir) and its own lib/ modules:
 * regular files only (a symlink anywhere is refused, TQ_EDENIED), at most 256 modules of 4 MiB. */
tq_code tq_plugin_src_read(const tq_plugin *p, tq_plugin_src *out, tq_err *err);
void tq_plugin_src_free(tq_plugin_src *s);
/* Points so's source and modules at s (borrowed: s must outlive the tq_lua_load call). s may
 * be NULL (nothing set). */
void tq_plugin_src_opts(const tq_plugin_src *s, tq_lua_script_opts *so);
/* Loads dir's manifest and texts between two stamps of the folder (its identity, its entries'
 * names, inodes, sizes, mtimes), again while they differ (a folder swapped or written during
 * the read): never part of one version with part of another. The script and modules are
 * compiled (syntax) too. On failure, why gets the first error as "file:line:col: ..." (the
 * manifest) or "file:line: ..." (Lua). */
tq_code tq_plugin_snap_load(const char *dir, tq_plugin **out, tq_plugin_src *src, char *why,
                            size_t why_n, tq_err *err);

/* The registry: one per process, shared by every thread, reference-counted. */
#define TQ_PLUGIN_REG_CHECK_MS 100 /* the folder's stamps are checked at most this often */
typedef struct tq_plugin_reg tq_plugin_reg;
typedef struct tq_plugin_slot {
  const char *name;         /* the folder's name */
  const tq_plugin *p;       /* the active version; NULL when no version of it ever loaded */
  const tq_plugin_src *src; /* its texts (with p) */
  uint64_t gen;             /* which load of the plugin p is: a new version, a new gen */
  const char *error;        /* why the folder's newest version is not the active one; NULL */
} tq_plugin_slot;
/* The registry of plugins_dir with a reference (tq_plugin_reg_put), reloaded first when a
 * stamp changed (plugins whose folder did not change keep their loaded version). What every
 * reload goes through. NULL only when out of memory before any registry existed. */
tq_plugin_reg *tq_plugin_reg_get(const char *plugins_dir);
void tq_plugin_reg_put(tq_plugin_reg *r);
/* The slots, sorted by name (borrowed from r). */
const tq_plugin_slot *tq_plugin_reg_slots(const tq_plugin_reg *r, size_t *n);
const tq_plugin_slot *tq_plugin_reg_find(const tq_plugin_reg *r, const char *name);
/* Why the folder could not be listed; NULL. */
const char *tq_plugin_reg_error(const tq_plugin_reg *r);
uint64_t tq_plugin_reg_gen(const tq_plugin_reg *r);

/* ---- packages (package.c) -------------------------------------------------------------------
 * NAME-VERSION.tqp: a gzip'd tar (libarchive) of the plugin folder, the plugins/lib modules its
 * manifest lists in requires.lib (stored under lib/), MANIFEST.sha256 and, when signed,
 * MANIFEST.sha256.sig (hex Ed25519 detached signature of MANIFEST.sha256). */

/* Packs dir into out_file (NULL: ./NAME-VERSION.tqp), signed with key_file's secret key when
 * key_file is not NULL. *written (may be NULL) gets the path written, malloc'd, caller frees. */
tq_code tq_pkg_pack(const char *dir, const char *out_file, const char *key_file, char **written,
                    tq_err *err);
/* Writes a new Ed25519 key pair: key_file (secret, hex, mode 0600; never overwritten) and
 * key_file.pub (public, hex: what installers trust). */
tq_code tq_pkg_keygen(const char *key_file, tq_err *err);
/* The folder of trusted public keys (*.pub): $TQHOST_TRUSTED_KEYS, else
 * PLUGINS_DIR/../trusted-keys written into buf. Returns env's string or buf (not owned). */
const char *tq_pkg_trusted_dir(const char *plugins_dir, char *buf, size_t n);

typedef struct tq_pkg_install_opts {
  int force;          /* allow a downgrade */
  int allow_unsigned; /* accept a package without signature (a bad signature is still refused) */
  int run_tests;      /* run the package's specs before installing */
} tq_pkg_install_opts;

typedef struct tq_pkg_result {
  char name[128], version[64], old_version[64]; /* old_version "" on a first install */
  char signer[256];                             /* the trusted key file's name, or "unsigned" */
} tq_pkg_result;

/* Checks file entirely in memory (entry types, paths, sizes, digests, signature, manifest name
 * and version, downgrade), extracts into plugins_dir/.tqp-install-XXXXXX, loads the manifest
 * against its schema, runs the specs if asked, then renames the plugin folder into place in
 * one rename: the package's lib/ modules live inside it (plugins_dir/NAME/lib/, found before
 * the shared plugins_dir/lib/ by require), so a reader never sees a new plugin with old
 * modules, and another plugin keeps its own copies. On any error nothing is left in
 * plugins_dir. */
tq_code tq_pkg_install(const char *plugins_dir, const char *file, const tq_pkg_install_opts *o,
                       tq_pkg_result *res, tq_err *err);
/* The checks of install that need no folder, on a package in memory (data, len; label names
 * it in errors): archive entries (types, paths, sizes, count), digests, signature against the
 * *.pub keys of trusted_dir, the manifest's name and version (res->name, res->version,
 * res->signer filled). What the package fuzzer drives. */
tq_code tq_pkg_verify(const void *data, size_t len, const char *label, const char *trusted_dir,
                      int allow_unsigned, tq_pkg_result *res, tq_err *err);
/* Removes plugins_dir/NAME (its configuration stays in the library). */
tq_code tq_pkg_remove(const char *plugins_dir, const char *name, tq_err *err);
/* "bundled" or "package FILE.tqp" (from the .tqp-origin file install writes). Caller frees. */
char *tq_pkg_origin(const tq_plugin *p);

/* ---- a plugin's script: options and checks (script.c) ----------------------------------------
 * The one place that turns a plugin (and an action that runs it) into tq_lua_script_opts: the
 * server's engine (tq_plugin_script_load_src), one-off runs (tq_plugin_op_run), bulk runs
 * (workflow), `plugin check` and `action check` all load a plugin's script through it. */
typedef struct tq_plugin_script_spec {
  const tq_plugin *plugin;         /* required; borrowed */
  const tq_plugin_config *cfg;     /* ctx.config values, typed by their fields (cfg->own_fields,
                                      then the plugin's); required; borrowed */
  int with_secrets;                /* 1: cfg's secrets reach ctx.secret (runs); 0: none (checks) */
  tq_net_provider *provider;       /* borrowed; NULL: no network (checks) */
  const char *plugins_dir;         /* shared modules at plugins_dir/lib; NULL: the plugin's
                                      parent folder's lib/ (the same folder for a plugin there) */
  const char *script;              /* an action's own script file; NULL: the plugin's. Only the
                                      plugin's own script is taken from src */
  const tq_lua_limits *limits;     /* borrowed: the final limits (a run's, already clamped to the
                                      host's ceilings by tq_host_limits_clamp, as its network
                                      policy uses them; an action's own; a check's, clamped by
                                      tq_plugin_check_limits); NULL: the plugin's manifest's
                                      as written */
  const struct tq_plugin_src *src; /* borrowed: texts read before (a registry's snapshot);
                                      NULL: the script and p's lib/ modules are read now */
} tq_plugin_script_spec;
/* so is ready for tq_lua_load; it points into this struct and into the spec's borrowed parts
 * (which must outlive the load). The caller may set the runner flags (outcome_only,
 * obj_lists_later) before loading. Owned: lib_dir, kinds, own (texts read now). */
typedef struct tq_plugin_script_opts {
  tq_lua_script_opts so;
  char *lib_dir;
  tq_lua_kind *kinds;
  struct tq_plugin_src *own; /* NULL when spec->src was given */
} tq_plugin_script_opts;
/* Builds *out from spec. Errors: TQ_ENOMEM; those of tq_plugin_src_read (a symlink refused,
 * TQ_EDENIED; a file unreadable). On error nothing is left to free. */
tq_code tq_plugin_script_opts_build(const tq_plugin_script_spec *spec, tq_plugin_script_opts *out,
                                    tq_err *err);
void tq_plugin_script_opts_free(tq_plugin_script_opts *o);

/* `tqhost plugin check DIR`, the plugin half: loads dir's manifest (schema, fields), then
 * compiles the script with the default config (its top level runs once under the manifest's
 * budgets within the host's ceilings, without secrets and without network) and checks that every
 * operation's entry is returned, a missing one reported at the manifest's "file:line:col". Every
 * problem is added to d. *out gets the plugin when its manifest loaded (free with tq_plugin_free),
 * else NULL. Returns TQ_OK when d got nothing, TQ_EINVAL when it did, TQ_ENOMEM. */
tq_code tq_plugin_check(const char *dir, tq_plugin **out, tq_diags *d, tq_err *err);
/* What a check runs a script's top level under (host_config.c): l clamped to the host
 * configuration's ceilings (the built-in ones when the file cannot be read), quietly (a run
 * warns of a clamp; a check of a good action that asks for more does not), so that a hostile
 * manifest's budgets cannot hang or exhaust the checker. */
void tq_plugin_check_limits(tq_lua_limits *l);
/* The script half of tq_plugin_check for a plugin already loaded. */
void tq_plugin_check_script(const tq_plugin *p, tq_diags *d);

#endif
