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
#include "tqhost/feed.h"
#include "tqhost/library.h"
#include "tqhost/lua.h"
#include "tqhost/plugin.h"

/* The workflow part's tables (workflows, runs, run_items) and the feed part's, brought to their
 * level on a writable connection outside a transaction (see tq_feed_migrate); a library made
 * before the parts owned them keeps its rows. */
tq_code tq_workflow_migrate(tq_lib *lib, tq_err *err);

/* ---- actions ------------------------------------------------------------------------------- */

typedef struct tq_action tq_action; /* a loaded action file */

/* The actions folder: tq_host_dir(TQ_DIR_ACTIONS) ($TQHOST_ACTIONS, the host configuration,
 * the installed folder). */
const char *tq_action_dir(void);

/* A host that keeps a plugin registry (tqhost serve: plugin/snapshot.c) makes every action
 * load of the process take its plugin's active version from it instead of reading the
 * plugin's folder: get fills *p and *src (borrowed) and *hold (given back to release when the
 * action is freed) and returns 1, or returns 0 to have the folder read. A run then loads its
 * script and lib modules from *src, once: every item of a bulk run, workflow run or resumed
 * run is done by one version, and a broken newer version on disk is not the one run.
 * Process-wide; set once, before any action is loaded (NULL, NULL: the folder again). */
typedef int (*tq_action_plugin_get_fn)(const char *plugins_dir, const char *name,
                                       const tq_plugin **p, const struct tq_plugin_src **src,
                                       void **hold);
void tq_action_plugin_source(tq_action_plugin_get_fn get, void (*release)(void *hold));
/* Loads actions_dir/<name>.yaml. TQ_ENOTFOUND names the file when there is none. */
tq_code tq_action_find(const char *actions_dir, const char *name, tq_action **out, tq_err *err);
/* Loads and validates one action file and the plugin it names (from tq_plugin_dir()). Every
 * schema violation and semantic error is added to diags (may be NULL) as
 * "file:line:col: path: what"; the first one is also in err. */
tq_code tq_action_load(const char *path, tq_action **out, tq_diags *diags, tq_err *err);
/* tq_action_load and what a run would find only when it starts: the script returns entry
 * (and batch_entry), input.indicator_types are ones the plugin's operation of the same entry
 * (else any of its operations) accepts, a setting that is a plugin field has its type.
 * Errors go to diags as for tq_action_load ("file:line:col: path: what"). The plugin is
 * looked up in plugins_dir (NULL: tq_plugin_dir()). */
tq_code tq_action_check(const char *path, const char *plugins_dir, tq_diags *diags, tq_err *err);
/* `tqhost plugin check DIR`, the actions half: tq_action_check on every DIR/actions/ *.yaml,
 * the plugin looked up in DIR's parent folder; every problem added to d (an error without
 * diagnostics as its message). Returns how many files were checked (0: no actions folder). */
size_t tq_action_check_dir(const char *dir, tq_diags *d);
void tq_action_free(tq_action *a);
const char *tq_action_name(const tq_action *a);
const char *tq_action_label(const tq_action *a);
const char *tq_action_version(const tq_action *a);
const char *tq_action_description(const tq_action *a);
const char *tq_action_plugin_name(const tq_action *a);
/* The plugin entry (Lua function) the action runs per object (borrowed from a). */
const char *tq_action_entry(const tq_action *a);
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
  int max_auth_failures;   /* the run stops ("failed") after this many 401/403 answers in a
                              row; 0: TQ_ACTION_AUTH_FAILURES_DEFAULT */
  int64_t retry_failed;    /* > 0: the input is the failed items of this run (its action must
                              be the one run; its recorded settings apply under o's) */
  /* For a host that runs runs on threads of its own (the server). stop: non-NULL, no signal
   * handler is installed and the run stops ("interrupted", checkpointed) once *stop is
   * non-zero (borrowed; set from any thread). origin: recorded on new runs ("api",
   * "schedule"; NULL: the command line); a server resumes its own runs at start. started:
   * called on the run's thread once the run's row exists (new or resumed), before any item. */
  volatile int *stop;
  const char *origin;
  void (*started)(void *ud, int64_t run_id);
  void *started_ud;
} tq_action_opts;
#define TQ_ACTION_AUTH_FAILURES_DEFAULT 5

typedef struct tq_run_summary {
  int64_t run_id;
  char status[16]; /* "done" | "interrupted" | "failed" */
  int64_t total, enriched, not_found, failed;
  int64_t skipped; /* objects the action does not accept (their type) */
  double seconds;
  char error[256]; /* why a run as a whole failed */
} tq_run_summary;

/* Runs a over the collection, the values or the failed items of a run (retry_failed) of o.
 * Objects whose type the action does not accept are counted skipped. Items are processed in object
 * id order and committed in batches with a checkpoint; SIGINT/SIGTERM (handlers installed for the
 * call) stop the run gracefully with status "interrupted". Returns TQ_OK when the run ran (whatever
 * its status; see out->status), an error when it could not start (bad option, unknown
 * collection, missing API key, database error). */
tq_code tq_action_run(tq_lib *lib, const tq_action *a, const tq_action_opts *o, tq_run_summary *out,
                      tq_err *err);
/* Continues run run_id after its last committed item, with the action, input and settings
 * recorded on it (o->overrides, e.g. a secret not recorded, are applied over them; o's
 * collection/values are ignored). A run already "done" is TQ_EINVAL, and so is a run that
 * another live process runs (its owner and heartbeat say so: TQ_EDENIED naming the process);
 * a run whose process died is taken over with one conditional update, so that of two
 * processes resuming it at once only one does. */
tq_code tq_action_resume(tq_lib *lib, int64_t run_id, const tq_action_opts *o, tq_run_summary *out,
                         tq_err *err);

/* ---- run history --------------------------------------------------------------------------------
 */

typedef struct tq_run_info {
  int64_t id, workflow_id;
  char action[128];
  char status[16]; /* "running" (or killed while running) | "done" | "interrupted" | "failed" */
  char state[40];  /* status, or "interrupted (process died)" for a "running" run whose process
                      is gone (see `live`) */
  int live;        /* "running" and its process is alive (heartbeat within the lease) */
  char owner[128]; /* the process that runs or ran it: "host boot-id pid" */
  char input[256]; /* "collection NAME", "N values" or "failed items of run N" */
  int64_t total, enriched, not_found, failed, skipped, last_id;
  int64_t retry_of; /* the run whose failed items this run retried; 0: none */
  int64_t started_at, updated_at, finished_at; /* Unix s; finished_at 0 while not finished */
  double seconds;                              /* time spent running, over all resumes */
  char error[256];
  char origin[16]; /* "api", "schedule" or "" (the command line) */
  int cancelled;   /* stopped by a cancel: not resumed by a server at start */
} tq_run_info;

/* The most recent runs first (limit 0: all). *out malloc'd (free()). */
tq_code tq_run_list(tq_lib *lib, size_t limit, tq_run_info **out, size_t *n, tq_err *err);
tq_code tq_run_get(tq_lib *lib, int64_t run_id, tq_run_info *out, tq_err *err);

/* Marks run run_id cancelled (a cancel asked for; its thread stops it) or not. TQ_ENOTFOUND
 * for an unknown run. */
tq_code tq_run_set_cancelled(tq_lib *lib, int64_t run_id, int cancelled, tq_err *err);
/* The runs a server resumes at start: started by a server (origin set), not cancelled, not in
 * a workflow (tq_workflow_tick resumes those), "interrupted" or "running" with a dead process;
 * oldest first. *ids malloc'd (free()). */
tq_code tq_run_resumable(tq_lib *lib, int64_t **ids, size_t *n, tq_err *err);

/* Not-found and failed items of a run grouped by outcome and reason, largest group first. */
typedef struct tq_run_reason {
  char outcome[16]; /* "not_found" | "failed" */
  char *reason;
  int64_t count;
  int64_t example_id; /* one object of the group */
} tq_run_reason;
tq_code tq_run_reasons(tq_lib *lib, int64_t run_id, tq_run_reason **out, size_t *n, tq_err *err);
void tq_run_reasons_free(tq_run_reason *r, size_t n);

/* The items of a run with one outcome ("failed", "skipped", "not_found"), in object id order:
 * the object's id, type and value (empty when the object was deleted since) and the reason. */
typedef struct tq_run_item_info {
  int64_t object_id;
  char *indicator_type; /* or the object type for other objects */
  char *value;
  char *reason;
} tq_run_item_info;
tq_code tq_run_items(tq_lib *lib, int64_t run_id, const char *outcome, tq_run_item_info **out,
                     size_t *n, tq_err *err);
void tq_run_items_free(tq_run_item_info *items, size_t n);

/* ---- workflows ------------------------------------------------------------------------------
 * A workflow is a data collection, one or more actions run over it in order, settings that
 * override the actions' defaults, and an optional schedule (ThreatQ's: every 1h, 6h, 24h, 2d,
 * 14d or 30d; daily at HH:MM; weekly on a day at HH:MM; times in UTC). `tqhost workflow tick`
 * runs every due workflow once and polls every due feed: call it from cron. */

typedef struct tq_schedule {
  enum { TQ_SCHED_NONE, TQ_SCHED_EVERY, TQ_SCHED_DAILY, TQ_SCHED_WEEKLY } kind;
  int64_t every_s;  /* TQ_SCHED_EVERY */
  int hour, minute; /* DAILY, WEEKLY (UTC) */
  int weekday;      /* WEEKLY: 0 = Sunday .. 6 = Saturday */
} tq_schedule;

/* Parses "every:3600" / "daily:HH:MM" / "weekly:DOW:HH:MM" (the stored form) or NULL/"" (no
 * schedule). */
tq_code tq_schedule_parse(const char *text, tq_schedule *out, tq_err *err);
/* The stored form of s into out (>= 32 bytes); "" for none. */
void tq_schedule_format(const tq_schedule *s, char *out, size_t n);
/* A person's form: "every 6h", "daily at 02:30 UTC", "weekly on Monday at 08:00 UTC", "manual". */
void tq_schedule_describe(const tq_schedule *s, char *out, size_t n);
/* The first time strictly after `after` at which s is due; 0 for no schedule. */
int64_t tq_schedule_next(const tq_schedule *s, int64_t after);
/* Parses the CLI forms: every ("1h".."30d", ThreatQ's six periods), daily ("HH:MM"), weekly
 * (day name or 0-6, "HH:MM"); pass NULL for the ones not given. */
tq_code tq_schedule_from_cli(const char *every, const char *daily, const char *weekly_day,
                             const char *weekly_time, tq_schedule *out, tq_err *err);

typedef struct tq_workflow {
  int64_t id;
  char *name;
  char *collection;
  char **actions;
  size_t n_actions;
  tq_lua_kv *settings; /* KEY=VALUE overrides of the actions' config */
  int *sealed;         /* per setting, read back: 1 = a password, its value the sealed text */
  size_t n_settings;
  tq_schedule schedule;
  int enabled;
  int64_t last_run_at, next_run_at, created_at; /* 0: never / none */
} tq_workflow;
void tq_workflow_free(tq_workflow *w); /* frees the members and w */

/* Creates a workflow after checking that the collection and every action exist and that each
 * setting is a config field of one of them (value checked by its type). Settings of password
 * fields are stored sealed with the key file at key_path (tq_plugin_key_path), never in clear;
 * tq_workflow_get gives them back still sealed (sealed[i] = 1), tq_workflow_run opens them. */
tq_code tq_workflow_add(tq_lib *lib, const tq_workflow *w, const char *key_path, tq_err *err);
tq_code tq_workflow_get(tq_lib *lib, const char *name, tq_workflow **out, tq_err *err);
/* All workflows by name; free each with tq_workflow_free and the array with free(). */
tq_code tq_workflow_list(tq_lib *lib, tq_workflow ***out, size_t *n, tq_err *err);
tq_code tq_workflow_set_enabled(tq_lib *lib, const char *name, int enabled, tq_err *err);
/* By id; TQ_ENOTFOUND naming it. */
tq_code tq_workflow_get_id(tq_lib *lib, int64_t id, tq_workflow **out, tq_err *err);
/* Replaces workflow w->id's name, collection, actions, schedule, enabled and (with_settings)
 * settings with w's, checked as tq_workflow_add checks them; without with_settings the stored
 * settings stay. A changed schedule, or enabling, counts the next run from now. */
tq_code tq_workflow_update(tq_lib *lib, const tq_workflow *w, int with_settings,
                           const char *key_path, tq_err *err);
tq_code tq_workflow_delete(tq_lib *lib, const char *name, tq_err *err);

/* Called after each action of a workflow run with that action's summary. */
typedef void (*tq_workflow_step_fn)(void *ud, const tq_workflow *w, const char *action, tq_code rc,
                                    const tq_err *err, const tq_run_summary *sum);

/* Runs the workflow's actions in order over its collection (each action's failure is
 * reported through step and does not stop the next one; an interrupted one stops the
 * workflow run), then sets last_run_at = now and the next due time. Where the last workflow run
 * stopped at an interrupted action (Ctrl-C, or a process that died), this run resumes that
 * action's run and goes on from there instead of starting over. A workflow with a run alive in
 * another process is TQ_EDENIED. *n_failed (may be NULL) gets how many actions failed (could
 * not start, failed, were interrupted or had failed items). */
tq_code tq_workflow_run(tq_lib *lib, const tq_workflow *w, const tq_action_opts *base, int64_t now,
                        tq_workflow_step_fn step, void *ud, size_t *n_failed, tq_err *err);

typedef struct tq_tick_counts {
  size_t feeds, feeds_failed; /* feeds polled, and of them failed */
  size_t workflows;           /* workflows run (or resumed) */
  size_t actions_failed;      /* their actions that failed */
} tq_tick_counts;
/* One tick of the scheduler (cron calls `tqhost workflow tick`): polls every due feed, then runs
 * every enabled workflow due at now (next_run_at <= now) once, in name order, and resumes every
 * workflow whose last run was interrupted or whose process died. Work is claimed before it is
 * done (a due feed's last_poll_at, a due workflow's next_run_at, an interrupted run's owner:
 * each one conditional update), so two ticks at once never do the same work twice; a workflow
 * with a run alive in another process is left alone. A workflow that missed several periods
 * runs once. feed_done(feed_ud, ...) after each feed, step(ud, ...) after each action. */
tq_code tq_workflow_tick(tq_lib *lib, const tq_action_opts *base, int64_t now,
                         tq_feed_polled_fn feed_done, void *feed_ud, tq_workflow_step_fn step,
                         void *ud, tq_tick_counts *out, tq_err *err);
/* Appends the workflow's last `limit` runs (newest first) to the JSON array out: run id,
 * start, action, status, items requested, enriched, not found, failed, seconds, error. */
tq_code tq_workflow_activity(tq_lib *lib, int64_t workflow_id, int limit, cJSON *out, tq_err *err);

#endif
