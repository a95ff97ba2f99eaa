/* lua_int.h: what the files of src/lua share and nobody else sees: the runtime, script and
 * run structures, the sandbox helpers and the binding openers. */
#ifndef TQHOST_LUA_INT_H
#define TQHOST_LUA_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <lauxlib.h>
#include <lua.h>

#include "tqhost/lua.h"

#define LUA_PART "lua"
#define SECRET_MASK "********"
#define SECRET_MT "tq.secret"
#define ITEM_MT "tq.ctx.item"
#define HOOK_COUNT 1000       /* instructions between two budget checks */
#define KILL_SLACK (1u << 20) /* bytes a killed run may still use to unwind and report */

typedef enum run_state { RUN_QUEUED, RUN_WAITING, RUN_DONE } run_state;
typedef enum run_kill {
  KILL_NONE,
  KILL_MEMORY,
  KILL_INSTRUCTIONS,
  KILL_TIMEOUT,
  KILL_CANCEL
} run_kill;

/* One recorded exchange of the replay file. */
typedef struct replay_entry {
  char *method;
  char *url;
  int status;
  char *headers; /* raw "name: value\r\n" lines */
  char *body;
  size_t body_len;
  int fail; /* tq_net_fail */
} replay_entry;

typedef struct redact_set redact_set;

struct tq_lua_script {
  tq_lua *rt;
  int refs; /* the caller's + one per active run */
  char *name;
  char *path;
  char *lib_dir;
  tq_net_provider *provider;
  tq_lua_kv *secrets; /* copies */
  size_t n_secrets;
  redact_set *redact; /* the secrets' windows, for masking (redact.c) */
  tq_lua_limits limits;
  int chunk_ref;       /* the compiled chunk: function(_ENV) -> entries */
  int modules_ref;     /* table: module name -> compiled chunk */
  int loaded_ref;      /* table: module name -> the loaded module (read-only), shared by runs */
  int config_ref;      /* frozen ctx.config table */
  int ctx_ref;         /* the ctx userdata every run of the script gets */
  int outcome_only;    /* ctx:show keeps found and message only (tq_lua_script_opts) */
  int obj_lists_later; /* obj comes without its lists (tq_lua_script_opts) */
  char **entries;
  size_t n_entries;
  tq_lua_script *next; /* every script of rt, for tq_lua_free */
  tq_lua_script *prev;
};

/* One object of a batch run (tq_lua_run_start_batch): what its item ctx recorded. */
typedef struct tq_lua_item {
  tq_changeset cs;
  size_t show_charge; /* run_charge'd for cs.show */
  int touched;        /* a method of its item ctx was called */
  char *failed;       /* c:fail's reason or the refused change's error (redacted), or NULL */
} tq_lua_item;

struct tq_lua_run {
  tq_lua *rt;
  tq_lua_script *script;
  uint64_t id;
  lua_State *co;
  int co_ref, env_ref;
  run_state state;
  int started;     /* the entry's first resume happened */
  int nargs;       /* values to pass at the next resume */
  int io_pending;  /* a tq_net request holds a pointer to this run */
  int64_t wake_ms; /* > 0: sleeping (http.sleep) in RUN_WAITING until this monotonic time */
  int orphan;      /* freed by its owner while io_pending: the callback frees it */
  run_kill kill;
  const char *kill_site; /* static: the C function where the kill came (string.find), or NULL */
  int64_t mem; /* bytes allocated while this run executed (net of frees), plus run_charge's */
  size_t show_charge; /* run_charge'd for cs.show */
  size_t io_charge;   /* run_charge'd for the request body in flight */
  uint64_t instr;
  int64_t unhooked_ns; /* time executed before the budget hook was set (watch.c) */
  int64_t exec_t0_ns;  /* when the current unhooked execution began; 0: none */
  int64_t started_ms, deadline_ms, started_us, elapsed_us;
  tq_net_response *resp; /* the completed request, consumed by the continuation */
  struct http_rec *rec;  /* the request in flight, kept for tq_lua_opts.record; NULL */
  tq_lua_status status;
  char *message;
  char *traceback;
  char *object; /* the object's value, for logs */
  tq_changeset cs;
  tq_lua_item *items; /* a batch run: one per object (its entry's list); NULL otherwise */
  size_t n_items;
  tq_lua_done_fn done;
  void *done_ud;
  tq_lua_run *next, *prev;         /* rt's active list */
  tq_lua_run *all_next, *all_prev; /* every run not yet freed, for tq_lua_free */
  tq_lua_run *next_ready;          /* rt's ready FIFO */
  int in_ready;                    /* whether it is in that FIFO */
  tq_lua_run *next_finished;       /* rt's list of runs whose done callback is due */
};

/* The allocator's free lists of small blocks (runtime.c): classes of POOL_GRAIN bytes up to
 * POOL_MAX_BLOCK. */
#define POOL_GRAIN 16
#define POOL_MAX_BLOCK 2048
#define POOL_CLASSES (POOL_MAX_BLOCK / POOL_GRAIN)

struct tq_lua {
  lua_State *L;
  void *pool[POOL_CLASSES + 1]; /* by class: a list of free blocks (each starts with next) */
  size_t pool_bytes;
  tq_lua_opts opts;
  char *replay_file;
  size_t mem, mem_cap;
  tq_lua_run *cur; /* the run executing now: allocations are charged to it */
  int env_mt_ref;  /* the shared metatable of every run's _ENV: {__index = base} */
  int base_ref;
  int fmt_ref; /* string.format, for log */
  uint64_t next_run_id;
  size_t n_active;
  size_t io_pending;
  size_t n_sleeping; /* runs in http.sleep */
  tq_lua_run *active;
  tq_lua_run *all;
  tq_lua_run *ready_head, *ready_tail;
  size_t n_resumable; /* runs in the ready list that have started (see tq_lua_resumable) */
  tq_lua_run *finished;
  tq_lua_script *scripts;
  replay_entry *replay;
  size_t n_replay;
  /* watch.c: the watchdog that arms the budget hook of a long execution */
  atomic_uint_fast64_t watch_seq; /* odd while a coroutine executes */
  atomic_int watch_parked;
  pthread_mutex_t watch_mu;
  pthread_cond_t watch_cv;
  pthread_t watch_thread, watch_owner;
  int watch_tried, watch_running, watch_stop;
};

/* ---- runtime.c ---- */
/* The run executing on thread L (NULL on the main thread). */
static inline tq_lua_run *run_of(lua_State *L) { return *(tq_lua_run **)lua_getextraspace(L); }
/* Like run_of but raises a Lua error when L is not a run ("what" names the caller). */
tq_lua_run *run_check(lua_State *L, const char *what);
void hook_arm(lua_State *co, tq_lua_run *run);
/* Charges n bytes that C is about to allocate on the run's behalf outside the State (cJSON
 * trees, change-set copies, request bodies) to its memory budget; past the budget the run is
 * killed and the budget error is raised (nothing to free: the caller allocates after). */
void run_charge(lua_State *L, tq_lua_run *run, size_t n);
/* Gives back bytes of run_charge whose C copy was freed while the run lives. */
void run_uncharge(tq_lua_run *run, size_t n);
/* What malloc costs for a block of n bytes, as run_charge counts it (its header included). */
#define C_COST(n) ((size_t)(n) + 16)
/* Sets the budget hook (every HOOK_COUNT instructions) on co; safe in a signal handler. */
void hook_arm_count(lua_State *co);

/* ---- watch.c ---- */
void watch_init(tq_lua *rt);
/* Around every execution of the coroutine of run (a resume, a run's chunk): after a tick of
 * executing, in one go or in all, the coroutine gets its budget hook. */
void watch_enter(tq_lua *rt, tq_lua_run *run);
void watch_leave(tq_lua *rt, tq_lua_run *run);
void watch_free(tq_lua *rt);
/* Marks run killed (the first kill stays) and re-arms its hook on every instruction. */
void run_kill_now(tq_lua_run *run, run_kill kill);
/* run_kill_now, then raises the kill on L in a way no pcall, xpcall or message handler of
 * the script can act on (see runtime.c). Does not return. */
int run_kill_raise(lua_State *L, tq_lua_run *run, run_kill kill);
/* Reads a file of at most max bytes into a malloc'd NUL-terminated buffer. */
tq_code read_file(const char *path, size_t max, char **out, size_t *len, tq_err *err);
/* Compiles source as function(_ENV) with a text-only loader; pushes it or returns an error
 * with the message pushed. [-0, +1] */
int compile_chunk(lua_State *L, const char *src, size_t len, const char *chunkname);
/* Pushes the frozen read-only proxy of the table at idx (which is then no longer to be
 * written by the host either). [-0, +1] */
void freeze_table(lua_State *L, int idx, const char *name);
/* Pushes a cheap read-only view of the table at idx, for per-run data. [-0, +1] */
void freeze_view(lua_State *L, int idx, const char *name);
/* freeze_view with the metatable found in the registry under mt_key (made with
 * view_metatable_new): views with an __index of their own. [-0, +1] */
void freeze_view_mt(lua_State *L, int idx, const char *name, const void *mt_key);
/* Pushes a new view metatable (read-only, pairs and # see through) with index as __index.
 * [-0, +1] */
void view_metatable_new(lua_State *L, lua_CFunction index);
/* Pushes the real table of the view at idx, as it is (lazy lists not built). [-0, +1] */
void view_push_real(lua_State *L, int idx);
/* If the value at idx is a frozen proxy or a view, pushes the real table and returns 1; else 0. */
int unfreeze(lua_State *L, int idx);

/* ---- run.c ---- */
void run_mark_ready(tq_lua_run *run);
/* Parks the run in RUN_WAITING until wake_ms (capped at its deadline); the caller yields. */
void run_sleep(tq_lua_run *run, int64_t wake_ms);
void run_destroy(tq_lua_run *run);
void rt_kill_all(tq_lua *rt);

/* ---- bindings: each pushes its module table (not yet frozen). [-0, +1] ---- */
int luaopen_tq_http(lua_State *L);
int luaopen_tq_json(lua_State *L);
int luaopen_tq_ioc(lua_State *L);
int luaopen_tq_log(lua_State *L);
int luaopen_tq_stix(lua_State *L);
int luaopen_tq_tq(lua_State *L);
/* Registers the ctx and secret metatables. [-0, +0] */
void ctx_register(lua_State *L);
/* Pushes the ctx userdata of run. [-0, +1] */
void ctx_push(lua_State *L, tq_lua_run *run); /* the script's shared ctx */
/* Pushes obj as a frozen view (or nil); its lists are built on first use, from obj or, with
 * lists_later, read then from the runtime's library by obj->id. [-0, +1] */
void obj_push(lua_State *L, const tq_object *obj, int lists_later);
/* Builds the lists of the obj view at view into its real table at real, if still pending
 * (any other view: nothing). [-0, +0] */
void obj_materialize(lua_State *L, int view, int real);
/* Whether the value at idx is a script's ctx. */
int ctx_is(lua_State *L, int idx);
/* Pushes a new ctx for a script; argument 1 is its frozen config, argument 2 its
 * outcome_only flag (ctx.outcome_only). A lua_CFunction to call protected. [-0, +1] */
int ctx_new_protected(lua_State *L);
/* ctx:show's conversion (also for a table returned by the entry): the full JSON, or only
 * found and message when the script is outcome_only. Charges and raises like
 * json_from_lua. */
cJSON *show_from_lua(lua_State *L, int idx, const char *what, size_t *charged);
/* ---- http.c ---- */
/* Frees a request kept for the recorder (NULL: nothing). */
void http_rec_free(struct http_rec *rec);

/* ---- redact.c: the masking rule is in the file's first comment ---- */
/* The windows of each secret of at least TQ_LUA_REDACT_MIN bytes; on failure *out may hold
 * a partial set (free it with redact_set_free). */
tq_code redact_set_new(const tq_lua_kv *secrets, size_t n, redact_set **out);
void redact_set_free(redact_set *r);
/* Whether s holds something of one of the script's secrets that the rule masks. */
int redact_needed(const tq_lua_script *script, const char *s);
/* Copies s with every such part masked into a malloc'd string; NULL on ENOMEM. */
char *redact_dup(const tq_lua_script *script, const char *s);
/* Masks every string value and every key of the tree j in place; TQ_ENOMEM on failure. */
tq_code redact_json(const tq_lua_script *script, cJSON *j);
/* Whether the value at idx is a secret; if so and real is non-NULL, *real gets its value
 * (borrowed from the script) when it belongs to script, else NULL. */
int secret_test(lua_State *L, int idx, const tq_lua_script *script, const char **real);
/* print and log: the text of log.info(fmt, ...) from stack items [first, top]. [-0, +1] */
void log_format(lua_State *L, int first);
void log_emit(lua_State *L, tq_log_level level, const char *text);

/* ---- pattern.c ---- */
/* Sets find, match, gmatch and gsub of the string table on top to the budgeted matcher.
 * [-0, +0] */
void pattern_install(lua_State *L);

/* ---- json.c ---- */
/* Converts the value at idx to cJSON (a Lua error raised on failure: cycles, functions,
 * secrets, non-finite numbers, the run's memory budget). Each node is charged to the run of
 * L (run_charge) before it is allocated; *charged gets the total, for run_uncharge when the
 * tree is freed while the run lives. what names the caller in the error. */
cJSON *json_from_lua(lua_State *L, int idx, const char *what, size_t *charged);
/* Pushes the JSON text of the value at idx, written straight from Lua (no tree) in memory of
 * the State, so charged to the run; raises like json_from_lua. [-0, +1] */
void json_encode_push(lua_State *L, int idx, const char *what);
/* Pushes the Lua value of item. [-0, +1] */
void json_to_lua(lua_State *L, const cJSON *item);
/* Decodes text and pushes the value, or pushes nil, message. Returns the number pushed. */
int json_decode_push(lua_State *L, const char *text, size_t len);

/* ---- http.c ---- */
tq_code replay_load(tq_lua *rt, const char *path, tq_err *err);
void replay_free(tq_lua *rt);

#endif
