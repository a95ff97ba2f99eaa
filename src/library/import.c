/* import.c: importing indicators from a text stream: one value a line, or CSV (libcsv) whose
 * header names a 'value' column. Each row is checked (NUL bytes, UTF-8, its cells against the
 * header) before the library's own checks; good rows are written in batched transactions and
 * every refused row is handed to the caller's report with the line where it began. */
#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define IMPORT_MAX_COLS 64
/* libcsv's parser states (libcsv.c): between rows, and inside a field. Its CSV_STRICT_FINI
 * reports an open quote only in CSV_STRICT mode, which also refuses the stray quotes real
 * files have, so the open quote at the end is read from the state here. */
#define CSV_ROW_NOT_BEGUN 0
#define CSV_FIELD_BEGUN 2

typedef struct importer {
  tq_lib *lib;
  const tq_import_opts *o;
  tq_import_stats *st;
  int csv;                       /* CSV with a header */
  char *header[IMPORT_MAX_COLS]; /* CSV column names */
  size_t n_header;
  char *cells[IMPORT_MAX_COLS]; /* the current row */
  size_t len[IMPORT_MAX_COLS];  /* their lengths (a NUL byte makes strlen shorter) */
  size_t n_cells, n_fields;     /* cells kept, fields seen (more than the maximum is bad) */
  long row_line;                /* the line where the current row began */
  tq_lib_writer *w;             /* the batched transactions (writer.c) */
  int stop;                     /* a bad header: nothing after it means anything */
  tq_code fatal;                /* a database failure stops the import */
  tq_err *err;
} importer;

static void row_clear(importer *im) {
  for (size_t i = 0; i < im->n_cells; i++)
    free(im->cells[i]);
  im->n_cells = 0;
  im->n_fields = 0;
}

__attribute__((format(printf, 2, 3))) static void report_bad(importer *im, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  im->st->bad++;
  if (im->o->on_bad)
    im->o->on_bad(im->o->ud, im->o->path, im->row_line, msg);
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

/* Why the text s[0..n) cannot be stored (NULL when it can); what names it. */
static const char *text_problem(const char *s, size_t n, char *why, size_t cap) {
  if (memchr(s, '\0', n))
    snprintf(why, cap, "contains a NUL byte (at byte %zu)",
             (size_t)((char *)memchr(s, 0, n) - s) + 1);
  else if (tq_utf8_invalid_at(s, n) < n)
    snprintf(why, cap, "is not valid UTF-8 (byte %zu)", tq_utf8_invalid_at(s, n) + 1);
  else
    return NULL;
  return why;
}

/* Writes one object; a bad value is reported, a database failure is fatal. */
static void import_one(importer *im, const tq_object_in *in) {
  int created = 0;
  tq_err err;
  tq_code rc = tq_lib_writer_put(im->w, in, NULL, &created, NULL, &err);
  if (rc == TQ_EINVAL) {
    report_bad(im, "%s", err.msg);
    return;
  }
  if (rc != TQ_OK) {
    im->fatal = rc;
    *im->err = err;
    return;
  }
  created ? im->st->added++ : im->st->merged++;
}

static void import_csv_row(importer *im) {
  char why[96];
  if (im->n_fields > im->n_header) {
    report_bad(im, "%zu cells but the header names %zu columns", im->n_fields, im->n_header);
    return;
  }
  for (size_t i = 0; i < im->n_cells; i++)
    if (text_problem(im->cells[i], im->len[i], why, sizeof why)) {
      report_bad(im, "column '%s' %s", im->header[i], why);
      return;
    }
  const char *value = cell(im, "value");
  if (value == NULL) {
    report_bad(im, "no value in the 'value' column");
    return;
  }
  tq_attr_in attrs[IMPORT_MAX_COLS];
  size_t n_attrs = 0;
  for (size_t i = 0; i < im->n_cells; i++)
    if (!is_known_col(im->header[i]) && im->cells[i][0])
      attrs[n_attrs++] = (tq_attr_in){.name = im->header[i], .value = im->cells[i]};
  const char *tags[IMPORT_MAX_COLS];
  size_t n_tags = 0;
  char *tagcopy = cell(im, "tags") ? strdup(cell(im, "tags")) : NULL, *save = NULL;
  for (char *t = tagcopy ? strtok_r(tagcopy, ";", &save) : NULL; t && n_tags < IMPORT_MAX_COLS;
       t = strtok_r(NULL, ";", &save))
    if (*tq_str_trim(t))
      tags[n_tags++] = t;
  const char *source = cell(im, "source") ? cell(im, "source") : im->o->source;
  const char *srcs[1] = {source ? source : "Analyst"};
  tq_object_in in = {.indicator_type = cell(im, "type") ? cell(im, "type") : im->o->type,
                     .value = value,
                     .status = cell(im, "status") ? cell(im, "status") : im->o->status,
                     .description = cell(im, "description"),
                     .sources = srcs,
                     .n_sources = 1,
                     .attrs = attrs,
                     .n_attrs = n_attrs,
                     .tags = tags,
                     .n_tags = n_tags};
  import_one(im, &in);
  free(tagcopy);
}

/* The header row: column names, each well-formed and unique enough to mean something. */
static void take_header(importer *im) {
  char why[96];
  for (size_t i = 0; i < im->n_cells; i++)
    if (text_problem(im->cells[i], im->len[i], why, sizeof why)) {
      report_bad(im, "header column %zu %s; nothing imported", i + 1, why);
      im->stop = 1;
      return;
    }
  if (im->n_fields > IMPORT_MAX_COLS) {
    report_bad(im, "the header names %zu columns; at most %d are supported", im->n_fields,
               IMPORT_MAX_COLS);
    im->stop = 1;
    return;
  }
  for (size_t i = 0; i < im->n_cells; i++)
    im->header[i] = strdup(tq_str_trim(im->cells[i]));
  im->n_header = im->n_cells;
}

static void on_field(void *s, size_t len, void *data) {
  importer *im = data;
  im->n_fields++;
  if (im->n_cells < IMPORT_MAX_COLS) {
    char *c = malloc(len + 1);
    if (c) {
      memcpy(c, s ? s : "", len);
      c[len] = '\0';
      im->len[im->n_cells] = len;
      im->cells[im->n_cells++] = c;
    }
  }
}

static void on_row(int term, void *data) {
  (void)term;
  importer *im = data;
  if (im->fatal == TQ_OK && !im->stop) {
    if (im->csv && im->n_header == 0) {
      take_header(im);
    } else if (im->n_cells > 0 && !(im->n_fields == 1 && im->len[0] == 0)) {
      im->st->rows++;
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

static void import_plain_line(importer *im, char *line, size_t n) {
  char why[96];
  im->row_line = im->st->line;
  if (memchr(line, '\0', n)) {
    im->st->rows++;
    report_bad(im, "the line %s", text_problem(line, n, why, sizeof why));
    return;
  }
  tq_str_trim(line);
  if (*line == '\0' || *line == '#')
    return;
  im->st->rows++;
  const char *srcs[1] = {im->o->source ? im->o->source : "Analyst"};
  tq_object_in in = {.indicator_type = im->o->type,
                     .value = line,
                     .status = im->o->status,
                     .sources = srcs,
                     .n_sources = 1};
  import_one(im, &in);
}

static void run_import(importer *im, FILE *f) {
  struct csv_parser p;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  if (csv_init(&p, CSV_APPEND_NULL) != 0) {
    im->fatal = tq_err_set(im->err, TQ_ENOMEM, "out of memory");
    return;
  }
  while (im->fatal == TQ_OK && !im->stop && (n = getline(&line, &cap, f)) >= 0) {
    im->st->line++;
    if (im->st->line == 1)
      im->csv = looks_like_csv(line);
    if (!im->csv) {
      import_plain_line(im, line, (size_t)n);
      continue;
    }
    if (p.pstate == CSV_ROW_NOT_BEGUN)
      im->row_line = im->st->line;
    if (csv_parse(&p, line, (size_t)n, on_field, on_row, im) != (size_t)n) {
      report_bad(im, "CSV: %s", csv_strerror(csv_error(&p)));
      break;
    }
  }
  if (im->csv && im->fatal == TQ_OK && !im->stop && p.pstate == CSV_FIELD_BEGUN && p.quoted) {
    im->st->rows++;
    report_bad(im, "unclosed quote (the row starting here runs to the end of the file)");
  } else if (im->csv && im->fatal == TQ_OK && !im->stop) {
    csv_fini(&p, on_field, on_row, im);
  }
  csv_free(&p);
  row_clear(im);
  free(line);
}

tq_code tq_lib_import(tq_lib *lib, FILE *f, const tq_import_opts *o, tq_import_stats *st,
                      tq_err *err) {
  importer im = {.lib = lib, .o = o, .st = st, .err = err};
  memset(st, 0, sizeof *st);
  tq_err_clear(err);
  tq_code rc = tq_lib_writer_open(lib, TQ_IMPORT_BATCH_ROWS, &im.w, err);
  if (rc != TQ_OK)
    return rc;
  run_import(&im, f);
  for (size_t i = 0; i < im.n_header; i++)
    free(im.header[i]);
  if (ferror(f) && im.fatal == TQ_OK)
    im.fatal = tq_err_set(err, TQ_EIO, "%s: read error at line %ld", o->path, st->line);
  /* the last batch is written when all went well, rolled back otherwise */
  rc = tq_lib_writer_close(im.w, im.fatal == TQ_OK, err);
  if (im.fatal == TQ_OK && rc != TQ_OK)
    im.fatal = rc;
  return im.fatal;
}
