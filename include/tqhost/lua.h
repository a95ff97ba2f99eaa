/* lua.h: the Lua 5.4 runtime of tqhost. One tq_lua per worker thread owns one lua_State on
 * which many *runs* execute at once, each a coroutine with its own sandboxed _ENV, its own
 * budgets (memory, instructions, wall clock) and its own change set. A run that calls http.*
 * yields; the request goes to tq_net and its completion only marks the run ready; tq_lua_step
 * resumes ready runs from its own frame.
 *
 * Lifecycle:
 *   tq_lua_new(opts)                    -> rt      (one per thread)
 *   tq_lua_load(rt, script_opts)        -> script  (compiled once; the chunk returns a table
 *                                                   of entry functions)
 *   tq_lua_run_start(rt, script, entry, obj, ...) -> run (queued, not yet executed)
 *   tq_lua_step(rt, ms) / tq_lua_run_all(rt)       (executes, drives I/O, finishes runs)
 *   tq_lua_run_status/_message/_traceback/_changeset(run), tq_lua_run_free(run)
 *   tq_lua_script_free(script), tq_lua_free(rt)
 *
 * Stack effects: no function of this header leaves anything on any Lua stack; the lua_State
 * is private to the runtime.
 *
 * Threads: a tq_lua and everything made from it (scripts, runs) belong to one thread. */
#ifndef TQHOST_LUA_H
#define TQHOST_LUA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tqhost/core.h"
#include "tqhost/library.h"
#include "tqhost/net.h"

typedef struct tq_lua tq_lua;
typedef struct tq_lua_script tq_lua_script;
typedef struct tq_lua_run tq_lua_run;

/* ---- runtime ----------------------------------------------------------------------------- */

/* One HTTP exchange of a run, handed to a recorder (tq_lua_opts.record, `tqhost plugin test
 * --record`): the request as it was sent and its final response. The headers hold the real
 * text of the run's secrets: the recorder must redact before it keeps anything. Everything is
 * borrowed for the call. */
typedef struct tq_lua_exchange {
  const char *plugin;         /* the script's name */
  const char *method;         /* upper case */
  const char *url;            /* as the script built it (query encoded, keys sorted) */
  const char *const *headers; /* "Name: value" lines */
  size_t n_headers;
  const char *body; /* request body or NULL */
  size_t body_len;
  const tq_net_response *resp; /* the final response (after retries and redirects) */
} tq_lua_exchange;
/* Called from tq_lua_step's net turn (never from inside Lua) once a request completed. */
typedef void (*tq_lua_record_fn)(void *ud, const tq_lua_exchange *x);

typedef struct tq_lua_opts {
  size_t state_memory;     /* cap of the whole lua_State in bytes; 0 = 1 GiB */
  tq_net *net;             /* borrowed, must outlive the runtime; NULL: no network */
  tq_lib *lib;             /* borrowed; NULL: tq.* raise "no threat library" */
  const char *replay_file; /* non-NULL: http answers from this recorded JSON file (see
                              docs/lua-api.md) and never touches the network; copied */
  tq_lua_record_fn record; /* non-NULL (live mode only): every exchange of every run */
  void *record_ud;
} tq_lua_opts;
void tq_lua_opts_init(tq_lua_opts *o);

/* Creates a runtime: a lua_State with the sandbox base built once. A bad replay file is
 * TQ_EINVAL naming the file and the entry. *out is freed with tq_lua_free. */
tq_code tq_lua_new(const tq_lua_opts *opts, tq_lua **out, tq_err *err);
/* Frees the runtime. Runs still active are killed; requests still in flight in tq_net are
 * waited for (each has a timeout) because their callbacks point into the runtime. Scripts
 * and runs not yet freed are freed too: pointers to them become invalid. */
void tq_lua_free(tq_lua *rt);
/* Bytes currently allocated by the lua_State. */
size_t tq_lua_memory(const tq_lua *rt);

/* ---- scripts ------------------------------------------------------------------------------ */

/* How a ctx.config value is given to scripts (its manifest field's type). */
typedef enum tq_lua_kind {
  TQ_LUA_TEXT = 0, /* a string */
  TQ_LUA_INTEGER,  /* a Lua integer */
  TQ_LUA_NUMBER,   /* a Lua float */
  TQ_LUA_BOOLEAN,  /* "true" / "false" -> a boolean */
  TQ_LUA_LIST      /* "a,b,c" -> a frozen array of strings */
} tq_lua_kind;

typedef struct tq_lua_kv {
  const char *key;
  const char *value;
} tq_lua_kv;

#define TQ_INSTRUCTIONS_MAX 1e15 /* manifests' ceiling: far past any timeout */
typedef struct tq_lua_limits {
  size_t memory;         /* bytes a run may hold; 0 = 32 MiB */
  uint64_t instructions; /* VM instructions per run; 0 = 50 000 000; at most
                            TQ_INSTRUCTIONS_MAX */
  int64_t timeout_ms;    /* wall clock per run, I/O waits included; 0 = 30 000 */
} tq_lua_limits;

typedef struct tq_lua_script_opts {
  const char *name;          /* plugin name: in logs and errors; required */
  const char *path;          /* the script file; required */
  const char *lib_dir;       /* root for require "a.b" -> lib_dir/a/b.lua; NULL: none */
  tq_net_provider *provider; /* borrowed: the plugin's network policy; NULL: no http
                                except in replay mode */
  const tq_lua_kv *config;   /* ctx.config: plain (non-secret) fields */
  size_t n_config;
  const tq_lua_kind *config_kinds; /* borrowed: n_config kinds, one per config entry; NULL: all
                                      text. A value that does not parse as its kind fails the
                                      load (TQ_EINVAL naming the key and the type) */
  const tq_lua_kv *secrets;        /* ctx.secret(key): the plugin's own secrets only */
  size_t n_secrets;
  tq_lua_limits limits;
  int outcome_only;    /* 1: ctx:show (and a table an entry returns) keeps only its "found"
                          (boolean) and "message" (string) fields: for a caller that reads only
                          the outcome (the bulk runner), the rest is never converted */
  int obj_lists_later; /* 1: the objects given to tq_lua_run_start come without their lists
                          (tq_lib_object_head); obj.attributes, .sources and .tags are read
                          from tq_lua_opts.lib by the object's id when a run first uses them */
  /* Files read beforehand (a plugin's snapshot, so that a folder swapped after the read
   * cannot mix versions): source (len source_len) is the script's text instead of reading
   * path (still its name in errors); modules are compiled at load, before the script runs,
   * and found by require before lib_dir. All borrowed for the call only. */
  const char *source;
  size_t source_len;
  const struct tq_lua_module *modules;
  size_t n_modules;
} tq_lua_script_opts;
/* A module's text: name "a.b" (require "a.b"), path its file (in errors). */
typedef struct tq_lua_module {
  char *name, *path, *text;
  size_t len;
} tq_lua_module;
void tq_lua_script_opts_init(tq_lua_script_opts *o);

/* Reads and compiles the script, runs its top level once (under the script's budgets) and
 * checks that it returns a table of functions. All strings are copied. Errors: TQ_ENOTFOUND
 * / TQ_EIO for the file, TQ_EINVAL for a syntax error ("path:line: ...") or a chunk that does
 * not return a table of entries. *out is freed with tq_lua_script_free. */
tq_code tq_lua_load(tq_lua *rt, const tq_lua_script_opts *opts, tq_lua_script **out, tq_err *err);
/* Compiles text (the file path's, named in errors) in a throwaway state without running it:
 * TQ_EINVAL with Lua's "path:line: message" for a syntax error or a binary chunk. What a
 * plugin reload checks before a new version may replace the active one. */
tq_code tq_lua_syntax_check(const char *path, const char *text, size_t len, tq_err *err);
/* Whether the script has an entry function of that name. */
int tq_lua_script_has_entry(const tq_lua_script *s, const char *entry);
/* The script's name (its plugin's). Borrowed from s. */
const char *tq_lua_script_name(const tq_lua_script *s);
/* Drops the caller's reference. The script lives on until its active runs finish, so that a
 * plugin reload can swap scripts while runs of the old one complete. */
void tq_lua_script_free(tq_lua_script *s);

/* ---- change set --------------------------------------------------------------------------
 * What a run asked to write (ctx:attribute, ctx:tag, ...). The plugin layer validates it and
 * applies it in one transaction. Every string is malloc'd, NUL-terminated, owned by the
 * change set and at most TQ_LUA_MAX_VALUE bytes; numbers were converted to text. */
#define TQ_LUA_MAX_VALUE (64 * 1024)
#define TQ_LUA_MAX_ITEMS 1000 /* entries per array of a change set */

typedef struct tq_cs_attr {
  char *name;
  char *value;
} tq_cs_attr;

typedef struct tq_cs_link { /* ctx:link(object_type, value, {link_type=, description=}) */
  char *object_type;
  char *value;
  char *link_type;   /* NULL if not given */
  char *description; /* NULL if not given */
} tq_cs_link;

typedef struct tq_cs_indicator { /* ctx:indicator(type, value, {name = value, ...}) */
  char *indicator_type;
  char *value;
  tq_cs_attr *attrs;
  size_t n_attrs;
} tq_cs_indicator;

typedef struct tq_changeset {
  tq_cs_attr *attrs;
  size_t n_attrs;
  char **tags;
  size_t n_tags;
  tq_cs_link *links;
  size_t n_links;
  tq_cs_indicator *indicators;
  size_t n_indicators;
  int score;    /* 0..10, or -1 when not set */
  char *status; /* one of the 5 status names (canonical spelling), or NULL */
  cJSON *show;  /* what the analyst sees (ctx:show or a table returned by the entry); NULL */
} tq_changeset;

void tq_changeset_init(tq_changeset *cs);
void tq_changeset_free(tq_changeset *cs); /* frees the members, not cs */
/* Whether nothing was recorded (show included). */
int tq_changeset_empty(const tq_changeset *cs);

/* ---- runs ---------------------------------------------------------------------------------- */

typedef enum tq_lua_status {
  TQ_LUA_ACTIVE = 0, /* queued, running or waiting for I/O */
  TQ_LUA_OK,         /* the entry returned nothing (or a value other than nil) */
  TQ_LUA_FAILED,     /* the entry returned nil, "reason": this object failed */
  TQ_LUA_ERROR,      /* the entry raised an error (a bug): message and traceback */
  TQ_LUA_KILLED      /* a budget ran out: memory, instructions or timeout */
} tq_lua_status;
const char *tq_lua_status_name(tq_lua_status s); /* "active" "ok" "failed" "error" "killed" */

/* Called from tq_lua_step (never from inside Lua or a net callback) once the run finished.
 * The callback may read the run and free it. */
typedef void (*tq_lua_done_fn)(void *ud, tq_lua_run *run);

/* Starts a run of entry on obj (borrowed for the call: copied into a read-only Lua table; may
 * be NULL: the entry gets nil). The run is queued; nothing executes before tq_lua_step.
 * done (may be NULL) is called when it finishes. TQ_ENOTFOUND when the script has no such
 * entry. *out is owned by the caller and freed with tq_lua_run_free. */
tq_code tq_lua_run_start(tq_lua *rt, tq_lua_script *script, const char *entry, const tq_object *obj,
                         tq_lua_done_fn done, void *ud, tq_lua_run **out, tq_err *err);

/* Starts a batch run: entry(items, ctx), where items is a read-only list of the n objects'
 * views (each as tq_lua_run_start gives obj; objs borrowed for the call). The entry records
 * per item through c = ctx:item(i): c's change methods are ctx's (same checks, same budget),
 * recording into item i's own change set; c:fail(reason) fails item i; a refused change fails
 * item i only. ctx's own change methods raise in a batch run. n >= 1. */
tq_code tq_lua_run_start_batch(tq_lua *rt, tq_lua_script *script, const char *entry,
                               const tq_object *const *objs, size_t n, tq_lua_done_fn done,
                               void *ud, tq_lua_run **out, tq_err *err);

/* One turn of the scheduler: resumes the runs that are ready, kills the runs past their
 * deadline, then (when no run is ready) drives tq_net for up to timeout_ms. Returns TQ_OK or
 * the net loop's error. Runs' failures are never errors here: they are in their results. */
tq_code tq_lua_step(tq_lua *rt, int64_t timeout_ms, tq_err *err);
/* Steps until no run is active. */
tq_code tq_lua_run_all(tq_lua *rt, tq_err *err);
/* Runs started and not finished. */
size_t tq_lua_active(const tq_lua *rt);
/* Active runs that have started and wait only for the CPU: their request was answered (or
 * their sleep is over). They hold no request to a provider, so a bulk runner that bounds the
 * requests in flight need not count them. */
size_t tq_lua_resumable(const tq_lua *rt);

/* Results. Strings are borrowed from the run (valid until tq_lua_run_free); "" when none.
 * Secrets of the run's script never appear in them (replaced by "********"), nor in change
 * set values, the show value, logs or tracebacks: nor does any run of 8 or more bytes of a
 * secret or of its reverse, in any case (src/lua/redact.c). Only secrets of at least
 * TQ_LUA_REDACT_MIN bytes are searched for in text: a shorter one would match ordinary words
 * and corrupt them (an API key "k" inside "attack_pattern"). A secret value itself
 * (ctx.secret) is opaque whatever its length: it can never be stored, encoded or printed. */
#define TQ_LUA_REDACT_MIN 6
/* The masking rule of run output applied to any text: a malloc'd copy of s (len bytes) in
 * which every part that the rule finds of one of the n secrets (values of at least
 * TQ_LUA_REDACT_MIN bytes) is replaced by mask; *out_len gets its length (the copy is also
 * NUL-terminated). NULL on ENOMEM. For callers that keep text a run received or sent (the
 * recorder of `plugin test --record`). */
char *tq_lua_mask(const tq_lua_kv *secrets, size_t n, const char *s, size_t len, const char *mask,
                  size_t *out_len);
tq_lua_status tq_lua_run_status(const tq_lua_run *run);
const char *tq_lua_run_message(const tq_lua_run *run);
const char *tq_lua_run_traceback(const tq_lua_run *run);
uint64_t tq_lua_run_id(const tq_lua_run *run);
/* Elapsed wall clock (µs) and VM instructions used (rounded to the hook's granularity). */
int64_t tq_lua_run_elapsed_us(const tq_lua_run *run);
uint64_t tq_lua_run_instructions(const tq_lua_run *run);
/* The change set, borrowed. tq_lua_run_take_changeset moves it into *out (the run keeps an
 * empty one) so that the caller may keep it past tq_lua_run_free. */
const tq_changeset *tq_lua_run_changeset(const tq_lua_run *run);
void tq_lua_run_take_changeset(tq_lua_run *run, tq_changeset *out);
/* A batch run's items (0 for a single run). tq_lua_run_take_item: for an answered item i
 * (0-based), moves its change set (its show's "found" and "message" included) into *out and
 * returns NULL; else *out is empty and the reason it failed is returned (borrowed from the
 * run): c:fail's reason, the refused change's error, or "the batch entry gave no result for
 * this item" when no method of its item ctx was called. Meaningful once the run is ok. */
size_t tq_lua_run_items(const tq_lua_run *run);
const char *tq_lua_run_take_item(tq_lua_run *run, size_t i, tq_changeset *out);
/* Frees a run; an active run is killed first ("cancelled"). */
void tq_lua_run_free(tq_lua_run *run);

#endif
