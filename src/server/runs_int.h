/* runs_int.h: between runs.c (the threads that run bulk runs, workflow runs, feed polls and
 * the scheduler) and api_runs.c (their routes). */
#ifndef TQ_RUNS_INT_H
#define TQ_RUNS_INT_H

#include "server_int.h"

/* What a request asks to start; strings malloc'd, owned by the request until handed to
 * tq_runs_start_* (which takes them all, also on failure). */
typedef struct tq_runs_start_req {
  char *action;     /* action runs: the action's name */
  char *collection; /* ... over a collection, or */
  char **values;    /* ... over values */
  size_t n_values;
  tq_lua_kv *sets; /* settings over the action's (key and value malloc'd) */
  size_t n_sets;
  int concurrency;  /* 0: the action's */
  int64_t run_id;   /* resume: the run */
  char *name;       /* workflow runs: the workflow; polls: the feed */
  int64_t retry_of; /* action runs: > 0 runs the failed items of this run (no collection,
                       no values) */
  char who[128];    /* filled by tq_runs_start_* from the request */
  char addr[64];
} tq_runs_start_req;
void tq_runs_req_free(tq_runs_start_req *q);

/* From a handler, after checking q: starts the work on a thread of its own. Runs (action,
 * resume, workflow) suspend the request and their thread answers 202 {"id", "state"} once the
 * run's row exists (audited "run.start"/"run.resume" then), or the error that kept it from
 * starting (400 naming the field, 409, 503 when too many runs are in progress); a poll is
 * answered 202 at once. */
void tq_runs_start_action(tq_req *rq, tq_resp *rs, tq_runs_start_req *q);
void tq_runs_start_resume(tq_req *rq, tq_resp *rs, tq_runs_start_req *q);
void tq_runs_start_workflow(tq_req *rq, tq_resp *rs, tq_runs_start_req *q);
void tq_runs_start_poll(tq_req *rq, tq_resp *rs, tq_runs_start_req *q);
/* Sets the stop flag of the thread running run_id (any thread); 0 when none here runs it. */
int tq_runs_cancel(tq_runs *rn, int64_t run_id);
/* Whether a thread of this server runs run_id now. */
int tq_runs_live(tq_runs *rn, int64_t run_id);

#endif
