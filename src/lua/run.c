/* run.c: runs and their scheduler. A run is a coroutine with its own _ENV (an empty table
 * whose shared metatable reads the base); it is queued at start, resumed by tq_lua_step, and
 * parks in RUN_WAITING while tq_net does its I/O. Net callbacks only mark a run ready
 * (run_mark_ready); resuming always happens here, from the step's own frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua_int.h"

const char *tq_lua_status_name(tq_lua_status s) {
  switch (s) {
  case TQ_LUA_ACTIVE: return "active";
  case TQ_LUA_OK: return "ok";
  case TQ_LUA_FAILED: return "failed";
  case TQ_LUA_ERROR: return "error";
  case TQ_LUA_KILLED: return "killed";
  }
  return "unknown";
}

/* ---- lists ------------------------------------------------------------------------------------
 */

static void ready_push(tq_lua *rt, tq_lua_run *run) {
  run->in_ready = 1;
  rt->n_resumable += run->started;
  run->next_ready = NULL;
  if (rt->ready_tail)
    rt->ready_tail->next_ready = run;
  else
    rt->ready_head = run;
  rt->ready_tail = run;
}

static tq_lua_run *ready_pop(tq_lua *rt) {
  tq_lua_run *run = rt->ready_head;
  if (run) {
    rt->ready_head = run->next_ready;
    if (rt->ready_head == NULL)
      rt->ready_tail = NULL;
    run->next_ready = NULL;
    run->in_ready = 0;
    rt->n_resumable -= run->started;
  }
  return run;
}

static void ready_remove(tq_lua *rt, tq_lua_run *run) {
  if (!run->in_ready)
    return;
  run->in_ready = 0;
  rt->n_resumable -= run->started;
  tq_lua_run **pp = &rt->ready_head;
  tq_lua_run *prev = NULL;
  while (*pp && *pp != run) {
    prev = *pp;
    pp = &(*pp)->next_ready;
  }
  if (*pp == NULL)
    return;
  *pp = run->next_ready;
  if (rt->ready_tail == run)
    rt->ready_tail = prev;
}

static void finished_remove(tq_lua *rt, tq_lua_run *run) {
  for (tq_lua_run **pp = &rt->finished; *pp; pp = &(*pp)->next_finished) {
    if (*pp == run) {
      *pp = run->next_finished;
      return;
    }
  }
}

/* Called by the net callback (through http.c) once the run's response is stored, and by
 * the scheduler when a sleep is over. */
void run_mark_ready(tq_lua_run *run) {
  run->state = RUN_QUEUED;
  run->wake_ms = 0;
  ready_push(run->rt, run);
}

void run_sleep(tq_lua_run *run, int64_t wake_ms) {
  if (wake_ms > run->deadline_ms)
    wake_ms = run->deadline_ms;
  run->wake_ms = wake_ms > 0 ? wake_ms : 1;
  run->state = RUN_WAITING;
  run->rt->n_sleeping++;
}

/* ---- creating a run ---------------------------------------------------------------------------
 */

/* Records the traceback of an error raised under lua_pcall into the run, keeping the error
 * value as it is. */
static int run_msgh(lua_State *L) {
  tq_lua_run *run = run_of(L);
  if (run && run->traceback == NULL && run->kill == KILL_NONE) {
    luaL_traceback(L, L, NULL, 1);
    run->traceback = redact_dup(run->script, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return 1;
}

static int64_t now_us(void) { return tq_time_now_us(); }

static tq_lua_run *run_alloc(tq_lua *rt, tq_lua_script *s) {
  tq_lua_run *run = calloc(1, sizeof *run);
  if (run == NULL)
    return NULL;
  run->rt = rt;
  run->script = s;
  s->refs++;
  run->id = rt->next_run_id++;
  run->co_ref = run->env_ref = LUA_NOREF;
  tq_changeset_init(&run->cs);
  run->started_us = now_us();
  run->started_ms = tq_mono_ms();
  run->deadline_ms = run->started_ms + s->limits.timeout_ms;
  run->next = rt->active;
  if (rt->active)
    rt->active->prev = run;
  rt->active = run;
  rt->n_active++;
  run->all_next = rt->all;
  if (rt->all)
    rt->all->all_prev = run;
  rt->all = run;
  return run;
}

/* Creates the coroutine and the run's _ENV and calls the compiled chunk with it, leaving the
 * entries table on the coroutine's stack. Everything is charged to the run. Returns LUA_OK or
 * the error status with the error value on the coroutine's stack. */
static int run_prepare_protected(lua_State *L) {
  tq_lua_run *run = lua_touserdata(L, 1);
  tq_lua *rt = run->rt;
  lua_State *co = lua_newthread(L);
  run->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  *(tq_lua_run **)lua_getextraspace(co) = run;
  run->co = co;
  lua_createtable(L, 0, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->env_mt_ref);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  run->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int run_prepare(tq_lua_run *run) {
  tq_lua *rt = run->rt;
  lua_State *L = rt->L;
  rt->cur = run;
  lua_pushcfunction(L, run_prepare_protected);
  lua_pushlightuserdata(L, run);
  int st = lua_pcall(L, 1, 0, 0);
  if (st != LUA_OK) {
    rt->cur = NULL;
    lua_pop(L, 1);
    run->co = NULL; /* the caller reports "out of memory creating the run" */
    return st;
  }
  lua_State *co = run->co; /* its budget hook comes from watch.c if it runs long */
  lua_pushcfunction(co, run_msgh);
  lua_rawgeti(co, LUA_REGISTRYINDEX, run->script->chunk_ref);
  lua_rawgeti(co, LUA_REGISTRYINDEX, run->env_ref);
  watch_enter(rt, run);
  st = lua_pcall(co, 1, 1, 1);
  watch_leave(rt, run);
  lua_remove(co, 1);
  rt->cur = NULL;
  return st;
}

/* ---- finishing --------------------------------------------------------------------------------
 */

static void run_unlink_active(tq_lua_run *run) {
  tq_lua *rt = run->rt;
  if (run->prev)
    run->prev->next = run->next;
  else if (rt->active == run)
    rt->active = run->next;
  if (run->next)
    run->next->prev = run->prev;
  run->next = run->prev = NULL;
  rt->n_active--;
}

/* The error value at idx of co as text: strings and numbers as they are, secrets masked,
 * anything else by its type (no metamethod runs on the host's side). */
static char *error_text(const tq_lua_run *run, lua_State *co, int idx) {
  int t = lua_type(co, idx);
  if (t == LUA_TSTRING || t == LUA_TNUMBER)
    return redact_dup(run->script, lua_tostring(co, idx));
  if (secret_test(co, idx, NULL, NULL))
    return tq_strdup(SECRET_MASK);
  char buf[64];
  snprintf(buf, sizeof buf, "(error object is a %s value)", lua_typename(co, t));
  return tq_strdup(buf);
}

static void run_log_result(const tq_lua_run *run) {
  const char *plugin = run->script ? run->script->name : "?";
  const char *obj = run->object ? run->object : "";
  switch (run->status) {
  case TQ_LUA_ERROR:
    tq_log(TQ_LOG_ERROR, LUA_PART, "plugin=%s run=%llu object=%s error: %s\n%s", plugin,
           (unsigned long long)run->id, obj, run->message, run->traceback ? run->traceback : "");
    break;
  case TQ_LUA_KILLED:
    tq_log(TQ_LOG_WARN, LUA_PART, "plugin=%s run=%llu object=%s killed: %s", plugin,
           (unsigned long long)run->id, obj, run->message);
    break;
  case TQ_LUA_FAILED:
    tq_log(TQ_LOG_INFO, LUA_PART, "plugin=%s run=%llu object=%s failed: %s", plugin,
           (unsigned long long)run->id, obj, run->message);
    break;
  default: break;
  }
}

/* Moves the run to DONE with status and message (taken), releases its Lua objects and its
 * script, and queues its done callback. */
static void run_finish(tq_lua_run *run, tq_lua_status status, char *message) {
  tq_lua *rt = run->rt;
  if (run->state == RUN_DONE) {
    free(message);
    return;
  }
  ready_remove(rt, run);
  if (run->wake_ms > 0) {
    rt->n_sleeping--;
    run->wake_ms = 0;
  }
  run->state = RUN_DONE;
  run->status = status;
  run->message = message ? message : tq_strdup("");
  run->elapsed_us = now_us() - run->started_us;
  run_log_result(run);
  if (rt->L) {
    luaL_unref(rt->L, LUA_REGISTRYINDEX, run->co_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, run->env_ref);
  }
  run->co_ref = run->env_ref = LUA_NOREF;
  run->co = NULL;
  run_unlink_active(run);
  tq_lua_script_free(run->script);
  run->script = NULL;
  run->next_finished = rt->finished;
  rt->finished = run;
}

static char *kill_text(const tq_lua_run *run) {
  const tq_lua_limits *lim = &run->script->limits;
  char buf[128];
  switch (run->kill) {
  case KILL_MEMORY:
    snprintf(buf, sizeof buf, "memory budget exceeded (%zu KiB)", lim->memory / 1024);
    break;
  case KILL_INSTRUCTIONS:
    snprintf(buf, sizeof buf, "instruction budget exceeded (%llu instructions)",
             (unsigned long long)lim->instructions);
    break;
  case KILL_TIMEOUT:
    snprintf(buf, sizeof buf, "timeout: run exceeded %lld ms", (long long)lim->timeout_ms);
    break;
  default: snprintf(buf, sizeof buf, "run cancelled"); break;
  }
  if (run->kill_site) {
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof buf - n, " in %s", run->kill_site);
  }
  return tq_strdup(buf);
}

/* An error status from the coroutine: killed (budget), or a bug with its traceback. */
static void run_finish_error(tq_lua_run *run, int st, int traced) {
  lua_State *co = run->co;
  if (run->kill != KILL_NONE) {
    run_finish(run, TQ_LUA_KILLED, kill_text(run));
    return;
  }
  if (st == LUA_ERRMEM) {
    run_finish(run, TQ_LUA_KILLED,
               tq_strdup("out of memory: the runtime's memory cap was "
                         "reached"));
    return;
  }
  char *msg = error_text(run, co, -1);
  if (!traced && run->traceback == NULL) {
    luaL_traceback(run->rt->L, co, NULL, 0);
    run->traceback = redact_dup(run->script, lua_tostring(run->rt->L, -1));
    lua_pop(run->rt->L, 1);
  }
  run_finish(run, TQ_LUA_ERROR, msg);
}

/* Stores a table returned by the entry as the change set's show value (unless ctx:show was
 * called). Runs protected on the finished coroutine: a cycle or a function is an error. */
static int store_returned_show(lua_State *L) {
  tq_lua_run *run = run_of(L);
  size_t charged = 0;
  cJSON *show = show_from_lua(L, 1, "entry result", &charged);
  if (run->cs.show == NULL) {
    run->cs.show = show;
    run->show_charge = charged;
  } else {
    cJSON_Delete(show);
    run_uncharge(run, charged);
  }
  return 0;
}

/* The entry returned: nothing (ok), nil, "reason" (failed), or a table to show (ok). */
static void run_finish_ok(tq_lua_run *run, int nres) {
  lua_State *co = run->co;
  int first = lua_gettop(co) - nres + 1;
  if (nres >= 1 && lua_isnil(co, first)) {
    char *why = nres >= 2 ? error_text(run, co, first + 1) : tq_strdup("no reason given");
    run_finish(run, TQ_LUA_FAILED, why);
    return;
  }
  if (nres >= 1 && lua_istable(co, first)) {
    lua_pushcfunction(co, store_returned_show);
    lua_pushvalue(co, first);
    run->rt->cur = run;
    int st = lua_pcall(co, 1, 0, 0);
    run->rt->cur = NULL;
    if (st != LUA_OK && run->kill != KILL_NONE) { /* its memory budget ran out */
      run_finish(run, TQ_LUA_KILLED, kill_text(run));
      return;
    }
    if (st != LUA_OK) {
      run_finish(run, TQ_LUA_ERROR, error_text(run, co, -1));
      return;
    }
  }
  run_finish(run, TQ_LUA_OK, NULL);
}

static void run_resume(tq_lua_run *run) {
  tq_lua *rt = run->rt;
  int nres = 0;
  rt->cur = run;
  int nargs = run->nargs;
  run->nargs = 0;
  run->started = 1;
  watch_enter(rt, run);
  int st = lua_resume(run->co, rt->L, nargs, &nres);
  watch_leave(rt, run);
  rt->cur = NULL;
  if (st == LUA_YIELD) {
    lua_pop(run->co, nres);
    return;
  }
  if (st == LUA_OK)
    run_finish_ok(run, nres);
  else
    run_finish_error(run, st, 0);
}

/* ---- public: starting ----------------------------------------------------------------------- */

/* What push_entry_args pushes: the entry and one object (obj), or a list of n (objs). */
typedef struct entry_args {
  const char *entry;
  const tq_object *obj;
  const tq_object *const *objs;
  size_t n;
} entry_args;

/* Pushes the entry function and its two arguments (obj or the read-only list of the items'
 * views, then ctx) on the coroutine in place of the entries table. Protected: obj_push
 * allocates. Runs outside the run's watch (no budget hook), so it reads the entries table
 * raw, as run_probe_entries does. */
static int push_entry_args(lua_State *L) {
  tq_lua_run *run = run_of(L);
  const entry_args *ea = lua_touserdata(L, 1);
  lua_pushstring(L, ea->entry);
  if (lua_rawget(L, 2) != LUA_TFUNCTION) /* raw: no metamethod of the script runs here */
    return luaL_error(L, "entry '%s' is not a function", ea->entry);
  if (ea->objs) {
    lua_createtable(L, (int)ea->n, 0);
    for (size_t i = 0; i < ea->n; i++) {
      obj_push(L, ea->objs[i], run->script->obj_lists_later);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    freeze_view(L, -1, "items");
    lua_remove(L, -2);
  } else {
    obj_push(L, ea->obj, run->script->obj_lists_later);
  }
  ctx_push(L, run);
  return 3;
}

static tq_code run_start(tq_lua *rt, tq_lua_script *script, const entry_args *ea, const char *label,
                         tq_lua_done_fn done, void *ud, tq_lua_run **out, tq_err *err) {
  const char *entry = ea->entry;
  if (entry == NULL || !tq_lua_script_has_entry(script, entry))
    return tq_err_set(err, TQ_ENOTFOUND, "lua: plugin '%s' has no entry '%s'", script->name,
                      entry ? entry : "(null)");
  tq_lua_run *run = run_alloc(rt, script);
  if (run == NULL)
    return tq_err_set(err, TQ_ENOMEM, "lua: out of memory starting a run");
  run->done = done;
  run->done_ud = ud;
  if (label)
    run->object = tq_strdup(label);
  *out = run;
  if (ea->objs && ea->n > 0) {
    run->items = calloc(ea->n, sizeof *run->items);
    if (run->items == NULL) {
      run_finish(run, TQ_LUA_KILLED, tq_strdup("out of memory creating the run"));
      return TQ_OK;
    }
    run->n_items = ea->n;
    run->mem += (int64_t)(ea->n * sizeof *run->items); /* charged to the run like its sets */
    for (size_t i = 0; i < ea->n; i++)
      tq_changeset_init(&run->items[i].cs);
  }
  int st = run_prepare(run);
  if (run->co == NULL) {
    run_finish(run, TQ_LUA_KILLED, tq_strdup("out of memory creating the run"));
    return TQ_OK;
  }
  if (st != LUA_OK) {
    run_finish_error(run, st, 1);
    return TQ_OK;
  }
  lua_State *co = run->co;
  lua_pushcfunction(co, push_entry_args);
  lua_pushlightuserdata(co, (void *)ea);
  lua_pushvalue(co, -3);
  rt->cur = run;
  st = lua_pcall(co, 2, 3, 0);
  rt->cur = NULL;
  if (st != LUA_OK) {
    run_finish_error(run, st, 1);
    return TQ_OK;
  }
  lua_remove(co, 1); /* the entries table: only fn, obj (or items), ctx stay */
  run->nargs = 2;
  run->state = RUN_QUEUED;
  ready_push(rt, run);
  return TQ_OK;
}

tq_code tq_lua_run_start(tq_lua *rt, tq_lua_script *script, const char *entry, const tq_object *obj,
                         tq_lua_done_fn done, void *ud, tq_lua_run **out, tq_err *err) {
  entry_args ea = {.entry = entry, .obj = obj};
  return run_start(rt, script, &ea, obj ? obj->value : NULL, done, ud, out, err);
}

tq_code tq_lua_run_start_batch(tq_lua *rt, tq_lua_script *script, const char *entry,
                               const tq_object *const *objs, size_t n, tq_lua_done_fn done,
                               void *ud, tq_lua_run **out, tq_err *err) {
  if (n == 0)
    return tq_err_set(err, TQ_EINVAL, "lua: a batch run needs at least one object");
  entry_args ea = {.entry = entry, .objs = objs, .n = n};
  char label[48];
  snprintf(label, sizeof label, "batch of %zu objects", n);
  return run_start(rt, script, &ea, label, done, ud, out, err);
}

/* Runs the script's chunk once in a throw-away run and records the names of its entries. */
tq_code run_probe_entries(tq_lua *rt, tq_lua_script *s, tq_err *err) {
  tq_code rc = TQ_OK;
  tq_lua_run *run = run_alloc(rt, s);
  if (run == NULL)
    return tq_err_set(err, TQ_ENOMEM, "lua: out of memory loading '%s'", s->path);
  int st = run_prepare(run);
  if (run->co == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", s->path);
    goto done;
  }
  lua_State *co = run->co;
  if (st != LUA_OK) {
    /* A top level killed by a budget says which, as a run does (the kill is raised as Lua's
     * "not enough memory", which named no budget). */
    char *msg = run->kill != KILL_NONE ? kill_text(run) : error_text(run, co, -1);
    rc = tq_err_set(err, TQ_EINVAL, "%s: %s%s", s->path,
                    run->kill != KILL_NONE ? "top level killed: " : "", msg ? msg : "error");
    free(msg);
    goto done;
  }
  if (!lua_istable(co, -1)) {
    rc = tq_err_set(err, TQ_EINVAL,
                    "%s: the script must return a table of entry functions "
                    "(it returned a %s)",
                    s->path, luaL_typename(co, -1));
    goto done;
  }
  size_t n = 0;
  lua_pushnil(co);
  while (lua_next(co, -2)) {
    if (lua_type(co, -2) == LUA_TSTRING && lua_isfunction(co, -1)) {
      char **grown = realloc(s->entries, (n + 1) * sizeof *grown);
      char *name = tq_strdup(lua_tostring(co, -2));
      if (grown == NULL || name == NULL) {
        free(name);
        if (grown)
          s->entries = grown;
        lua_pop(co, 2);
        rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", s->path);
        goto done;
      }
      s->entries = grown;
      s->entries[n++] = name;
      s->n_entries = n;
    }
    lua_pop(co, 1);
  }
  if (n == 0)
    rc = tq_err_set(err, TQ_EINVAL, "%s: the returned table has no entry functions", s->path);
done:
  run_finish(run, TQ_LUA_OK, NULL);
  finished_remove(rt, run);
  tq_lua_run_free(run);
  return rc;
}

/* ---- public: scheduling -------------------------------------------------------------------- */

/* Wakes the sleepers whose time came; a sleeper at its deadline wakes too and its
 * continuation reports the timeout. */
static void wake_sleepers(tq_lua *rt) {
  if (rt->n_sleeping == 0)
    return;
  int64_t now = tq_mono_ms();
  for (tq_lua_run *run = rt->active; run; run = run->next) {
    if (run->state == RUN_WAITING && run->wake_ms > 0 && now >= run->wake_ms) {
      rt->n_sleeping--;
      run_mark_ready(run);
    }
  }
}

static void check_deadlines(tq_lua *rt) {
  int64_t now = tq_mono_ms();
  tq_lua_run *run = rt->active;
  while (run) {
    tq_lua_run *next = run->next;
    if (run->state == RUN_WAITING && run->wake_ms == 0 && now >= run->deadline_ms) {
      run->kill = KILL_TIMEOUT;
      run_finish(run, TQ_LUA_KILLED, kill_text(run));
    }
    run = next;
  }
}

/* The nearest time a waiting run needs the scheduler: a deadline or the end of a sleep. */
static int64_t nearest_deadline(const tq_lua *rt) {
  int64_t best = INT64_MAX;
  for (const tq_lua_run *run = rt->active; run; run = run->next) {
    if (run->state != RUN_WAITING)
      continue;
    int64_t t = run->wake_ms > 0 ? run->wake_ms : run->deadline_ms;
    if (t < best)
      best = t;
  }
  return best;
}

/* Calls the done callbacks of the runs finished since the last call, oldest first. */
static void notify_finished(tq_lua *rt) {
  tq_lua_run *list = NULL;
  while (rt->finished) {
    tq_lua_run *run = rt->finished;
    rt->finished = run->next_finished;
    run->next_finished = list;
    list = run;
  }
  while (list) {
    tq_lua_run *run = list;
    list = run->next_finished;
    run->next_finished = NULL;
    if (run->done)
      run->done(run->done_ud, run);
  }
}

/* How long the step may wait for I/O or a sleeper: 0 while some run is ready. */
static int64_t step_wait(const tq_lua *rt, int64_t timeout_ms) {
  int64_t wait = nearest_deadline(rt) - tq_mono_ms();
  if (wait > timeout_ms)
    wait = timeout_ms;
  if (wait < 0 || rt->ready_head != NULL || rt->n_active == 0)
    wait = 0;
  return wait;
}

/* Runs that have not started yet go first: a fresh run only gets as far as its first
 * request, while a run whose answer came back goes on to map it, which costs far more.
 * Started the other way round, a burst of answers (every run of a bulk action waits about as
 * long) would keep the API idle until the whole burst was mapped. */
static size_t start_fresh(tq_lua *rt) {
  tq_lua_run *fresh = NULL, **fresh_tail = &fresh, *prev = NULL;
  size_t n = 0;
  for (tq_lua_run *run = rt->ready_head, *next; run; run = next) {
    next = run->next_ready;
    if (run->started || run->state != RUN_QUEUED) {
      prev = run;
      continue;
    }
    if (prev) /* unlink, keeping the others in order */
      prev->next_ready = next;
    else
      rt->ready_head = next;
    if (rt->ready_tail == run)
      rt->ready_tail = prev;
    run->in_ready = 0;
    run->next_ready = NULL;
    *fresh_tail = run;
    fresh_tail = &run->next_ready;
  }
  for (tq_lua_run *run = fresh, *next; run; run = next) {
    next = run->next_ready;
    run->next_ready = NULL;
    run_resume(run);
    n++;
  }
  return n;
}

/* How long a step resumes ready runs before it returns, so that a caller that admits runs
 * between steps (the bulk runner) refills the slots of finished runs while a burst of answers
 * is being mapped, rather than after the whole burst; a bound on time, not on runs, keeps
 * the cost of the extra turns small when answers come back at once. */
#define STEP_BUDGET_US 250

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

tq_code tq_lua_step(tq_lua *rt, int64_t timeout_ms, tq_err *err) {
  wake_sleepers(rt);
  tq_code rc = TQ_OK;
  /* The requests of fresh runs go on the wire before the answered runs are mapped. */
  if (start_fresh(rt) > 0 && rt->io_pending > 0 && rt->opts.net &&
      (rc = tq_net_flush(rt->opts.net, err)) != TQ_OK)
    return rc;
  tq_lua_run *last = rt->ready_tail; /* runs made ready during this turn wait for the next */
  int64_t until = mono_us() + STEP_BUDGET_US;
  while (last && rt->ready_head) {
    tq_lua_run *run = ready_pop(rt);
    if (run->state == RUN_QUEUED)
      run_resume(run);
    if (run == last || mono_us() >= until)
      break;
  }
  check_deadlines(rt);
  notify_finished(rt);
  /* I/O is driven on every turn (without waiting while some run is ready) so that a stream
   * of CPU-bound runs cannot starve the requests in flight. The wait ends at the nearest
   * deadline or wake-up; with sleepers and no I/O the thread just sleeps until then. */
  if (rt->io_pending > 0 && rt->opts.net) {
    rc = tq_net_run(rt->opts.net, step_wait(rt, timeout_ms), err);
  } else if (rt->n_sleeping > 0) {
    int64_t wait = step_wait(rt, timeout_ms);
    struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
    if (wait > 0)
      nanosleep(&ts, NULL);
  }
  return rc;
}

tq_code tq_lua_run_all(tq_lua *rt, tq_err *err) {
  while (rt->n_active > 0 || rt->finished) {
    tq_code rc = tq_lua_step(rt, 100, err);
    if (rc != TQ_OK)
      return rc;
  }
  return TQ_OK;
}

size_t tq_lua_active(const tq_lua *rt) { return rt->n_active; }
size_t tq_lua_resumable(const tq_lua *rt) { return rt->n_resumable; }

/* ---- public: results ------------------------------------------------------------------------ */

tq_lua_status tq_lua_run_status(const tq_lua_run *run) { return run->status; }
const char *tq_lua_run_message(const tq_lua_run *run) { return run->message ? run->message : ""; }
const char *tq_lua_run_traceback(const tq_lua_run *run) {
  return run->traceback ? run->traceback : "";
}
uint64_t tq_lua_run_id(const tq_lua_run *run) { return run->id; }
int64_t tq_lua_run_elapsed_us(const tq_lua_run *run) { return run->elapsed_us; }
uint64_t tq_lua_run_instructions(const tq_lua_run *run) { return run->instr; }
const tq_changeset *tq_lua_run_changeset(const tq_lua_run *run) { return &run->cs; }

void tq_lua_run_take_changeset(tq_lua_run *run, tq_changeset *out) {
  *out = run->cs;
  tq_changeset_init(&run->cs);
}

size_t tq_lua_run_items(const tq_lua_run *run) { return run->n_items; }

const char *tq_lua_run_take_item(tq_lua_run *run, size_t i, tq_changeset *out) {
  tq_changeset_init(out);
  if (i >= run->n_items)
    return "no such item in the batch";
  tq_lua_item *it = &run->items[i];
  if (it->failed)
    return it->failed;
  if (!it->touched)
    return "the batch entry gave no result for this item";
  *out = it->cs;
  tq_changeset_init(&it->cs);
  return NULL;
}

/* Frees the run's memory; the net callback calls this for an orphan. */
void run_destroy(tq_lua_run *run) {
  tq_lua *rt = run->rt;
  if (run->all_prev)
    run->all_prev->all_next = run->all_next;
  else if (rt->all == run)
    rt->all = run->all_next;
  if (run->all_next)
    run->all_next->all_prev = run->all_prev;
  tq_changeset_free(&run->cs);
  for (size_t i = 0; i < run->n_items; i++) {
    tq_changeset_free(&run->items[i].cs);
    free(run->items[i].failed);
  }
  free(run->items);
  if (run->resp)
    tq_net_response_free(run->resp);
  http_rec_free(run->rec);
  free(run->message);
  free(run->traceback);
  free(run->object);
  free(run);
}

void tq_lua_run_free(tq_lua_run *run) {
  if (run == NULL)
    return;
  if (run->state != RUN_DONE) {
    run->kill = KILL_CANCEL;
    run_finish(run, TQ_LUA_KILLED, tq_strdup("run cancelled"));
  }
  finished_remove(run->rt, run);
  if (run->io_pending) {
    run->orphan = 1;
    return;
  }
  run_destroy(run);
}

void rt_kill_all(tq_lua *rt) {
  while (rt->active) {
    tq_lua_run *run = rt->active;
    run->kill = KILL_CANCEL;
    run_finish(run, TQ_LUA_KILLED, tq_strdup("run cancelled: runtime closed"));
  }
  rt->finished = NULL; /* no callbacks while closing */
  tq_lua_run *run = rt->all;
  while (run) {
    tq_lua_run *next = run->all_next;
    if (run->io_pending)
      run->orphan = 1; /* freed by its net callback */
    else
      run_destroy(run);
    run = next;
  }
}
