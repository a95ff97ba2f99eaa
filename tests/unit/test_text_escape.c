/* test_text_escape.c: text from outside on its way to a terminal or a log line: control
 * characters become visible escapes (tq_str_escape), a log line stays one line with its
 * quoted message intact (tq_log), whatever the message holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tqhost/core.h"

static char *esc(const char *s, int flags) {
  char *e = tq_str_escape_dup(s, flags);
  assert_non_null(e);
  return e;
}

static void expect_escape(const char *in, int flags, const char *want) {
  char *got = esc(in, flags);
  if (strcmp(got, want) != 0)
    fail_msg("escape of %s: got '%s', wanted '%s'", in, got, want);
  free(got);
}

static void test_control_characters_become_visible(void **state) {
  (void)state;
  expect_escape("a\nb\rc\td", 0, "a\\nb\\rc\\td");
  expect_escape("red \x1b[31m bell \a del \x7f nul-less \x01", 0,
                "red \\x1b[31m bell \\x07 del \\x7f nul-less \\x01");
  expect_escape("csi \xc2\x9b"
                "2J and \xc2\x85",
                0, "csi \\u009b2J and \\u0085");
  expect_escape("plain ünïcode ✓ C:\\path \"q\"", 0, "plain ünïcode ✓ C:\\path \"q\"");
  assert_false(tq_str_needs_escape("plain ünïcode ✓ C:\\path", 0));
  assert_true(tq_str_needs_escape("x\x1b", 0));
}

static void test_quote_mode_escapes_backslash_and_quote(void **state) {
  (void)state;
  expect_escape("say \"hi\" \\ there\n", TQ_ESC_QUOTE, "say \\\"hi\\\" \\\\ there\\n");
}

static void test_lines_mode_keeps_newlines_and_tabs(void **state) {
  (void)state;
  expect_escape("stack:\n\t[C]: in ?\x1b]0;title\a", TQ_ESC_LINES,
                "stack:\n\t[C]: in ?\\x1b]0;title\\x07");
}

static void test_a_cut_escape_is_never_half_written(void **state) {
  (void)state;
  char out[6];
  size_t need = tq_str_escape(out, sizeof out, "abc\x1b", 0);
  assert_int_equal(need, 7);
  assert_string_equal(out, "abc"); /* "\x1b" (4 bytes) does not fit after "abc" */
}

/* What tq_log writes for msg, captured from stderr. */
static char *log_line(const char *msg) {
  fflush(stderr);
  int saved = dup(2);
  FILE *tmp = tmpfile();
  dup2(fileno(tmp), 2);
  tq_log(TQ_LOG_ERROR, "test", "%s", msg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  long n = ftell(tmp);
  char *text = calloc(1, (size_t)n + 1);
  rewind(tmp);
  assert_int_equal(fread(text, 1, (size_t)n, tmp), (size_t)n);
  fclose(tmp);
  return text;
}

static void test_a_log_message_cannot_forge_a_line(void **state) {
  (void)state;
  char *line = log_line("x\"\nlevel=error part=auth msg=\"admin logged in\x1b[2K");
  assert_string_equal(line, "level=error part=test msg=\"x\\\"\\nlevel=error part=auth "
                            "msg=\\\"admin logged in\\x1b[2K\"\n");
  assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line */
  free(line);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_control_characters_become_visible),
      cmocka_unit_test(test_quote_mode_escapes_backslash_and_quote),
      cmocka_unit_test(test_lines_mode_keeps_newlines_and_tabs),
      cmocka_unit_test(test_a_cut_escape_is_never_half_written),
      cmocka_unit_test(test_a_log_message_cannot_forge_a_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
