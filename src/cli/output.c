/* output.c: how objects look on a terminal and in --json, and the query options shared by
 * every command that selects indicators. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

/* The escaped copies handed out by cli_txt: a ring, so that one printf may use several. */
#define TXT_SLOTS 16
static char *g_txt[TXT_SLOTS];
static size_t g_txt_next;

static const char *txt(const char *s, int flags) {
  if (s == NULL || !tq_str_needs_escape(s, flags))
    return s;
  free(g_txt[g_txt_next]);
  char *e = g_txt[g_txt_next] = tq_str_escape_dup(s, flags);
  g_txt_next = (g_txt_next + 1) % TXT_SLOTS;
  return e ? e : "(out of memory)";
}

const char *cli_txt(const char *s) { return txt(s, 0); }
const char *cli_txt_lines(const char *s) { return txt(s, TQ_ESC_LINES); }

static void add_time(cJSON *j, const char *key, int64_t t) {
  if (t == 0) {
    cJSON_AddNullToObject(j, key);
    return;
  }
  char buf[20];
  tq_time_format(t, buf);
  cJSON_AddStringToObject(j, key, buf);
}

cJSON *cli_object_json(const tq_object *o) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", (double)o->id);
  cJSON_AddStringToObject(j, "object_type", o->object_type);
  if (o->indicator_type) {
    cJSON_AddStringToObject(j, "type", o->indicator_type);
    cJSON_AddStringToObject(j, "class", o->indicator_class ? o->indicator_class : "");
  }
  cJSON_AddStringToObject(j, "value", o->value);
  cJSON_AddStringToObject(j, "status", tq_lib_status_name(o->status));
  cJSON_AddNumberToObject(j, "score", o->score);
  cJSON_AddNumberToObject(j, "generated_score", o->score_generated);
  if (o->score_manual >= 0)
    cJSON_AddNumberToObject(j, "manual_score", o->score_manual);
  else
    cJSON_AddNullToObject(j, "manual_score");
  if (o->description)
    cJSON_AddStringToObject(j, "description", o->description);
  add_time(j, "published_at", o->published_at);
  add_time(j, "created_at", o->created_at);
  add_time(j, "updated_at", o->updated_at);
  add_time(j, "expires_at", o->expires_at);
  cJSON *srcs = cJSON_AddArrayToObject(j, "sources");
  for (size_t i = 0; i < o->n_sources; i++)
    cJSON_AddItemToArray(srcs, cJSON_CreateString(o->sources[i]));
  cJSON *attrs = cJSON_AddArrayToObject(j, "attributes");
  for (size_t i = 0; i < o->n_attrs; i++) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "name", o->attrs[i].name);
    cJSON_AddStringToObject(a, "value", o->attrs[i].value);
    cJSON_AddStringToObject(a, "source", o->attrs[i].source);
    if (o->attrs[i].tlp)
      cJSON_AddStringToObject(a, "tlp", tq_lib_tlp_name(o->attrs[i].tlp));
    cJSON_AddItemToArray(attrs, a);
  }
  cJSON *tags = cJSON_AddArrayToObject(j, "tags");
  for (size_t i = 0; i < o->n_tags; i++)
    cJSON_AddItemToArray(tags, cJSON_CreateString(o->tags[i]));
  cJSON *links = cJSON_AddArrayToObject(j, "links");
  for (size_t i = 0; i < o->n_links; i++) {
    const tq_link *l = &o->links[i];
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", (double)l->other_id);
    cJSON_AddStringToObject(a, "object_type", l->other_type);
    if (l->other_indicator_type)
      cJSON_AddStringToObject(a, "type", l->other_indicator_type);
    cJSON_AddStringToObject(a, "value", l->other_value);
    if (l->link_type)
      cJSON_AddStringToObject(a, "link_type", l->link_type);
    cJSON_AddStringToObject(a, "source", l->source);
    cJSON_AddItemToArray(links, a);
  }
  return j;
}

void cli_object_print(const tq_object *o) {
  char t[20];
  printf("%s %s  (id %lld)\n", o->indicator_type ? o->indicator_type : o->object_type,
         cli_txt(o->value), (long long)o->id);
  printf("  status      %s\n", tq_lib_status_name(o->status));
  if (o->score_manual >= 0)
    printf("  score       %d (manual; generated %.1f)\n", o->score, o->score_generated);
  else
    printf("  score       %d (generated %.1f)\n", o->score, o->score_generated);
  if (o->expires_at) {
    tq_time_format(o->expires_at, t);
    printf("  expires     %s\n", t);
  } else {
    printf("  expires     never\n");
  }
  tq_time_format(o->updated_at, t);
  printf("  updated     %s\n", t);
  if (o->description)
    printf("  description %s\n", cli_txt(o->description));
  printf("  sources     ");
  for (size_t i = 0; i < o->n_sources; i++)
    printf("%s%s", i ? ", " : "", cli_txt(o->sources[i]));
  printf("%s\n", o->n_sources ? "" : "(none)");
  if (o->n_tags) {
    printf("  tags        ");
    for (size_t i = 0; i < o->n_tags; i++)
      printf("%s%s", i ? ", " : "", cli_txt(o->tags[i]));
    printf("\n");
  }
  if (o->n_attrs)
    printf("  attributes\n");
  for (size_t i = 0; i < o->n_attrs; i++)
    printf("    %-24s %s  [%s%s%s]\n", cli_txt(o->attrs[i].name), cli_txt(o->attrs[i].value),
           cli_txt(o->attrs[i].source), o->attrs[i].tlp ? ", TLP:" : "",
           tq_lib_tlp_name(o->attrs[i].tlp));
  if (o->n_links)
    printf("  related\n");
  for (size_t i = 0; i < o->n_links; i++) {
    const tq_link *l = &o->links[i];
    printf("    %-24s %s%s%s  [%s]\n",
           l->other_indicator_type ? l->other_indicator_type : l->other_type,
           cli_txt(l->other_value), l->link_type ? "  " : "",
           l->link_type ? cli_txt(l->link_type) : "", cli_txt(l->source));
  }
}

void cli_object_line(const tq_object *o) {
  printf("%8lld  %-14s %-12s %5d  %s\n", (long long)o->id,
         o->indicator_type ? o->indicator_type : o->object_type, tq_lib_status_name(o->status),
         o->score, cli_txt(o->value));
}

/* Appends a copy of s to the list (*arr, *n). */
static int push_str(char ***arr, size_t *n, const char *s) {
  char **p = realloc(*arr, (*n + 1) * sizeof *p);
  if (p == NULL)
    return -1;
  *arr = p;
  p[*n] = strdup(s);
  if (p[*n] == NULL)
    return -1;
  (*n)++;
  return 0;
}

/* Splits a comma list of names into an array. */
static int push_list(char ***arr, size_t *n, const char *list) {
  char *copy = strdup(list), *save = NULL;
  if (copy == NULL)
    return -1;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    if (push_str(arr, n, tq_str_trim(tok)) != 0) {
      free(copy);
      return -1;
    }
  free(copy);
  return 0;
}

int cli_query_opts(cli *c, int argc, char **argv, tq_query *q, int *limit) {
  static const struct option opts[] = {{"object-type", required_argument, 0, 'o'},
                                       {"type", required_argument, 0, 't'},
                                       {"status", required_argument, 0, 's'},
                                       {"score-min", required_argument, 0, 'm'},
                                       {"score-max", required_argument, 0, 'M'},
                                       {"source", required_argument, 0, 'S'},
                                       {"tag", required_argument, 0, 'g'},
                                       {"attribute", required_argument, 0, 'a'},
                                       {"updated-since", required_argument, 0, 'u'},
                                       {"limit", required_argument, 0, 'l'},
                                       {0, 0, 0, 0}};
  tq_err err;
  long long v;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 'o':
      free(q->object_type);
      q->object_type = strdup(optarg);
      break;
    case 't':
      if (push_list(&q->indicator_types, &q->n_indicator_types, optarg) != 0)
        return EXIT_FAIL;
      for (size_t i = 0; i < q->n_indicator_types; i++)
        if (tq_lib_indicator_type_canon(q->indicator_types[i], NULL) == NULL)
          return cli_usage_error(c, "--type: '%s' is not an indicator type", q->indicator_types[i]);
      break;
    case 's': {
      char **names = NULL;
      size_t n = 0;
      if (push_list(&names, &n, optarg) != 0)
        return EXIT_FAIL;
      int bad = 0;
      for (size_t i = 0; i < n; i++) {
        int s = tq_lib_status_from_name(names[i]);
        if (s == 0 && !bad) {
          cli_usage_error(c,
                          "--status: '%s' is not a status (Active, Expired, Indirect, Review, "
                          "Whitelisted)",
                          names[i]);
          bad = 1;
        }
        int *p = realloc(q->statuses, (q->n_statuses + 1) * sizeof *p);
        if (p) {
          q->statuses = p;
          q->statuses[q->n_statuses++] = s;
        }
        free(names[i]);
      }
      free(names);
      if (bad)
        return EXIT_USAGE;
      break;
    }
    case 'm':
    case 'M':
      if (tq_parse_int(optarg, 0, 10, &v, ch == 'm' ? "--score-min" : "--score-max", &err))
        return cli_usage_error(c, "%s", err.msg);
      *(ch == 'm' ? &q->score_min : &q->score_max) = (int)v;
      break;
    case 'S':
      free(q->source);
      q->source = strdup(optarg);
      break;
    case 'g':
      free(q->tag);
      q->tag = strdup(optarg);
      break;
    case 'a': {
      const char *eq = strchr(optarg, '=');
      free(q->attr_name);
      free(q->attr_value);
      q->attr_name = eq ? strndup(optarg, (size_t)(eq - optarg)) : strdup(optarg);
      q->attr_value = eq ? strdup(eq + 1) : NULL;
      break;
    }
    case 'u': {
      int64_t t;
      if (tq_time_parse(optarg, &t, NULL, &err) != TQ_OK)
        return cli_usage_error(c, "--updated-since: %s", err.msg);
      q->updated_since = t;
      break;
    }
    case 'l':
      if (limit == NULL)
        return cli_usage_error(c, "--limit does not apply here");
      if (tq_parse_int(optarg, 0, 1000000000, &v, "--limit", &err))
        return cli_usage_error(c, "%s", err.msg);
      *limit = (int)v;
      break;
    default: return EXIT_USAGE;
    }
  }
  return EXIT_OK;
}

int cli_walk_query(cli *c, const tq_query *q, long long limit, cJSON *arr) {
  tq_cursor *cur = NULL;
  tq_err err;
  int64_t ids[256];
  size_t n = 0;
  long long shown = 0;
  int rc = EXIT_OK;
  if (tq_lib_cursor_open(c->lib, q, 0, &cur, &err) != TQ_OK)
    return cli_fail(c, &err);
  do {
    if (tq_lib_cursor_next(cur, ids, 256, &n, &err) != TQ_OK) {
      rc = cli_fail(c, &err);
      break;
    }
    for (size_t i = 0; i < n && rc == EXIT_OK && (limit == 0 || shown < limit); i++, shown++) {
      tq_object *o = NULL;
      if (tq_lib_object_get(c->lib, ids[i], &o, &err) != TQ_OK) {
        rc = cli_fail(c, &err);
        break;
      }
      if (arr)
        cJSON_AddItemToArray(arr, cli_object_json(o));
      else
        cli_object_line(o);
      tq_object_free(o);
    }
  } while (rc == EXIT_OK && n > 0 && (limit == 0 || shown < limit));
  tq_lib_cursor_close(cur);
  return rc;
}
