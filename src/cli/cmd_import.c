/* cmd_import.c: `tqhost indicator import FILE`: the options and the report of an import; the
 * import itself (parsing, row checks, batches) is the library's (tq_lib_import). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static const char IMPORT_HELP[] =
    "usage: tqhost indicator import FILE [--source S] [--status S] [--type T]\n"
    "FILE ('-' for standard input) holds one indicator a line ('#' starts a comment), or CSV\n"
    "whose header names a 'value' column and optionally 'type', 'source', 'status',\n"
    "'description', 'tags' (separated by ';'); every other column is an attribute of that name.\n"
    "Text must be UTF-8 without NUL bytes; a description holds at most 262144 bytes, an\n"
    "attribute value 65536 and an attribute name 256.\n"
    "Good lines are imported; each bad line is reported as FILE:LINE: reason (a quote left open\n"
    "at the end of the file is reported at the line where its row began), exit status 1.\n";

/* Reports one refused row: FILE:LINE: why, or a JSON error object with --json. */
static void on_bad(void *ud, const char *path, long line, const char *why) {
  cli *c = ud;
  if (!c->json) {
    fprintf(stderr, "%s:%ld: %s\n", cli_txt(path), line, cli_txt(why));
    return;
  }
  cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
  cJSON_AddStringToObject(e, "code", "EINVAL");
  char msg[1024];
  snprintf(msg, sizeof msg, "%s:%ld: %s", path, line, why);
  cJSON_AddStringToObject(e, "message", msg);
  cJSON_AddStringToObject(e, "file", path);
  cJSON_AddNumberToObject(e, "line", (double)line);
  char *s = cJSON_PrintUnformatted(j);
  if (s)
    fprintf(stderr, "%s\n", s);
  free(s);
  cJSON_Delete(j);
}

int cli_cmd_import(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"source", required_argument, 0, 's'},
                                       {"status", required_argument, 0, 'S'},
                                       {"type", required_argument, 0, 't'},
                                       {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(IMPORT_HELP);
  tq_import_opts o = {.source = "Analyst", .on_bad = on_bad, .ud = c};
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 's': o.source = optarg; break;
    case 'S': o.status = optarg; break;
    case 't': o.type = optarg; break;
    default: return EXIT_USAGE;
    }
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one FILE");
  o.path = argv[optind];
  FILE *f = strcmp(o.path, "-") == 0 ? stdin : fopen(o.path, "r");
  tq_err err;
  if (f == NULL) {
    tq_err_set(&err, TQ_EIO, "%s: %s", o.path, strerror(errno));
    return cli_fail(c, &err);
  }
  tq_import_stats st;
  tq_code rc = cli_lib(c, 0) ? tq_lib_import(c->lib, f, &o, &st, &err) : TQ_EIO;
  if (f != stdin)
    fclose(f);
  if (c->lib == NULL)
    return EXIT_FAIL;
  if (rc != TQ_OK) {
    tq_err_prefix(&err, "%s: stopped at line %ld (the last batch was not written): ", o.path,
                  st.line);
    return cli_fail(c, &err);
  }
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", o.path);
    cJSON_AddNumberToObject(j, "rows", (double)st.rows);
    cJSON_AddNumberToObject(j, "added", (double)st.added);
    cJSON_AddNumberToObject(j, "merged", (double)st.merged);
    cJSON_AddNumberToObject(j, "bad", (double)st.bad);
    cli_print_json(j);
  } else {
    printf("%s: %ld rows: %ld added, %ld merged, %ld bad\n", cli_txt(o.path), st.rows, st.added,
           st.merged, st.bad);
  }
  return st.bad ? EXIT_FAIL : EXIT_OK;
}
