/* refang.c: undoes the defanging that reports apply to indicators so that nobody clicks
 * them ("hxxp://evil[.]com", "user[@]mail(.)ru"). Only well-known markers are replaced;
 * anything else is kept so that the validators can say what is wrong with it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ioc_int.h"

/* Markers and what they stand for, longest first where one is a prefix of another. */
static const struct {
  const char *from;
  const char *to;
} refang_marks[] = {
    {"[://]", "://"}, {"[dot]", "."}, {"(dot)", "."}, {"{dot}", "."}, {"[.]", "."}, {"(.)", "."},
    {"{.}", "."},     {"\\.", "."},   {"[:]", ":"},   {"(:)", ":"},   {"[/]", "/"}, {"[at]", "@"},
    {"(at)", "@"},    {"{at}", "@"},  {"[@]", "@"},   {"(@)", "@"},   {"{@}", "@"},
};
#define REFANG_NMARKS (sizeof refang_marks / sizeof refang_marks[0])

/* Defanged schemes, recognised only at the start and only before "s", ":" or "[", so that a
 * host name that happens to begin with "hxxp" is left alone. */
static const struct {
  const char *from;
  const char *to;
} refang_schemes[] = {{"hxxp", "http"}, {"hxtp", "http"}, {"htxp", "http"}, {"fxp", "ftp"}};
#define REFANG_NSCHEMES (sizeof refang_schemes / sizeof refang_schemes[0])

/* Writes the refanged scheme at the start of s into out; returns bytes consumed. */
static size_t refang_scheme(const char *s, char *out) {
  for (size_t i = 0; i < REFANG_NSCHEMES; i++) {
    size_t n = strlen(refang_schemes[i].from);
    if (strncasecmp(s, refang_schemes[i].from, n) != 0)
      continue;
    const char *next = s + n + (ioc_lower((unsigned char)s[n]) == 's');
    if (*next != ':' && *next != '[')
      continue;
    memcpy(out, refang_schemes[i].to, n); /* "to" has the same length as "from" */
    return n;
  }
  return 0;
}

/* Writes the replacement of the marker at s into out; *used gets the bytes consumed and
 * the function returns the bytes written (0: no marker at s). */
static size_t refang_mark(const char *s, char *out, size_t *used) {
  for (size_t i = 0; i < REFANG_NMARKS; i++) {
    size_t n = strlen(refang_marks[i].from);
    if (strncasecmp(s, refang_marks[i].from, n) != 0)
      continue;
    size_t m = strlen(refang_marks[i].to);
    memcpy(out, refang_marks[i].to, m);
    *used = n;
    return m;
  }
  return 0;
}

/* One pass over value: each marker replaced once. */
static char *refang_once(const char *value) {
  while (ioc_is_space((unsigned char)*value))
    value++;
  size_t n = strlen(value);
  while (n > 0 && ioc_is_space((unsigned char)value[n - 1]))
    n--;
  /* Every replacement is no longer than its marker, so n + 1 bytes are enough. */
  char *out = malloc(n + 1);
  if (out == NULL)
    return NULL;
  size_t i = refang_scheme(value, out), o = i;
  while (i < n) {
    size_t used = 0, wrote = 0;
    if (strchr("[({\\", value[i]) != NULL)
      wrote = refang_mark(value + i, out + o, &used);
    if (used > 0 && i + used <= n) {
      i += used;
      o += wrote;
    } else {
      out[o++] = value[i++];
    }
  }
  out[o] = '\0';
  return out;
}

char *tq_ioc_refang(const char *value) {
  if (value == NULL)
    return NULL;
  /* A marker may hide another ("[[.]]" gives "[.]"): passes go on until nothing changes, so
   * that a canonical form classifies again to itself. A pass that changes the text shortens it
   * or fixes the scheme (once), so a few passes end it; the bound is a safety net. */
  char *out = refang_once(value);
  for (int pass = 0; out != NULL && pass < 64; pass++) {
    char *next = refang_once(out);
    int same = next != NULL && strcmp(next, out) == 0;
    free(out);
    out = next;
    if (same)
      break;
  }
  return out;
}
