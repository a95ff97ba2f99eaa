/* cmd_import.c: `tqhost indicator import FILE`: one value a line, or CSV (libcsv) with a
 * header naming value, type, source, status, description, tags and attribute columns. Good
 * rows are imported in batched transactions; every bad row is reported with its line number
 * and reason, and the command then exits 1. */
#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_int.h"

#define BATCH_ROWS 50000
#define MAX_COLS 64

static const char IMPORT_HELP[] =
    "usage: tqhost indicator import FILE [--source S] [--status S] [--type T]\n"
    "FILE holds one indicator a line ('#' starts a comment), or CSV whose header names a\n"
    "'value' column and optionally 'type', 'source', 'status', 'description', 'tags'\n"
    "(separated by ';'); every other column is an attribute of that name.\n"
    "Good lines are imported; each bad line is reported as FILE:LINE: reason, exit status 1.\n";

typedef struct importer {
  cli *c;
  const char *path;
  const char *def_source, *def_status, *def_type;
  int csv;                /* CSV with a header */
  char *header[MAX_COLS]; /* CSV column names */
  size_t n_header;
  char *cells[MAX_COLS]; /* the current row */
  size_t n_cells;
  long line, row_line; /* physical line being read, line where the row began */
  long rows, added, merged, bad;
  int in_tx;
  tq_code fatal; /* a database failure stops the import */
  tq_err err;
} importer;

static void row_clear(importer *im) {
  for (size_t i = 0; i < im->n_cells; i++)
    free(im->cells[i]);
  im->n_cells = 0;
}

__attribute__((format(printf, 2, 3))) static void report_bad(importer *im, const char *fmt, ...) {
  va_list ap;
  im->bad++;
  char msg[1024]; /* holds cells of the file: escaped before it reaches the terminal */
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s:%ld: %s\n", cli_txt(im->path), im->row_line, cli_txt(msg));
}

static const char *cell(importer *im, const char *col) {
  for (size_t i = 0; i < im->n_header && i < im->n_cells; i++)
    if (strcasecmp(im->header[i], col) == 0)
      return im->cells[i][0] ? im->cells[i] : NULL;
  return NULL;
}

static int is_known_col(const char *name) {
  static const char *known[] = {"value", "type", "source", "status", "description", "tags"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcasecmp(known[i], name) == 0)
      return 1;
  return 0;
}

/* Writes one object; a bad value is reported, a database failure is fatal. */
static void import_one(importer *im, const char *value, const char *type, const char *source,
                       const char *status, const char *desc, tq_attr_in *attrs, size_t n_attrs,
                       const char **tags, size_t n_tags) {
  if (!im->in_tx) {
    if (tq_lib_begin(im->c->lib, &im->err) != TQ_OK) {
      im->fatal = im->err.code;
      return;
    }
    im->in_tx = 1;
  }
  const char *srcs[1] = {source};
  tq_object_in in = {.indicator_type = type,
                     .value = value,
                     .status = status,
                     .description = desc,
                     .sources = srcs,
                     .n_sources = 1,
                     .attrs = attrs,
                     .n_attrs = n_attrs,
                     .tags = tags,
                     .n_tags = n_tags};
  int created = 0;
  tq_err err;
  tq_code rc = tq_lib_object_put(im->c->lib, &in, NULL, &created, &err);
  if (rc == TQ_EINVAL) {
    report_bad(im, "%s", err.msg);
    return;
  }
  if (rc != TQ_OK) {
    im->fatal = rc;
    im->err = err;
    return;
  }
  created ? im->added++ : im->merged++;
  if ((im->added + im->merged) % BATCH_ROWS == 0) {
    im->in_tx = 0;
    if (tq_lib_commit(im->c->lib, &im->err) != TQ_OK)
      im->fatal = im->err.code;
  }
}

static void import_csv_row(importer *im) {
  const char *value = cell(im, "value");
  if (value == NULL) {
    report_bad(im, "no value in the 'value' column");
    return;
  }
  if (im->n_cells > im->n_header) {
    report_bad(im, "%zu cells but the header names %zu columns", im->n_cells, im->n_header);
    return;
  }
  tq_attr_in attrs[MAX_COLS];
  size_t n_attrs = 0;
  for (size_t i = 0; i < im->n_cells; i++)
    if (!is_known_col(im->header[i]) && im->cells[i][0])
      attrs[n_attrs++] = (tq_attr_in){.name = im->header[i], .value = im->cells[i]};
  const char *tags[MAX_COLS];
  size_t n_tags = 0;
  char *tagcopy = cell(im, "tags") ? strdup(cell(im, "tags")) : NULL, *save = NULL;
  for (char *t = tagcopy ? strtok_r(tagcopy, ";", &save) : NULL; t && n_tags < MAX_COLS;
       t = strtok_r(NULL, ";", &save))
    if (*tq_str_trim(t))
      tags[n_tags++] = t;
  const char *type = cell(im, "type") ? cell(im, "type") : im->def_type;
  const char *source = cell(im, "source") ? cell(im, "source") : im->def_source;
  const char *status = cell(im, "status") ? cell(im, "status") : im->def_status;
  import_one(im, value, type, source, status, cell(im, "description"), attrs, n_attrs, tags,
             n_tags);
  free(tagcopy);
}

static void on_field(void *s, size_t len, void *data) {
  importer *im = data;
  if (im->n_cells == 0)
    im->row_line = im->line;
  if (im->n_cells < MAX_COLS)
    im->cells[im->n_cells++] = strndup(s ? s : "", len);
}

static void on_row(int term, void *data) {
  (void)term;
  importer *im = data;
  if (im->fatal == TQ_OK) {
    if (im->csv && im->n_header == 0) {
      for (size_t i = 0; i < im->n_cells; i++)
        im->header[i] = strdup(tq_str_trim(im->cells[i]));
      im->n_header = im->n_cells;
    } else if (im->n_cells > 0 && !(im->n_cells == 1 && im->cells[0][0] == '\0')) {
      im->rows++;
      import_csv_row(im);
    }
  }
  row_clear(im);
}

/* Decides from the first line whether the file is CSV with a 'value' header. */
static int looks_like_csv(const char *line) {
  char *copy = strdup(line), *save = NULL;
  int found = 0;
  for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
    tq_str_trim(t);
    if (*t == '"')
      memmove(t, t + 1, strlen(t)), t[strcspn(t, "\"")] = '\0';
    if (strcasecmp(t, "value") == 0)
      found = 1;
  }
  free(copy);
  return found;
}

static void import_plain_line(importer *im, char *line) {
  tq_str_trim(line);
  if (*line == '\0' || *line == '#')
    return;
  im->rows++;
  im->row_line = im->line;
  import_one(im, line, im->def_type, im->def_source, im->def_status, NULL, NULL, 0, NULL, 0);
}

static int run_import(importer *im, FILE *f) {
  struct csv_parser p;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  if (csv_init(&p, CSV_APPEND_NULL) != 0)
    return EXIT_FAIL;
  while (im->fatal == TQ_OK && (n = getline(&line, &cap, f)) >= 0) {
    im->line++;
    if (im->line == 1)
      im->csv = looks_like_csv(line);
    if (!im->csv) {
      import_plain_line(im, line);
      continue;
    }
    if (csv_parse(&p, line, (size_t)n, on_field, on_row, im) != (size_t)n) {
      im->row_line = im->line;
      report_bad(im, "CSV: %s", csv_strerror(csv_error(&p)));
      break;
    }
  }
  if (im->csv && im->fatal == TQ_OK)
    csv_fini(&p, on_field, on_row, im);
  csv_free(&p);
  row_clear(im);
  free(line);
  return EXIT_OK;
}

int cli_cmd_import(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"source", required_argument, 0, 's'},
                                       {"status", required_argument, 0, 'S'},
                                       {"type", required_argument, 0, 't'},
                                       {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(IMPORT_HELP);
  importer im = {.c = c, .def_source = "Analyst"};
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 's': im.def_source = optarg; break;
    case 'S': im.def_status = optarg; break;
    case 't': im.def_type = optarg; break;
    default: return EXIT_USAGE;
    }
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one FILE");
  im.path = argv[optind];
  FILE *f = strcmp(im.path, "-") == 0 ? stdin : fopen(im.path, "r");
  if (f == NULL) {
    fprintf(stderr, "%s: %s: %s\n", c->prog, im.path, strerror(errno));
    return EXIT_FAIL;
  }
  if (cli_lib(c, 0) == NULL) {
    if (f != stdin)
      fclose(f);
    return EXIT_FAIL;
  }
  run_import(&im, f);
  if (f != stdin)
    fclose(f);
  for (size_t i = 0; i < im.n_header; i++)
    free(im.header[i]);
  if (im.in_tx && im.fatal == TQ_OK && tq_lib_commit(c->lib, &im.err) != TQ_OK)
    im.fatal = im.err.code;
  if (im.fatal != TQ_OK) {
    tq_lib_rollback(c->lib);
    fprintf(stderr, "%s: %s: stopped at line %ld: %s (the last batch was not written)\n", c->prog,
            im.path, im.line, im.err.msg);
    return EXIT_FAIL;
  }
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", im.path);
    cJSON_AddNumberToObject(j, "rows", (double)im.rows);
    cJSON_AddNumberToObject(j, "added", (double)im.added);
    cJSON_AddNumberToObject(j, "merged", (double)im.merged);
    cJSON_AddNumberToObject(j, "bad", (double)im.bad);
    cli_print_json(j);
  } else {
    printf("%s: %ld rows: %ld added, %ld merged, %ld bad\n", im.path, im.rows, im.added, im.merged,
           im.bad);
  }
  return im.bad ? EXIT_FAIL : EXIT_OK;
}
