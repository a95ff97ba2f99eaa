/* run_int.h: the bulk runner's state, shared by run.c (admission and the event loop),
 * run_commit.c (batches with their checkpoint) and run_progress.c (the progress bar).
 *
 * The window: items enter in object id order (the cursor's order) at the tail of a ring of
 * slots and leave from the head once done. Only a prefix of done slots is ever committed, so
 * the checkpoint "everything up to last_id is accounted for" is true after every commit, even
 * when later items finished first. */
#ifndef TQ_RUN_INT_H
#define TQ_RUN_INT_H

#include <pthread.h>

#include "action_int.h"

enum slot_state { SLOT_WAIT_BATCH = 1, SLOT_RUNNING, SLOT_DONE };
enum outcome { OUT_ENRICHED = 1, OUT_NOT_FOUND, OUT_FAILED, OUT_SKIPPED };

struct runner;

typedef struct slot {
  int64_t id;
  int state;
  int outcome;
  char *reason;        /* failed / not found: why (malloc'd) */
  tq_changeset cs;     /* enriched: what to write */
  tq_lua_run *run;     /* single mode, while running */
  struct chunk *chunk; /* batch mode, while running */
  tq_object *obj;      /* batch mode, while waiting: the object's row (its indicator type
                          groups the chunks), without its lists */
  struct runner *r;
} slot;

/* One call of the batch entry over several slots. */
typedef struct chunk {
  struct runner *r;
  slot **slots;
  size_t n;
  tq_lua_run *run;
} chunk;

/* A batch of done items moved out of the window, with the checkpoint it ends with. */
typedef struct run_job {
  slot *slots;
  size_t n;
  int64_t last_id;
  double seconds;
  const char *status; /* the run's status with this checkpoint (final job), or NULL */
  const char *error;
} run_job;

/* The writer thread: writes one job at a time on a connection of its own (run_commit.c). */
typedef struct run_writer {
  int started;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  tq_lib *lib;                  /* the writer's own connection to the runner's library */
  struct sqlite3_stmt *item_st; /* run_store_items' statement on lib */
  run_job job;                  /* the job being written, while has_job */
  int has_job;
  int stop;
  run_row row; /* the checkpoint as last committed by the writer (counts, last_id) */
  int failed;  /* a write failed: err says why; the run stops */
  tq_err err;
} run_writer;

typedef struct runner {
  tq_lib *lib;
  const tq_action *a;
  const tq_action_opts *o;
  tq_plugin view; /* the plugin with the action's network and limits (shallow copy) */
  action_cfg cfg;
  tq_plugin_policy pp;
  tq_net *net;
  tq_net_provider *prov;
  tq_lua *rt;
  tq_lua_script *script;
  int conc;
  int batch_mode;
  /* write filters from the configuration */
  char **keep_attrs; /* NULL: all */
  size_t n_keep_attrs;
  int no_attrs, no_links, no_indicators;
  /* the input: a cursor over a collection, or sorted explicit ids */
  tq_query query;
  tq_cursor *cur;
  int64_t page[512];
  size_t page_n, page_i;
  int64_t *ids;
  size_t n_ids, ids_i;
  int64_t after_id;
  int eof;
  /* the objects (own rows) of the next input ids, read TQ_LIB_HEADS_MAX at a time */
  tq_object *heads[TQ_LIB_HEADS_MAX];
  int64_t head_ids[TQ_LIB_HEADS_MAX];
  size_t heads_n, heads_i;
  /* the window */
  slot *slots;
  size_t cap, head, count;
  size_t active; /* runs in flight */
  /* the checkpoint and counts */
  run_row row;
  double seconds_before;
  int64_t t0_ms, last_commit_ms, last_beat_ms;
  /* progress */
  int progress;
  int64_t done_session, failed_session, last_draw_ms;
  int64_t committed_before; /* items accounted for when this session started */
  int64_t failed_before;
  tq_err fatal;
  int has_fatal;
  run_writer writer;
  struct sqlite3_stmt *item_st; /* run_store_items' statement on the runner's lib */
} runner;

slot *runner_slot(runner *r, size_t k); /* the k-th slot from the head */
void slot_clear(slot *s);
void runner_fail(runner *r, const tq_err *err);

/* run_commit.c: commits the done prefix (all of it when final); counts and checkpoint in the
 * same transaction. status non-NULL: also set the run's status (final checkpoint). */
tq_code run_commit_due(runner *r, int final, const char *status, tq_err *err);
/* Starts the writer thread (not for dry runs nor in-memory libraries: the runner then writes
 * itself), after the run's row exists; run_writer_stop joins it (a job in hand is finished
 * first). */
tq_code run_writer_start(runner *r, tq_err *err);
void run_writer_stop(runner *r);
/* Applies the write filters to a change set. */
void run_filter_changes(const runner *r, tq_changeset *cs);

/* run_progress.c */
void run_progress_draw(runner *r, int force);
void run_progress_end(runner *r);

#endif
