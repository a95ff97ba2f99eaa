/* action_int.h: what the files of the action runner share: the loaded action, the effective
 * configuration of a run and the runs/run_items store. */
#ifndef TQ_ACTION_INT_H
#define TQ_ACTION_INT_H

#include <cjson/cJSON.h>

#include "tqhost/workflow.h"

struct tq_action {
  char *path; /* the YAML file */
  char *name, *label, *version, *description;
  char *plugin_name;
  char *entry;
  char *batch_entry; /* NULL: no bulk API */
  int batch_threshold;
  int batch_max;
  int batch_size;
  int concurrency;
  char **itypes; /* canonical names; n = 0: any indicator */
  size_t n_itypes;
  tq_plugin_field *fields;
  size_t n_fields;
  tq_plugin_network net; /* the action's, or a copy of the plugin's */
  tq_lua_limits limits;
  tq_plugin *plugin; /* the package: config scope, label (source), provider name */
  /* When a host's registry gave the plugin (tq_action_plugin_source): its texts (borrowed)
   * and what keeps both alive until tq_action_free; plugin is then not the action's. */
  const tq_plugin_src *plugin_src;
  void *plugin_hold;
  char *plugins_dir;
  char *script; /* resolved path of the script that holds entry */
};

/* ---- configuration (action_config.c) ---- */

/* The configuration a run uses: the plugin's stored values for shared keys, else the action's
 * defaults, else the plugin's defaults; then the overrides (checked against the field). */
typedef struct action_cfg {
  tq_plugin_config pc; /* config = plain, secrets = passwords */
} action_cfg;

tq_code action_cfg_build(tq_lib *lib, const tq_action *a, const char *key_path,
                         const tq_lua_kv *ovr, size_t n_ovr, action_cfg *out, tq_err *err);
void action_cfg_free(action_cfg *c);
/* The field (action's first, then the plugin's) of key, or NULL. */
const tq_plugin_field *action_field(const tq_action *a, const char *key);

/* Settings as stored (a workflow's, a run's): a JSON object of KEY: "value", except that a
 * password field is KEY: {"sealed": "sb1:..."}, sealed like plugin config with the key file
 * at key_path (tq_plugin_secret_seal). */
/* Adds kv to obj (replacing the key), sealed when f is a password field. f may be NULL. */
tq_code settings_put(cJSON *obj, const tq_plugin_field *f, const char *key_path,
                     const tq_lua_kv *kv, tq_err *err);
/* Reads obj into *out (n pairs, malloc'd) and *sealed (1 for a sealed value). With key_path
 * sealed values are opened; without, they stay in their sealed text. On error the caller
 * still frees what was read with settings_free. */
tq_code settings_read(const cJSON *obj, const char *key_path, tq_lua_kv **out, int **sealed,
                      size_t *n, tq_err *err);
/* Wipes and frees what settings_read gave. */
void settings_free(tq_lua_kv *kvs, int *sealed, size_t n);

/* ---- run store (run_store.c) ---- */

typedef struct run_row {
  int64_t id;
  char *action;
  char *status;
  char *input;    /* JSON {"collection": NAME} or {"values": [...]} */
  char *settings; /* JSON object of the overrides, secrets sealed (settings_put) */
  int concurrency;
  int64_t workflow_id, last_id, total, enriched, not_found, failed, skipped;
  int64_t retry_of;   /* the run whose failed items this one retries; 0: none */
  char *owner;        /* the process running it, "host boot-id pid" (see run_owner_self) */
  int64_t updated_at; /* its heartbeat while running */
  const char *origin; /* run_store_create: recorded on the run (borrowed; NULL: none) */
  double seconds;
} run_row;

/* Creates the run, owned by this process. */
tq_code run_store_create(tq_lib *lib, run_row *r, tq_err *err);
/* Takes over run r (as loaded) for this process: one conditional UPDATE that succeeds only if
 * nobody changed the run since it was loaded (status, owner and heartbeat as in r), so that of
 * two processes resuming the same run one gets it and the other TQ_EDENIED. */
tq_code run_store_claim(tq_lib *lib, const run_row *r, tq_err *err);
/* Refreshes the heartbeat of run id (autocommit). */
tq_code run_store_heartbeat(tq_lib *lib, int64_t id, tq_err *err);

/* This process as a run owner: "host boot-id pid". */
const char *run_owner_self(void);
/* Whether a run with status "running", owner and heartbeat updated_at is still being run at
 * now: on this host (and boot) its process must exist and its heartbeat be recent; on another
 * host its heartbeat must be recent. */
#define RUN_HEARTBEAT_S 5
#define RUN_LEASE_S 60
int run_owner_live(const char *owner, int64_t updated_at, int64_t now);
tq_code run_store_load(tq_lib *lib, int64_t id, run_row *r, tq_err *err);
void run_row_free(run_row *r);
/* Inside the caller's transaction: counts, last_id, seconds, status (NULL: unchanged). */
tq_code run_store_checkpoint(tq_lib *lib, const run_row *r, const char *status, const char *error,
                             tq_err *err);
/* Inside the caller's transaction: the run_items rows of not-found and failed items. The
 * statement is prepared once per connection into *cache (finalize it before closing lib).
 * Strings are borrowed for the call. */
typedef struct run_item {
  int64_t object_id;
  const char *outcome; /* "not_found", "failed" or "skipped" */
  const char *reason;  /* NULL: "" */
} run_item;
struct sqlite3_stmt;
tq_code run_store_items(tq_lib *lib, struct sqlite3_stmt **cache, int64_t run_id,
                        const run_item *items, size_t n, tq_err *err);

/* schema.c: brings the workflow (and feed) tables to the parts' level when the connection
 * can (cheap once current; a read-only connection or an open transaction is left as it is). */
tq_code wf_tables(tq_lib *lib, tq_err *err);

#endif
