/* workflow.h: Actions, the bulk runner and its job history; (later) workflows and the scheduler.
 *
 * An *action* is a YAML file actions/<name>.yaml (schemas/action.schema.json) that runs a
 * plugin's Lua entry over many objects: a data collection walked with the library's keyset
 * cursor, or explicit values. The runner admits runs under the action's concurrency and the
 * provider's token bucket (the provider is named after the plugin, so an action and an
 * operation of the same product share it), writes change sets in batches, each batch in one
 * transaction with a checkpoint of the run (`runs` row: last committed object id and counts;
 * `run_items` rows: not-found and failed items with their reason). A run stopped by SIGINT or
 * SIGTERM commits what is complete and ends "interrupted"; a run killed outright is resumed
 * from its last checkpoint by tq_action_resume. See docs/actions.md.
 *
 * Ownership: every pointer returned through an out-parameter is owned by the caller and freed
 * with the *_free function named beside it; inputs are borrowed for the call.
 * Threads: one tq_lib per thread; a run uses one thread (one tq_lua, one tq_net). */
#ifndef TQHOST_WORKFLOW_H
#define TQHOST_WORKFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "tqhost/core.h"
#include "tqhost/library.h"
#include "tqhost/lua.h"
#include "tqhost/plugin.h"

/* ---- actions ------------------------------------------------------------------------------- */

typedef struct tq_action tq_action; /* a loaded action file */

/* The actions folder: $TQHOST_ACTIONS, else ./actions. */
const char *tq_action_dir(void);
/* Loads actions_dir/<name>.yaml. TQ_ENOTFOUND names the file when there is none. */
tq_code tq_action_find(const char *actions_dir, const char *name, tq_action **out, tq_err *err);
/* Loads and validates one action file and the plugin it names (from tq_plugin_dir()). Every
 * schema violation and semantic error is added to diags (may be NULL) as
 * "file:line:col: path: what"; the first one is also in err. */
tq_code tq_action_load(const char *path, tq_action **out, tq_diags *diags, tq_err *err);
void tq_action_free(tq_action *a);
const char *tq_action_name(const tq_action *a);
const char *tq_action_label(const tq_action *a);
const char *tq_action_version(const tq_action *a);
const char *tq_action_description(const tq_action *a);
const char *tq_action_plugin_name(const tq_action *a);
/* The action's own config fields (borrowed from a). */
const tq_plugin_field *tq_action_fields(const tq_action *a, size_t *n);
/* The indicator types it accepts (canonical names; n = 0: any). */
const char *const *tq_action_indicator_types(const tq_action *a, size_t *n);
int tq_action_concurrency(const tq_action *a);
int tq_action_batch_size(const tq_action *a);

/* Every action of the folder, sorted by name; files that fail to load are reported in diags
 * (may be NULL) and skipped. Free with tq_action_list_free. */
tq_code tq_action_list(const char *actions_dir, tq_action ***out, size_t *n, tq_diags *diags,
                       tq_err *err);
void tq_action_list_free(tq_action **list, size_t n);

/* ---- running ----------------------------------------------------------------------------------
 */

typedef struct tq_action_opts {
  const char *collection;    /* a collection name, or: */
  const char *const *values; /* explicit indicator values */
  size_t n_values;
  const tq_lua_kv *overrides; /* --set KEY=VALUE / workflow settings */
  size_t n_overrides;
  int concurrency;         /* 0: the action's */
  int dry_run;             /* run, but write nothing (no run row) */
  int progress;            /* progress bar on stderr when a TTY */
  const char *db_path;     /* for the plugin key file */
  int64_t workflow_id;     /* 0: none; recorded on the run */
  double rate_per_s;       /* > 0: overrides network.rate_limit */
  const char *plugins_dir; /* NULL: tq_plugin_dir() */
} tq_action_opts;

typedef struct tq_run_summary {
  int64_t run_id;
  char status[16]; /* "done" | "interrupted" | "failed" */
  int64_t total, enriched, not_found, failed;
  double seconds;
  char error[256]; /* why a run as a whole failed */
} tq_run_summary;

/* Runs a over the collection or values of o. Items are processed in object id order and
 * committed in batches with a checkpoint; SIGINT/SIGTERM (handlers installed for the call)
 * stop the run gracefully with status "interrupted". Returns TQ_OK when the run ran (whatever
 * its status; see out->status), an error when it could not start (bad option, unknown
 * collection, missing API key, database error). */
tq_code tq_action_run(tq_lib *lib, const tq_action *a, const tq_action_opts *o, tq_run_summary *out,
                      tq_err *err);
/* Continues run run_id after its last committed item, with the action, input and settings
 * recorded on it (o->overrides, e.g. a secret not recorded, are applied over them; o's
 * collection/values are ignored). A run already "done" is TQ_EINVAL. */
tq_code tq_action_resume(tq_lib *lib, int64_t run_id, const tq_action_opts *o, tq_run_summary *out,
                         tq_err *err);

/* ---- run history --------------------------------------------------------------------------------
 */

typedef struct tq_run_info {
  int64_t id, workflow_id;
  char action[128];
  char status[16]; /* "running" (or killed while running) | "done" | "interrupted" | "failed" */
  char input[256]; /* "collection NAME" or "N values" */
  int64_t total, enriched, not_found, failed, last_id;
  int64_t started_at, updated_at, finished_at; /* Unix s; finished_at 0 while not finished */
  double seconds;                              /* time spent running, over all resumes */
  char error[256];
} tq_run_info;

/* The most recent runs first (limit 0: all). *out malloc'd (free()). */
tq_code tq_run_list(tq_lib *lib, size_t limit, tq_run_info **out, size_t *n, tq_err *err);
tq_code tq_run_get(tq_lib *lib, int64_t run_id, tq_run_info *out, tq_err *err);

/* Not-found and failed items of a run grouped by outcome and reason, largest group first. */
typedef struct tq_run_reason {
  char outcome[16]; /* "not_found" | "failed" */
  char *reason;
  int64_t count;
  int64_t example_id; /* one object of the group */
} tq_run_reason;
tq_code tq_run_reasons(tq_lib *lib, int64_t run_id, tq_run_reason **out, size_t *n, tq_err *err);
void tq_run_reasons_free(tq_run_reason *r, size_t n);

#endif
