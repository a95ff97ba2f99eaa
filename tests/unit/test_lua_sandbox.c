/* test_lua_sandbox.c: every way out of the Lua sandbox and every budget, each tried by one run
 * while well-behaved runs of the same scheduler go on and succeed (tests/lua/sandbox.lua).
 * No network and no library: nothing here needs tq_net or tq_lib. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include "../lua/lua_test.h"

typedef struct fixture {
  tq_lua *rt;
  tq_lua_script *s;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  tq_err err = {0};
  assert_int_equal(tq_lua_new(NULL, &f->rt, &err), TQ_OK);
  tq_lua_limits lim = {.memory = 16u << 20, .instructions = 20000000, .timeout_ms = 5000};
  f->s = lt_load(f->rt, "sandbox-test", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(f->s);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_lua_script_free(f->s);
  tq_lua_free(f->rt);
  free(f);
  return 0;
}

/* Runs entry between four well-behaved runs; asserts those succeed with their change set and
 * that the hostile one ended with status, its message containing want. */
static void expect_alone_in(fixture *f, tq_lua_script *s, const char *entry, tq_lua_status status,
                            const char *want) {
  tq_lua_run *good[4];
  good[0] = lt_start(f->rt, f->s, "ok", NULL);
  good[1] = lt_start(f->rt, f->s, "ok", NULL);
  tq_lua_run *bad = lt_start(f->rt, s, entry, NULL);
  good[2] = lt_start(f->rt, f->s, "ok", NULL);
  good[3] = lt_start(f->rt, f->s, "ok", NULL);
  tq_err err = {0};
  assert_int_equal(tq_lua_run_all(f->rt, &err), TQ_OK);
  if (tq_lua_run_status(bad) != status || strstr(tq_lua_run_message(bad), want) == NULL)
    fail_msg("%s: status %s message '%s', wanted %s with '%s'", entry,
             tq_lua_status_name(tq_lua_run_status(bad)), tq_lua_run_message(bad),
             tq_lua_status_name(status), want);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(tq_lua_run_status(good[i]), TQ_LUA_OK);
    const tq_changeset *cs = tq_lua_run_changeset(good[i]);
    assert_int_equal(cs->n_tags, 1);
    assert_string_equal(cs->tags[0], "fine");
    tq_lua_run_free(good[i]);
  }
  tq_lua_run_free(bad);
  assert_int_equal(tq_lua_active(f->rt), 0);
}

static void expect_alone(fixture *f, const char *entry, tq_lua_status status, const char *want) {
  expect_alone_in(f, f->s, entry, status, want);
}

static void test_os_execute_is_absent(void **state) {
  expect_alone(*state, "os_execute", TQ_LUA_ERROR, "execute");
  assert_int_not_equal(access("/tmp/tqhost-sandbox-escaped", F_OK), 0);
}

static void test_io_is_absent(void **state) {
  expect_alone(*state, "io_open", TQ_LUA_ERROR, "global 'io'");
}

static void test_require_of_a_relative_path_is_refused(void **state) {
  expect_alone(*state, "require_parent", TQ_LUA_ERROR, "'../x' is not a module name");
}

static void test_require_of_an_absolute_path_is_refused(void **state) {
  expect_alone(*state, "require_abs", TQ_LUA_ERROR, "'/etc/passwd' is not a module name");
}

static void test_binary_chunks_are_refused(void **state) {
  expect_alone(*state, "load_binary", TQ_LUA_FAILED, "binary chunks are not allowed");
}

static void test_load_of_text_uses_the_run_env(void **state) {
  expect_alone(*state, "load_text_env", TQ_LUA_OK, "");
}

static void test_debug_is_absent(void **state) {
  expect_alone(*state, "debug_access", TQ_LUA_ERROR, "global 'debug'");
}

static void test_string_dump_is_unreachable(void **state) {
  expect_alone(*state, "string_dump", TQ_LUA_OK, "");
}

static void test_memory_bomb_is_killed(void **state) {
  expect_alone(*state, "memory_bomb", TQ_LUA_KILLED, "memory budget exceeded");
}

static void test_memory_bomb_inside_pcall_is_killed(void **state) {
  expect_alone(*state, "memory_bomb_pcall", TQ_LUA_KILLED, "memory budget exceeded");
}

static void test_endless_loop_inside_pcall_is_killed(void **state) {
  expect_alone(*state, "endless_pcall", TQ_LUA_KILLED, "instruction budget exceeded");
}

static void test_deep_recursion_is_an_error(void **state) {
  fixture *f = *state;
  tq_lua_run *run = lt_start(f->rt, f->s, "deep_recursion", NULL);
  tq_lua_run *ok = lt_start(f->rt, f->s, "ok", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  /* Lua's own limit or the memory budget, whichever comes first: never a crash */
  tq_lua_status st = tq_lua_run_status(run);
  const char *msg = tq_lua_run_message(run);
  assert_true((st == TQ_LUA_ERROR && strstr(msg, "stack overflow")) ||
              (st == TQ_LUA_KILLED && strstr(msg, "memory budget exceeded")));
  assert_int_equal(tq_lua_run_status(ok), TQ_LUA_OK);
  tq_lua_run_free(run);
  tq_lua_run_free(ok);
}

static void test_deep_recursion_with_room_is_a_stack_overflow(void **state) {
  fixture *f = *state;
  tq_lua_limits lim = {.memory = 512u << 20, .instructions = 500000000, .timeout_ms = 20000};
  tq_lua_script *s = lt_load(f->rt, "sandbox-deep", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  tq_lua_run *run = lt_start(f->rt, s, "deep_recursion", NULL);
  tq_lua_run *meta = lt_start(f->rt, s, "metamethod_recursion", NULL);
  tq_lua_run *ok = lt_start(f->rt, s, "ok", NULL);
  tq_lua_script_free(s);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_ERROR);
  assert_non_null(strstr(tq_lua_run_message(run), "stack overflow"));
  assert_int_equal(tq_lua_run_status(meta), TQ_LUA_ERROR);
  assert_non_null(strstr(tq_lua_run_message(meta), "stack overflow"));
  assert_int_equal(tq_lua_run_status(ok), TQ_LUA_OK);
  tq_lua_run_free(run);
  tq_lua_run_free(meta);
  tq_lua_run_free(ok);
}

static void test_writing_the_string_table_fails(void **state) {
  expect_alone(*state, "write_string", TQ_LUA_ERROR,
               "attempt to modify read-only table 'string' (field 'x')");
}

static void test_rawset_on_a_library_table_fails(void **state) {
  expect_alone(*state, "rawset_string", TQ_LUA_ERROR, "read-only table");
  expect_alone(*state, "read_global", TQ_LUA_OK, ""); /* string.upper intact */
}

static void test_the_shared_base_is_out_of_reach(void **state) {
  expect_alone(*state, "write_base_via_metatable", TQ_LUA_ERROR,
               "cannot change a protected metatable");
}

static void test_gc_metamethods_are_refused(void **state) {
  expect_alone(*state, "gc_metamethod", TQ_LUA_ERROR, "__gc is not allowed");
}

static void test_a_global_is_not_visible_to_another_run(void **state) {
  fixture *f = *state;
  tq_lua_run *a = lt_start(f->rt, f->s, "set_global", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(a), TQ_LUA_OK);
  tq_lua_run *b = lt_start(f->rt, f->s, "read_global", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  if (tq_lua_run_status(b) != TQ_LUA_OK)
    fail_msg("%s", tq_lua_run_message(b));
  tq_lua_run_free(a);
  tq_lua_run_free(b);
}

static void test_an_error_has_a_traceback(void **state) {
  fixture *f = *state;
  tq_lua_run *run = lt_start(f->rt, f->s, "error_traceback", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_ERROR);
  assert_non_null(strstr(tq_lua_run_message(run), "sandbox.lua:"));
  assert_non_null(strstr(tq_lua_run_message(run), "boom in helper"));
  assert_non_null(strstr(tq_lua_run_traceback(run), "stack traceback"));
  assert_non_null(strstr(tq_lua_run_traceback(run), "inner_helper"));
  tq_lua_run_free(run);
}

static void test_nil_reason_is_a_failure_of_the_object(void **state) {
  expect_alone(*state, "fail", TQ_LUA_FAILED, "not found here");
}

static void test_require_loads_lib_modules(void **state) {
  expect_alone(*state, "require_lib", TQ_LUA_OK, "");
}

static void test_collectgarbage_is_limited(void **state) {
  expect_alone(*state, "collectgarbage_full", TQ_LUA_ERROR, "not allowed in the sandbox");
}

static void test_a_returned_table_is_shown(void **state) {
  fixture *f = *state;
  tq_lua_run *run = lt_start(f->rt, f->s, "show_return", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const cJSON *show = tq_lua_run_changeset(run)->show;
  assert_non_null(show);
  assert_string_equal(cJSON_GetObjectItem(show, "summary")->valuestring, "shown");
  tq_lua_run_free(run);
}

static void test_timeout_kills_a_busy_run(void **state) {
  fixture *f = *state;
  tq_lua_limits lim = {.memory = 8u << 20, .instructions = UINT64_MAX / 2, .timeout_ms = 200};
  tq_lua_script *s = lt_load(f->rt, "sandbox-timeout", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  tq_lua_run *run = lt_start(f->rt, s, "endless_loop", NULL);
  tq_lua_run *ok = lt_start(f->rt, s, "ok", NULL);
  tq_lua_script_free(s); /* the runs keep it alive */
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_KILLED);
  assert_non_null(strstr(tq_lua_run_message(run), "timeout"));
  assert_int_equal(tq_lua_run_status(ok), TQ_LUA_OK);
  tq_lua_run_free(run);
  tq_lua_run_free(ok);
}

/* A runtime on a thread that blocks every signal: the watchdog's signal could never arm the
 * budget hook there, so the runtime sets it on every run itself and an endless loop is still
 * killed. Runs on its own thread; the test fails (rather than hangs) if it does not end. */
static void *blocked_thread(void *arg) {
  int *status = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  tq_lua *rt = NULL;
  tq_err err = {0};
  if (tq_lua_new(NULL, &rt, &err) != TQ_OK)
    return NULL;
  tq_lua_limits lim = {.memory = 8u << 20, .instructions = 2000000, .timeout_ms = 5000};
  tq_lua_script *s = lt_load(rt, "sandbox-blocked", "sandbox.lua", lim, NULL, 0, NULL);
  tq_lua_run *run = lt_start(rt, s, "endless_pcall", NULL);
  tq_lua_run_all(rt, NULL);
  *status = (int)tq_lua_run_status(run);
  tq_lua_run_free(run);
  tq_lua_script_free(s);
  tq_lua_free(rt);
  return NULL;
}

static void test_budgets_hold_on_a_thread_that_blocks_signals(void **state) {
  (void)state;
  int status = -1;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, blocked_thread, &status), 0);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 20;
  if (pthread_timedjoin_np(t, NULL, &until) != 0)
    fail_msg("an endless loop on a thread that blocks signals was not killed within 20 s");
  assert_int_equal(status, TQ_LUA_KILLED);
}

static void test_unknown_entry_is_refused_at_start(void **state) {
  fixture *f = *state;
  tq_lua_run *run = NULL;
  tq_err err = {0};
  assert_int_equal(tq_lua_run_start(f->rt, f->s, "nope", NULL, NULL, NULL, &run, &err),
                   TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "no entry 'nope'"));
}

static void test_a_script_must_return_entries(void **state) {
  fixture *f = *state;
  tq_lua_limits lim = {0};
  FILE *fp = fopen("/tmp/tq_lua_noentries.lua", "w");
  fputs("x = 1\nreturn 5\n", fp);
  fclose(fp);
  tq_lua_script_opts o;
  tq_lua_script_opts_init(&o);
  o.name = "bad";
  o.path = "/tmp/tq_lua_noentries.lua";
  o.limits = lim;
  tq_lua_script *s = NULL;
  tq_err err = {0};
  assert_int_equal(tq_lua_load(f->rt, &o, &s, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "must return a table of entry functions"));
  fp = fopen("/tmp/tq_lua_noentries.lua", "w");
  fputs("return {\n  x = function() end,,\n}\n", fp);
  fclose(fp);
  assert_int_equal(tq_lua_load(f->rt, &o, &s, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "tq_lua_noentries.lua:2:"));
  unlink("/tmp/tq_lua_noentries.lua");
}

static void test_a_module_loads_once_per_script(void **state) {
  fixture *f = *state;
  tq_lua_run *a = lt_start(f->rt, f->s, "module_id", NULL);
  tq_lua_run *b = lt_start(f->rt, f->s, "module_id", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  tq_lua_limits lim = {0};
  tq_lua_script *other = lt_load(f->rt, "sandbox-other", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(other);
  tq_lua_run *c = lt_start(f->rt, other, "module_id", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(a), TQ_LUA_OK);
  assert_int_equal(tq_lua_run_status(c), TQ_LUA_OK);
  const char *id_a = tq_lua_run_changeset(a)->tags[0];
  assert_string_equal(id_a, tq_lua_run_changeset(b)->tags[0]);     /* shared by runs */
  assert_string_not_equal(id_a, tq_lua_run_changeset(c)->tags[0]); /* not by scripts */
  tq_lua_run_free(a);
  tq_lua_run_free(b);
  tq_lua_run_free(c);
  tq_lua_script_free(other);
}

static void test_a_module_cannot_set_globals_at_run_time(void **state) {
  expect_alone(*state, "module_sets_global", TQ_LUA_ERROR,
               "module 'rst.util': attempt to set global 'leaked' at run time");
}

static void test_a_module_table_is_read_only(void **state) {
  expect_alone(*state, "module_table_write", TQ_LUA_ERROR,
               "attempt to modify read-only table 'rst.util' (field 'double')");
}

static void test_a_module_global_is_not_the_runs(void **state) {
  expect_alone(*state, "module_global_private", TQ_LUA_OK, "");
}

static void test_sleep_lets_other_runs_go_on(void **state) {
  fixture *f = *state;
  int64_t t0 = tq_mono_ms();
  tq_lua_run *sleeper = lt_start(f->rt, f->s, "sleep_short", NULL);
  tq_lua_run *ok = lt_start(f->rt, f->s, "ok", NULL);
  /* the other run ends while the sleeper still sleeps (an order, not a time) */
  while (tq_lua_run_status(ok) == TQ_LUA_ACTIVE)
    assert_int_equal(tq_lua_step(f->rt, 10, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(sleeper), TQ_LUA_ACTIVE);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(sleeper), TQ_LUA_OK);
  assert_string_equal(tq_lua_run_changeset(sleeper)->tags[0], "slept");
  assert_true(tq_mono_ms() - t0 >= 149); /* whole milliseconds of the monotonic clock */
  assert_true(tq_lua_run_elapsed_us(sleeper) >= 145000);
  assert_int_equal(tq_lua_run_status(ok), TQ_LUA_OK);
  tq_lua_run_free(sleeper);
  tq_lua_run_free(ok);
}

static int64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

/* While its runs wait, a runtime (its scheduler and the watchdog that arms the budget hook of
 * long executions) takes next to no CPU, also when runs resume every 2 ms: a spinning thread
 * would take as much as the wait. */
static void test_a_waiting_runtime_uses_no_cpu(void **state) {
  fixture *f = *state;
  tq_lua_run *warm = lt_start(f->rt, f->s, "ok", NULL); /* the watchdog is running */
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  tq_lua_run_free(warm);
  int64_t t0 = tq_mono_ms(), c0 = cpu_us();
  tq_lua_run *sleeper = lt_start(f->rt, f->s, "sleep_steps", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(sleeper), TQ_LUA_OK);
  int64_t wall_us = (tq_mono_ms() - t0) * 1000, used = cpu_us() - c0;
  tq_lua_run_free(sleeper);
  if (used * 4 > wall_us)
    fail_msg("%lld us of CPU over %lld us of waiting", (long long)used, (long long)wall_us);
}

static void test_sleep_past_the_timeout_is_killed(void **state) {
  fixture *f = *state;
  tq_lua_limits lim = {.memory = 8u << 20, .instructions = 1000000, .timeout_ms = 200};
  tq_lua_script *s = lt_load(f->rt, "sandbox-sleep", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  int64_t t0 = tq_mono_ms();
  tq_lua_run *run = lt_start(f->rt, s, "sleep_long", NULL);
  tq_lua_script_free(s);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_KILLED);
  assert_non_null(strstr(tq_lua_run_message(run), "timeout"));
  int64_t took = tq_mono_ms() - t0;
  assert_true(took >= 190 && took < 2000);
  tq_lua_run_free(run);
}

static void test_sleep_refuses_a_negative_time(void **state) {
  expect_alone(*state, "sleep_bad", TQ_LUA_ERROR, "http.sleep: ms must be a number");
}

/* The tests of kills that used to hang: a hang ends the test program (SIGALRM) rather than
 * the suite's timeout. Their script has a small instruction budget and a long timeout, so
 * that the budget, not the clock of a busy machine, ends them. */
#define HANG_GUARD_S 120

static void expect_killed_tight(fixture *f, const char *entry, const char *want) {
  tq_lua_limits lim = {.memory = 16u << 20, .instructions = 2000000, .timeout_ms = 60000};
  tq_lua_script *s = lt_load(f->rt, "sandbox-tight", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  expect_alone_in(f, s, entry, TQ_LUA_KILLED, want);
  tq_lua_script_free(s);
}

static void test_an_endless_message_handler_is_not_run_by_a_kill(void **state) {
  alarm(HANG_GUARD_S);
  expect_killed_tight(*state, "xpcall_loop_handler", "instruction budget exceeded");
  alarm(0);
}

static void test_an_endless_message_handler_after_an_error_is_killed(void **state) {
  alarm(HANG_GUARD_S);
  expect_killed_tight(*state, "xpcall_error_loop_handler", "instruction budget exceeded");
  alarm(0);
}

/* Slices far shorter than the watchdog's tick, each ended by a yield: the instructions of all
 * the slices count, so the budget kills the run long before its timeout. */
static void test_the_instruction_budget_holds_across_yields(void **state) {
  fixture *f = *state;
  alarm(HANG_GUARD_S);
  tq_lua_limits lim = {.memory = 8u << 20, .instructions = 2000000, .timeout_ms = 60000};
  tq_lua_script *s = lt_load(f->rt, "sandbox-sliced", "sandbox.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  tq_lua_run *run = lt_start(f->rt, s, "sliced_loop", NULL);
  tq_lua_script_free(s);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  if (tq_lua_run_status(run) != TQ_LUA_KILLED ||
      strstr(tq_lua_run_message(run), "instruction budget exceeded") == NULL)
    fail_msg("sliced_loop: status %s message '%s'", tq_lua_status_name(tq_lua_run_status(run)),
             tq_lua_run_message(run));
  tq_lua_run_free(run);
  alarm(0);
}

/* A pattern that backtracks for ages inside one C call is charged to the instruction budget
 * and killed there, behind a pcall too; the message names the budget and the function. */
static void test_a_catastrophic_pattern_is_killed(void **state) {
  static const char *const entries[][2] = {{"pattern_find", "string.find"},
                                           {"pattern_match", "string.match"},
                                           {"pattern_gmatch", "string.gmatch"},
                                           {"pattern_gsub", "string.gsub"}};
  alarm(HANG_GUARD_S);
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    char want[128];
    snprintf(want, sizeof want, "instruction budget exceeded (2000000 instructions) in %s",
             entries[i][1]);
    expect_killed_tight(*state, entries[i][0], want);
  }
  alarm(0);
}

/* An outcome-only script (bulk runs) returning a table whose __index loops: the host reads
 * found and message raw, and the run is simply ok. */
static void test_the_host_reads_a_returned_table_raw(void **state) {
  fixture *f = *state;
  alarm(HANG_GUARD_S);
  char path[4096], lib[4096];
  snprintf(path, sizeof path, "%s", lt_path("sandbox.lua"));
  snprintf(lib, sizeof lib, "%s", lt_path("lib"));
  tq_lua_script_opts o;
  tq_lua_script_opts_init(&o);
  o.name = "sandbox-outcome";
  o.path = path;
  o.lib_dir = lib;
  o.outcome_only = 1;
  tq_lua_script *s = NULL;
  tq_err err = {0};
  assert_int_equal(tq_lua_load(f->rt, &o, &s, &err), TQ_OK);
  tq_lua_run *run = lt_start(f->rt, s, "return_looping_index", NULL);
  tq_lua_script_free(s);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_non_null(cs->show);
  assert_null(cJSON_GetObjectItem(cs->show, "found"));
  tq_lua_run_free(run);
  alarm(0);
}

/* The chunk's entries table lost its entry after the load's probe and its __index loops: the
 * host reads the entry raw and reports it missing. */
static void test_the_host_reads_the_entries_table_raw(void **state) {
  fixture *f = *state;
  alarm(HANG_GUARD_S);
  tq_lua_limits lim = {0};
  tq_lua_script *s = lt_load(f->rt, "entries-index", "entries_index.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  tq_lua_run *run = lt_start(f->rt, s, "go", NULL);
  tq_lua_script_free(s);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_ERROR);
  assert_non_null(strstr(tq_lua_run_message(run), "entry 'go' is not a function"));
  tq_lua_run_free(run);
  alarm(0);
}

static void test_endless_close_handlers_do_not_stop_a_kill(void **state) {
  alarm(HANG_GUARD_S);
  expect_killed_tight(*state, "close_loop_handler", "instruction budget exceeded");
  alarm(0);
}

/* The runtime closes (teardown) without running the finaliser. */
static void test_a_gc_added_after_setmetatable_never_runs(void **state) {
  fixture *f = *state;
  alarm(HANG_GUARD_S);
  tq_lua_run *run = lt_start(f->rt, f->s, "gc_added_later", NULL);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  tq_lua_run_free(run);
  teardown(state);
  alarm(0);
  *state = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_os_execute_is_absent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_is_absent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_require_of_a_relative_path_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_require_of_an_absolute_path_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_binary_chunks_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_of_text_uses_the_run_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_is_absent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_dump_is_unreachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_bomb_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_bomb_inside_pcall_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_endless_loop_inside_pcall_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deep_recursion_is_an_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deep_recursion_with_room_is_a_stack_overflow, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_writing_the_string_table_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rawset_on_a_library_table_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_the_shared_base_is_out_of_reach, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gc_metamethods_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_global_is_not_visible_to_another_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_error_has_a_traceback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nil_reason_is_a_failure_of_the_object, setup, teardown),
      cmocka_unit_test_setup_teardown(test_require_loads_lib_modules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_collectgarbage_is_limited, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_returned_table_is_shown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_kills_a_busy_run, setup, teardown),
      cmocka_unit_test(test_budgets_hold_on_a_thread_that_blocks_signals),
      cmocka_unit_test_setup_teardown(test_unknown_entry_is_refused_at_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_script_must_return_entries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_module_loads_once_per_script, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_module_cannot_set_globals_at_run_time, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_a_module_table_is_read_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_module_global_is_not_the_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sleep_lets_other_runs_go_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_waiting_runtime_uses_no_cpu, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sleep_past_the_timeout_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sleep_refuses_a_negative_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_endless_message_handler_is_not_run_by_a_kill, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_an_endless_message_handler_after_an_error_is_killed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_the_instruction_budget_holds_across_yields, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_a_catastrophic_pattern_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_endless_close_handlers_do_not_stop_a_kill, setup,
                                      teardown),
      cmocka_unit_test_setup(test_a_gc_added_after_setmetatable_never_runs, setup),
      cmocka_unit_test_setup_teardown(test_the_host_reads_a_returned_table_raw, setup, teardown),
      cmocka_unit_test_setup_teardown(test_the_host_reads_the_entries_table_raw, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
