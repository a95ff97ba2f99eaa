/* pattern.c: the STIX 2.1 patterning language (STIXPattern.g4): a hand-written lexer and a
 * recursive-descent parser that build the node tree of stix.h in an arena. Precedence, high to
 * low: () > AND > OR > FOLLOWEDBY; qualifiers bind to the nearest observation expression. The
 * recursion is bounded by TQ_STIX_PATTERN_MAX_DEPTH nested brackets and parentheses. The
 * observables are extracted by observable.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stix_int.h"

typedef enum tok_kind {
  T_EOF,
  T_ERROR,
  T_LBRACK,
  T_RBRACK,
  T_LPAREN,
  T_RPAREN,
  T_COLON,
  T_DOT,
  T_COMMA,
  T_STAR,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_AND,
  T_OR,
  T_NOT,
  T_FOLLOWEDBY,
  T_LIKE,
  T_MATCHES,
  T_ISSUBSET,
  T_ISSUPERSET,
  T_EXISTS,
  T_IN,
  T_START,
  T_STOP,
  T_WITHIN,
  T_SECONDS,
  T_REPEATS,
  T_TIMES,
  T_IDENT,
  T_STRING,
  T_INT,
  T_FLOAT,
  T_BOOL,
  T_HEX,
  T_BINARY,
  T_TIMESTAMP
} tok_kind;

static const struct {
  const char *word;
  tok_kind kind;
} keywords[] = {
    {"AND", T_AND},           {"OR", T_OR},
    {"NOT", T_NOT},           {"FOLLOWEDBY", T_FOLLOWEDBY},
    {"LIKE", T_LIKE},         {"MATCHES", T_MATCHES},
    {"ISSUBSET", T_ISSUBSET}, {"ISSUPERSET", T_ISSUPERSET},
    {"EXISTS", T_EXISTS},     {"IN", T_IN},
    {"START", T_START},       {"STOP", T_STOP},
    {"WITHIN", T_WITHIN},     {"SECONDS", T_SECONDS},
    {"REPEATS", T_REPEATS},   {"TIMES", T_TIMES},
    {"true", T_BOOL},         {"false", T_BOOL},
};

typedef struct token {
  tok_kind kind;
  size_t start, end; /* bytes [start, end) of the text */
  int hyphen;        /* an identifier holding '-' (allowed only as an object type) */
} token;

typedef struct parser {
  const char *s;
  size_t len, pos;
  token tok;
  tq_stix_arena *arena;
  int depth;
  size_t n_obs, n_cmp;
  int failed;
  tq_code code;
  size_t err_off;
  char expected[160];
  char found[64];
} parser;

/* ---- errors ------------------------------------------------------------------------------ */

/* 1-based column of byte offset off: code points, so that an editor's column matches. */
static size_t column_of(const char *s, size_t off) {
  size_t col = 1;
  for (size_t i = 0; i < off; i++)
    col += ((unsigned char)s[i] & 0xC0) != 0x80;
  return col;
}

static void describe(parser *P, size_t start, size_t end, char *out, size_t n) {
  if (start >= P->len) {
    snprintf(out, n, "end of pattern");
    return;
  }
  size_t len = end > start ? end - start : 1;
  if (len == 1 && P->s[start] == '\'') {
    snprintf(out, n, "a quote (')");
    return;
  }
  if (len > 40)
    len = 40;
  snprintf(out, n, "'%.*s'", (int)len, P->s + start);
}

/* Records the first fault: at byte off, what was expected; found describes [off, end). */
__attribute__((format(printf, 4, 5))) static void *fail_at(parser *P, size_t off, size_t end,
                                                           const char *fmt, ...) {
  if (P->failed)
    return NULL;
  P->failed = 1;
  P->code = TQ_EINVAL;
  P->err_off = off;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(P->expected, sizeof P->expected, fmt, ap);
  va_end(ap);
  describe(P, off, end, P->found, sizeof P->found);
  P->tok.kind = T_ERROR;
  return NULL;
}

/* A fault at the current token. */
#define EXPECTED(P, ...) fail_at((P), (P)->tok.start, (P)->tok.end, __VA_ARGS__)

static void *oom(parser *P) {
  fail_at(P, P->tok.start, P->tok.end, "memory for the pattern");
  P->code = TQ_ENOMEM;
  return NULL;
}

/* ---- lexer ------------------------------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_hexd(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int is_b64(char c) { return is_alpha(c) || is_digit(c) || c == '+' || c == '/'; }

/* Bytes of the white space at s[i] (STIXPattern.g4 WS: ASCII and Unicode spaces), or 0. */
static size_t space_at(const unsigned char *s, size_t i, size_t len) {
  unsigned char c = s[i];
  if (c == ' ' || (c >= '\t' && c <= '\r'))
    return 1;
  if (c == 0xC2 && i + 1 < len && (s[i + 1] == 0x85 || s[i + 1] == 0xA0))
    return 2;
  if (i + 2 >= len)
    return 0;
  unsigned cp = ((unsigned)(c & 0x0F) << 12) | ((unsigned)(s[i + 1] & 0x3F) << 6) |
                (unsigned)(s[i + 2] & 0x3F);
  if ((c & 0xF0) != 0xE0 || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
    return 0;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
      cp == 0x202F || cp == 0x205F || cp == 0x3000)
    return 3;
  return 0;
}

/* Skips white space and comments; 0 on an unterminated comment. */
static int skip_space(parser *P) {
  const unsigned char *s = (const unsigned char *)P->s;
  for (;;) {
    size_t n;
    if (P->pos < P->len && (n = space_at(s, P->pos, P->len)) > 0) {
      P->pos += n;
    } else if (P->pos + 1 < P->len && s[P->pos] == '/' && s[P->pos + 1] == '/') {
      while (P->pos < P->len && s[P->pos] != '\n')
        P->pos++;
    } else if (P->pos + 1 < P->len && s[P->pos] == '/' && s[P->pos + 1] == '*') {
      size_t open = P->pos;
      for (P->pos += 2; P->pos + 1 < P->len && !(s[P->pos] == '*' && s[P->pos + 1] == '/');)
        P->pos++;
      if (P->pos + 1 >= P->len) {
        fail_at(P, open, open + 2, "'*/' closing this comment");
        return 0;
      }
      P->pos += 2;
    } else {
      return 1;
    }
  }
}

/* A '...' string from the quote at P->pos: the only escapes are \' and \\. */
static int lex_string(parser *P) {
  size_t i = P->pos + 1;
  for (; i < P->len && P->s[i] != '\''; i++) {
    if (P->s[i] != '\\')
      continue;
    if (i + 1 >= P->len || (P->s[i + 1] != '\'' && P->s[i + 1] != '\\')) {
      fail_at(P, i, i + 2, "\\' or \\\\ (the only escapes in a string)");
      return 0;
    }
    i++;
  }
  if (i >= P->len) {
    fail_at(P, P->len, P->len, "a closing quote for the string that starts at column %zu",
            column_of(P->s, P->pos));
    return 0;
  }
  P->pos = i + 1;
  return 1;
}

/* h'..', b'..' and t'..': checked here so that the error points into the literal. */
static int lex_prefixed(parser *P, char prefix) {
  size_t q = P->pos + 1, i = q + 1;
  while (i < P->len && P->s[i] != '\'')
    i++;
  if (i >= P->len) {
    fail_at(P, P->len, P->len, "a closing quote for the literal at column %zu",
            column_of(P->s, P->pos));
    return 0;
  }
  const char *body = P->s + q + 1;
  size_t n = i - q - 1;
  if (prefix == 'h') {
    for (size_t k = 0; k < n; k++)
      if (!is_hexd(body[k]))
        return fail_at(P, q + 1 + k, q + 2 + k, "a hex digit in h'...'") != NULL;
    if (n % 2)
      return fail_at(P, i, i + 1, "an even number of hex digits in h'...'") != NULL;
  } else if (prefix == 'b') {
    size_t pad = n >= 1 && body[n - 1] == '=' ? (n >= 2 && body[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t k = 0; k < n - pad; k++)
      if (!is_b64(body[k]))
        return fail_at(P, q + 1 + k, q + 2 + k, "a base64 character in b'...'") != NULL;
    if (n == 0 || n % 4)
      return fail_at(P, i, i + 1, "base64 in groups of 4 characters (with '=' padding)") != NULL;
  } else {
    tq_stix_time t;
    const char *why = stix_time_scan(body, n, 1, &t);
    if (why)
      return fail_at(P, q + 1, i, "a timestamp YYYY-MM-DDTHH:MM:SS[.s]Z (%s)", why) != NULL;
  }
  P->pos = i + 1;
  return 1;
}

/* +?(0|[1-9][0-9]*) or -..., and floats [+-]?[0-9]*.[0-9]+ */
static int lex_number(parser *P) {
  size_t i = P->pos;
  if (P->s[i] == '+' || P->s[i] == '-')
    i++;
  size_t d0 = i;
  while (i < P->len && is_digit(P->s[i]))
    i++;
  if (i + 1 < P->len && P->s[i] == '.' && is_digit(P->s[i + 1])) {
    for (i++; i < P->len && is_digit(P->s[i]);)
      i++;
    P->tok.kind = T_FLOAT;
  } else if (i == d0) {
    return fail_at(P, P->pos, i + 1, "a number after '%c'", P->s[P->pos]) != NULL;
  } else if (i - d0 > 1 && P->s[d0] == '0') {
    return fail_at(P, d0, i, "an integer without leading zeros") != NULL;
  } else {
    P->tok.kind = T_INT;
  }
  P->pos = i;
  return 1;
}

static void lex_word(parser *P) {
  size_t i = P->pos;
  int hyphen = 0;
  while (i < P->len && (is_alpha(P->s[i]) || is_digit(P->s[i]) || P->s[i] == '-'))
    hyphen |= P->s[i++] == '-';
  P->tok.kind = T_IDENT;
  P->tok.hyphen = hyphen;
  for (size_t k = 0; k < sizeof keywords / sizeof *keywords; k++)
    if (strlen(keywords[k].word) == i - P->pos &&
        memcmp(keywords[k].word, P->s + P->pos, i - P->pos) == 0)
      P->tok.kind = keywords[k].kind;
  P->pos = i;
}

/* Two-character operators first: = == != <> <= >= < > */
static int lex_operator(parser *P) {
  const char *s = P->s + P->pos;
  int two = P->pos + 1 < P->len;
  static const struct {
    const char *op;
    tok_kind kind;
  } ops[] = {{"==", T_EQ}, {"!=", T_NE}, {"<>", T_NE}, {"<=", T_LE},
             {">=", T_GE}, {"=", T_EQ},  {"<", T_LT},  {">", T_GT}};
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
    size_t n = strlen(ops[k].op);
    if ((n == 1 || two) && memcmp(s, ops[k].op, n) == 0) {
      P->tok.kind = ops[k].kind;
      P->pos += n;
      return 1;
    }
  }
  return fail_at(P, P->pos, P->pos + 1, "'!=' (a '!' alone is not an operator)") != NULL;
}

static void next(parser *P) {
  if (P->failed)
    return;
  if (!skip_space(P))
    return;
  P->tok.start = P->pos;
  P->tok.hyphen = 0;
  if (P->pos >= P->len) {
    P->tok.kind = T_EOF;
    P->tok.end = P->pos;
    return;
  }
  char c = P->s[P->pos], c1 = P->pos + 1 < P->len ? P->s[P->pos + 1] : '\0';
  static const char single[] = "[]():.,*";
  static const tok_kind single_kind[] = {T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN,
                                         T_COLON,  T_DOT,    T_COMMA,  T_STAR};
  const char *sp = c ? strchr(single, c) : NULL;
  int ok = 1;
  if (sp && !(c == '.' && is_digit(c1))) {
    P->tok.kind = single_kind[sp - single];
    P->pos++;
  } else if (c == '\'') {
    P->tok.kind = T_STRING;
    ok = lex_string(P);
  } else if ((c == 'h' || c == 'b' || c == 't') && c1 == '\'') {
    P->tok.kind = c == 'h' ? T_HEX : c == 'b' ? T_BINARY : T_TIMESTAMP;
    ok = lex_prefixed(P, c);
  } else if (is_digit(c) || c == '+' || c == '-' || c == '.') {
    ok = lex_number(P);
  } else if (is_alpha(c)) {
    lex_word(P);
  } else if (c == '=' || c == '!' || c == '<' || c == '>') {
    ok = lex_operator(P);
  } else {
    size_t n = 1;
    while (P->pos + n < P->len && ((unsigned char)P->s[P->pos + n] & 0xC0) == 0x80)
      n++;
    ok = fail_at(P, P->pos, P->pos + n, "a STIX pattern token") != NULL;
  }
  if (ok)
    P->tok.end = P->pos;
}

/* The text of a number token, NUL-terminated: the pattern itself need not be. */
static const char *number_text(parser *P, const token *t, char buf[64]) {
  size_t n = t->end - t->start;
  if (n > 63)
    n = 63;
  memcpy(buf, P->s + t->start, n);
  buf[n] = '\0';
  return buf;
}

/* ---- tree building ----------------------------------------------------------------------- */

static tq_stix_node *new_node(parser *P, tq_stix_node_kind kind, size_t offset) {
  tq_stix_node *n = stix_arena_alloc(P->arena, sizeof *n);
  if (n == NULL)
    return oom(P);
  n->kind = kind;
  n->offset = offset;
  return n;
}

static int enter(parser *P) {
  if (++P->depth > TQ_STIX_PATTERN_MAX_DEPTH) {
    EXPECTED(P, "at most %d nested brackets and parentheses", TQ_STIX_PATTERN_MAX_DEPTH);
    P->code = TQ_ELIMIT;
    return 0;
  }
  return 1;
}

/* A string token's text with \' and \\ resolved, in the arena. */
static char *unescape(parser *P, const token *t, size_t *len) {
  const char *s = P->s + t->start + 1;
  size_t n = t->end - t->start - 2, k = 0;
  char *out = stix_arena_alloc(P->arena, n + 1);
  if (out == NULL)
    return oom(P);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\')
      i++;
    out[k++] = s[i];
  }
  out[k] = '\0';
  *len = k;
  return out;
}

enum { LIT_ORDERABLE = 1, LIT_BOOL = 2, LIT_STRING_ONLY = 4 };

static tq_stix_literal *literal(parser *P, int allow) {
  const token t = P->tok;
  tq_stix_literal *l = stix_arena_alloc(P->arena, sizeof *l);
  if (l == NULL)
    return oom(P);
  l->offset = t.start;
  if (allow & LIT_STRING_ONLY) {
    if (t.kind != T_STRING)
      return EXPECTED(P, "a string literal '...'");
  } else if (t.kind == T_BOOL && !(allow & LIT_BOOL)) {
    return EXPECTED(P, "an orderable literal (string, number, timestamp, hex or binary)");
  } else if (t.kind < T_STRING) {
    return EXPECTED(P, "a literal (string '...', number, true, false, h'..', b'..' or t'..')");
  }
  errno = 0;
  switch (t.kind) {
  case T_STRING:
    l->kind = TQ_STIX_LIT_STRING;
    l->text = unescape(P, &t, &l->len);
    break;
  case T_HEX:
  case T_BINARY:
  case T_TIMESTAMP:
    l->kind = t.kind == T_HEX      ? TQ_STIX_LIT_HEX
              : t.kind == T_BINARY ? TQ_STIX_LIT_BINARY
                                   : TQ_STIX_LIT_TIMESTAMP;
    l->len = t.end - t.start - 3;
    l->text = stix_arena_strndup(P->arena, P->s + t.start + 2, l->len);
    if (l->kind == TQ_STIX_LIT_TIMESTAMP && l->text)
      stix_time_scan(l->text, l->len, 1, &l->t);
    break;
  default: /* numbers and booleans keep their source text */
    l->len = t.end - t.start;
    l->text = stix_arena_strndup(P->arena, P->s + t.start, l->len);
    if (l->text == NULL)
      break;
    l->kind = t.kind == T_INT     ? TQ_STIX_LIT_INT
              : t.kind == T_FLOAT ? TQ_STIX_LIT_FLOAT
                                  : TQ_STIX_LIT_BOOL;
    l->b = t.kind == T_BOOL && l->text[0] == 't';
    if (t.kind == T_INT)
      l->i = strtoll(l->text, NULL, 10);
    l->f = strtod(l->text, NULL);
    if (t.kind == T_INT && errno == ERANGE)
      return EXPECTED(P, "an integer in the 64-bit range");
  }
  if (l->text == NULL)
    return oom(P);
  next(P);
  return l;
}

/* ---- object paths ------------------------------------------------------------------------- */

static int plain_name(const char *s) {
  if (!is_alpha(*s))
    return 0;
  for (; *s; s++)
    if (!is_alpha(*s) && !is_digit(*s))
      return 0;
  return 1;
}

/* The canonical text of the steps: see tq_stix_path.text. */
static const char *path_text(parser *P, const tq_stix_step *steps, size_t n) {
  size_t cap = 1;
  for (size_t i = 0; i < n; i++)
    cap += steps[i].kind == TQ_STIX_STEP_PROP ? 3 + 2 * strlen(steps[i].name) : 24;
  char *out = stix_arena_alloc(P->arena, cap), *p = out;
  if (out == NULL)
    return oom(P);
  for (size_t i = 0; i < n; i++) {
    const tq_stix_step *st = &steps[i];
    if (st->kind == TQ_STIX_STEP_INDEX) {
      p += snprintf(p, 24, "[%lld]", (long long)st->index);
      continue;
    }
    if (st->kind == TQ_STIX_STEP_ANY) {
      p += snprintf(p, 24, "[*]");
      continue;
    }
    if (i > 0)
      *p++ = '.';
    int quote = !plain_name(st->name);
    if (quote)
      *p++ = '\'';
    for (const char *c = st->name; *c; c++) {
      if (quote && (*c == '\'' || *c == '\\'))
        *p++ = '\\';
      *p++ = *c;
    }
    if (quote)
      *p++ = '\'';
  }
  *p = '\0';
  return out;
}

/* One step after the object type: a property name (identifier or quoted) or [index]. */
static int path_step(parser *P, tq_stix_step *st, int first) {
  if (first || P->tok.kind == T_DOT) {
    if (!first)
      next(P);
    if (P->tok.kind == T_IDENT && !P->tok.hyphen) {
      st->name = stix_arena_strndup(P->arena, P->s + P->tok.start, P->tok.end - P->tok.start);
    } else if (P->tok.kind == T_STRING) {
      size_t n;
      st->name = unescape(P, &P->tok, &n);
    } else if (P->tok.kind == T_IDENT) {
      return EXPECTED(P, "a property name without '-' (quote it: 'SHA-256')") != NULL;
    } else {
      return EXPECTED(P, "a property name") != NULL;
    }
    st->kind = TQ_STIX_STEP_PROP;
    next(P);
    return st->name != NULL || oom(P);
  }
  next(P); /* '[' */
  if (P->tok.kind == T_STAR) {
    st->kind = TQ_STIX_STEP_ANY;
  } else if (P->tok.kind == T_INT) {
    st->kind = TQ_STIX_STEP_INDEX;
    errno = 0;
    char num[64];
    st->index = strtoll(number_text(P, &P->tok, num), NULL, 10);
    if (errno == ERANGE)
      return EXPECTED(P, "a list index in the 64-bit range") != NULL;
  } else {
    return EXPECTED(P, "a list index (an integer or *)") != NULL;
  }
  next(P);
  if (P->tok.kind != T_RBRACK)
    return EXPECTED(P, "']' closing the list index") != NULL;
  next(P);
  return 1;
}

static int object_path(parser *P, tq_stix_path *path) {
  if (P->tok.kind != T_IDENT)
    return EXPECTED(P, "an object path (type:property), EXISTS or '('") != NULL;
  path->object_type = stix_arena_strndup(P->arena, P->s + P->tok.start, P->tok.end - P->tok.start);
  next(P);
  if (P->tok.kind != T_COLON)
    return EXPECTED(P, "':' after the object type") != NULL;
  next(P);
  tq_stix_step local[16], *steps = local;
  size_t n = 0, cap = 16;
  for (int first = 1; first || P->tok.kind == T_DOT || P->tok.kind == T_LBRACK; first = 0) {
    if (n == cap) { /* long paths move to the arena, doubling */
      tq_stix_step *more = stix_arena_alloc(P->arena, 2 * cap * sizeof *more);
      if (more == NULL)
        return oom(P) != NULL;
      memcpy(more, steps, n * sizeof *more);
      steps = more;
      cap *= 2;
    }
    memset(&steps[n], 0, sizeof steps[n]);
    if (!path_step(P, &steps[n++], first))
      return 0;
  }
  tq_stix_step *kept = stix_arena_alloc(P->arena, n * sizeof *kept);
  if (kept == NULL || path->object_type == NULL)
    return oom(P) != NULL;
  memcpy(kept, steps, n * sizeof *kept);
  path->steps = kept;
  path->n_steps = n;
  path->text = path_text(P, kept, n);
  return path->text != NULL;
}

/* ---- comparison expressions --------------------------------------------------------------- */

static tq_stix_node *cmp_or(parser *P);

static tq_stix_node *set_literal(parser *P, tq_stix_node *n) {
  if (P->tok.kind != T_LPAREN)
    return EXPECTED(P, "'(' starting the set after IN");
  next(P);
  const tq_stix_literal **tail = &n->value;
  while (P->tok.kind != T_RPAREN) {
    tq_stix_literal *l = literal(P, LIT_ORDERABLE | LIT_BOOL);
    if (l == NULL)
      return NULL;
    *tail = l;
    tail = &l->next;
    if (P->tok.kind == T_COMMA) {
      next(P);
      if (P->tok.kind == T_RPAREN)
        return EXPECTED(P, "a literal after ','");
    } else if (P->tok.kind != T_RPAREN) {
      return EXPECTED(P, "',' or ')' in the set");
    }
  }
  next(P);
  return n;
}

/* path NOT? op literal */
static tq_stix_node *comparison(parser *P, tq_stix_node *n) {
  if (!object_path(P, &n->path))
    return NULL;
  if (P->tok.kind == T_NOT) {
    n->negated = 1;
    next(P);
  }
  tok_kind op = P->tok.kind;
  static const struct {
    tok_kind tok;
    tq_stix_op op;
    int allow;
  } ops[] = {
      {T_EQ, TQ_STIX_OP_EQ, LIT_ORDERABLE | LIT_BOOL},
      {T_NE, TQ_STIX_OP_NE, LIT_ORDERABLE | LIT_BOOL},
      {T_LT, TQ_STIX_OP_LT, LIT_ORDERABLE},
      {T_LE, TQ_STIX_OP_LE, LIT_ORDERABLE},
      {T_GT, TQ_STIX_OP_GT, LIT_ORDERABLE},
      {T_GE, TQ_STIX_OP_GE, LIT_ORDERABLE},
      {T_IN, TQ_STIX_OP_IN, 0},
      {T_LIKE, TQ_STIX_OP_LIKE, LIT_STRING_ONLY},
      {T_MATCHES, TQ_STIX_OP_MATCHES, LIT_STRING_ONLY},
      {T_ISSUBSET, TQ_STIX_OP_ISSUBSET, LIT_STRING_ONLY},
      {T_ISSUPERSET, TQ_STIX_OP_ISSUPERSET, LIT_STRING_ONLY},
  };
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
    if (ops[k].tok != op)
      continue;
    n->op = ops[k].op;
    next(P);
    if (op == T_IN)
      return set_literal(P, n);
    n->value = literal(P, ops[k].allow);
    return n->value ? n : NULL;
  }
  return EXPECTED(P,
                  "%san operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, "
                  "ISSUPERSET)",
                  n->negated ? "" : "NOT or ");
}

static tq_stix_node *prop_test(parser *P) {
  if (P->tok.kind == T_LPAREN) {
    if (!enter(P))
      return NULL;
    next(P);
    tq_stix_node *inner = cmp_or(P);
    if (inner && P->tok.kind != T_RPAREN)
      return EXPECTED(P, "')', AND or OR");
    next(P);
    P->depth--;
    return inner;
  }
  tq_stix_node *n = new_node(P, TQ_STIX_NODE_COMPARISON, P->tok.start);
  if (n == NULL)
    return NULL;
  n->observation = P->n_obs - 1;
  P->n_cmp++;
  if (P->tok.kind == T_NOT) {
    n->negated = 1;
    next(P);
    if (P->tok.kind != T_EXISTS)
      return EXPECTED(P, "EXISTS after a leading NOT");
  }
  if (P->tok.kind == T_EXISTS) {
    n->op = TQ_STIX_OP_EXISTS;
    next(P);
    return object_path(P, &n->path) ? n : NULL;
  }
  return comparison(P, n);
}

/* operand (op operand)* as one n-ary node, or the operand alone. */
static tq_stix_node *nary(parser *P, tok_kind op, tq_stix_node_kind kind,
                          tq_stix_node *(*operand)(parser *)) {
  size_t off = P->tok.start;
  tq_stix_node *first = operand(P);
  if (first == NULL || P->tok.kind != op)
    return first;
  tq_stix_node *n = new_node(P, kind, off), *tail = first;
  if (n == NULL)
    return NULL;
  n->child = first;
  while (P->tok.kind == op) {
    next(P);
    tq_stix_node *more = operand(P);
    if (more == NULL)
      return NULL;
    tail->next = more;
    tail = more;
  }
  return n;
}

static size_t comparisons_under(const tq_stix_node *n) {
  if (n->kind == TQ_STIX_NODE_COMPARISON)
    return 1;
  size_t k = 0;
  for (const tq_stix_node *c = n->child; c; c = c->next)
    k += comparisons_under(c);
  return k;
}

/* Keeps in acc[0..*n_acc) the types also in one[0..k) (AND), or adds those of one not there
 * yet (OR). */
static void types_merge(const char **acc, size_t *n_acc, const char **one, size_t k, int is_or) {
  if (is_or) {
    for (size_t i = 0; i < k; i++) {
      size_t j = 0;
      while (j < *n_acc && strcmp(acc[j], one[i]) != 0)
        j++;
      if (j == *n_acc)
        acc[(*n_acc)++] = one[i];
    }
    return;
  }
  size_t kept = 0;
  for (size_t j = 0; j < *n_acc; j++)
    for (size_t i = 0; i < k; i++)
      if (strcmp(acc[j], one[i]) == 0) {
        acc[kept++] = acc[j];
        break;
      }
  *n_acc = kept;
}

/* The object types that can satisfy comparison-level node n, into out[0..*len) (room for
 * comparisons_under(n)): a comparison's own type; an OR, any of its operands' types; an AND,
 * the types common to all its operands. When stop_at is set (an AND), *stop_at is the first
 * operand after which no type is common, and *common a type the operands before it share.
 * 0, or -1 without memory. */
static int types_of(const tq_stix_node *n, const char **out, size_t *len,
                    const tq_stix_node **stop_at, const char **common) {
  *len = 0;
  if (n->kind == TQ_STIX_NODE_COMPARISON) {
    out[(*len)++] = n->path.object_type;
    return 0;
  }
  for (const tq_stix_node *c = n->child; c; c = c->next) {
    const char **one = malloc(comparisons_under(c) * sizeof *one);
    size_t k = 0;
    if (one == NULL || types_of(c, one, &k, NULL, NULL) != 0) {
      free(one);
      return -1;
    }
    if (c == n->child) {
      memcpy(out, one, k * sizeof *out);
      *len = k;
    } else {
      if (common)
        *common = *len ? out[0] : NULL;
      types_merge(out, len, one, k, n->kind == TQ_STIX_NODE_OR);
    }
    free(one);
    if (stop_at && *len == 0) {
      *stop_at = c;
      return 0;
    }
  }
  return 0;
}

/* The first comparison under n (in text order). */
static const tq_stix_node *first_comparison(const tq_stix_node *n) {
  while (n->kind != TQ_STIX_NODE_COMPARISON)
    n = n->child;
  return n;
}

/* Comparisons joined by AND must be satisfiable by one SCO, so all operands of an AND must
 * share an object type (STIX 2.1 section 9.5; python-stix2's _BooleanExpression root_type
 * check, here without its dependence on operand order): [(a:x = 1 OR b:y = 2) AND a:z = 3]
 * is satisfiable by an 'a', [a:x = 1 AND b:y = 2] by nothing. */
static tq_stix_node *cmp_and(parser *P) {
  tq_stix_node *n = nary(P, T_AND, TQ_STIX_NODE_AND, prop_test);
  if (n == NULL || n->kind != TQ_STIX_NODE_AND)
    return n;
  const char *common = NULL;
  const tq_stix_node *bad = NULL;
  const char **types = malloc(comparisons_under(n) * sizeof *types);
  size_t k = 0;
  int rc = types ? types_of(n, types, &k, &bad, &common) : -1;
  free(types);
  if (rc != 0)
    return oom(P);
  if (bad) {
    const tq_stix_node *at = first_comparison(bad);
    size_t tl = strlen(at->path.object_type);
    return fail_at(P, at->offset, at->offset + tl,
                   "an operand of object type '%.60s' (comparisons joined by AND must be "
                   "satisfiable by one object, so share one type; use OR between types)",
                   common ? common : "?");
  }
  return n;
}

static tq_stix_node *cmp_or(parser *P) { return nary(P, T_OR, TQ_STIX_NODE_OR, cmp_and); }

/* ---- observation expressions -------------------------------------------------------------- */

static tq_stix_node *followedby(parser *P);

static tq_stix_node *observation(parser *P) {
  size_t off = P->tok.start;
  if (P->tok.kind == T_LBRACK) {
    tq_stix_node *n = new_node(P, TQ_STIX_NODE_OBSERVATION, off);
    if (n == NULL || !enter(P))
      return NULL;
    n->observation = P->n_obs++;
    next(P);
    n->child = cmp_or(P);
    if (n->child == NULL)
      return NULL;
    if (P->tok.kind != T_RBRACK)
      return EXPECTED(P, "']', AND or OR");
    P->depth--;
    next(P);
    return n;
  }
  if (P->tok.kind == T_LPAREN) {
    if (!enter(P))
      return NULL;
    next(P);
    tq_stix_node *inner = followedby(P);
    if (inner && P->tok.kind != T_RPAREN)
      return EXPECTED(P, "')', AND, OR, FOLLOWEDBY or a qualifier");
    P->depth--;
    next(P);
    return inner;
  }
  return EXPECTED(P, "'[' or '(' starting an observation expression");
}

static int qualifier(parser *P, tq_stix_node *n) {
  tok_kind k = P->tok.kind;
  unsigned bit = k == T_WITHIN    ? TQ_STIX_QUAL_WITHIN
                 : k == T_REPEATS ? TQ_STIX_QUAL_REPEATS
                                  : TQ_STIX_QUAL_STARTSTOP;
  const char *word = k == T_WITHIN ? "WITHIN" : k == T_REPEATS ? "REPEATS" : "START";
  if (n->quals & bit)
    return EXPECTED(P, "at most one %s qualifier per observation expression", word) != NULL;
  n->quals |= bit;
  next(P);
  token t = P->tok;
  char num[64];
  if (k == T_WITHIN) {
    if ((t.kind != T_INT && t.kind != T_FLOAT) || P->s[t.start] == '-')
      return EXPECTED(P, "a positive number of seconds after WITHIN") != NULL;
    n->within_seconds = strtod(number_text(P, &t, num), NULL);
    next(P);
    if (P->tok.kind != T_SECONDS)
      return EXPECTED(P, "SECONDS (the only unit of WITHIN)") != NULL;
  } else if (k == T_REPEATS) {
    if (t.kind != T_INT || P->s[t.start] == '-')
      return EXPECTED(P, "a positive integer after REPEATS") != NULL;
    n->repeats = strtoll(number_text(P, &t, num), NULL, 10);
    next(P);
    if (P->tok.kind != T_TIMES)
      return EXPECTED(P, "TIMES after REPEATS <n>") != NULL;
  } else {
    if (t.kind != T_TIMESTAMP)
      return EXPECTED(P, "a timestamp t'YYYY-MM-DDTHH:MM:SSZ' after START") != NULL;
    stix_time_scan(P->s + t.start + 2, t.end - t.start - 3, 1, &n->start);
    next(P);
    if (P->tok.kind != T_STOP)
      return EXPECTED(P, "STOP after START t'...'") != NULL;
    next(P);
    t = P->tok;
    if (t.kind != T_TIMESTAMP)
      return EXPECTED(P, "a timestamp t'YYYY-MM-DDTHH:MM:SSZ' after STOP") != NULL;
    stix_time_scan(P->s + t.start + 2, t.end - t.start - 3, 1, &n->stop);
  }
  next(P);
  return !P->failed;
}

static int is_qualifier(tok_kind k) { return k == T_WITHIN || k == T_REPEATS || k == T_START; }

static unsigned qualifier_bit(tok_kind k) {
  return k == T_WITHIN    ? TQ_STIX_QUAL_WITHIN
         : k == T_REPEATS ? TQ_STIX_QUAL_REPEATS
                          : TQ_STIX_QUAL_STARTSTOP;
}

/* An observation expression and its qualifiers. At most one qualifier of each kind applies to a
 * [ ... ] (STIX 2.1 section 9.5.1; cti-pattern-validator's ValidationListener: "Duplicate
 * qualifier type encountered"). A parenthesised expression is a new observation expression:
 * the validator checks no qualifier on it against those inside, so ([a] WITHIN 5 SECONDS)
 * WITHIN 10 SECONDS is valid; a qualifier the node has already goes on a GROUP node above. */
static tq_stix_node *qualified(parser *P) {
  int paren = P->tok.kind == T_LPAREN;
  size_t off = P->tok.start;
  tq_stix_node *n = observation(P);
  while (n && is_qualifier(P->tok.kind)) {
    if (paren && (n->quals & qualifier_bit(P->tok.kind))) {
      tq_stix_node *g = new_node(P, TQ_STIX_NODE_GROUP, off);
      if (g == NULL)
        return NULL;
      g->child = n;
      n = g;
    }
    if (!qualifier(P, n))
      return NULL;
  }
  return n;
}

static tq_stix_node *obs_and(parser *P) { return nary(P, T_AND, TQ_STIX_NODE_OBS_AND, qualified); }
static tq_stix_node *obs_or(parser *P) { return nary(P, T_OR, TQ_STIX_NODE_OBS_OR, obs_and); }
static tq_stix_node *followedby(parser *P) {
  return nary(P, T_FOLLOWEDBY, TQ_STIX_NODE_FOLLOWEDBY, obs_or);
}

/* ---- entry points ---------------------------------------------------------------------- */

static tq_code report(parser *P, tq_stix_pattern_error *perr, tq_err *err) {
  tq_stix_pattern_error e;
  memset(&e, 0, sizeof e);
  e.offset = P->err_off;
  e.column = column_of(P->s, P->err_off);
  tq_strlcpy(e.expected, P->expected, sizeof e.expected);
  tq_strlcpy(e.found, P->found, sizeof e.found);
  if (perr)
    *perr = e;
  return tq_err_set(err, P->code, "pattern column %zu: expected %s, found %s", e.column, e.expected,
                    e.found);
}

tq_code tq_stix_pattern_parse(const char *text, size_t len, tq_stix_pattern **out,
                              tq_stix_pattern_error *perr, tq_err *err) {
  parser P;
  memset(&P, 0, sizeof P);
  P.s = text ? text : "";
  P.len = text ? len : 0;
  *out = NULL;
  tq_code rc;
  P.arena = stix_arena_new();
  tq_stix_pattern *pat = P.arena ? stix_arena_alloc(P.arena, sizeof *pat) : NULL;
  if (pat == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory for a pattern");
    goto fail;
  }
  pat->arena_ = P.arena;
  next(&P);
  pat->root = followedby(&P);
  if (pat->root && P.tok.kind != T_EOF)
    EXPECTED(&P, "AND, OR, FOLLOWEDBY, a qualifier (WITHIN, REPEATS, START) or the end");
  if (P.failed) {
    rc = report(&P, perr, err);
    goto fail;
  }
  pat->n_observations = P.n_obs;
  pat->n_comparisons = P.n_cmp;
  if ((rc = stix_pattern_extract(pat, err)) != TQ_OK)
    goto fail;
  *out = pat;
  return TQ_OK;
fail:
  stix_arena_free(P.arena);
  return rc;
}

void tq_stix_pattern_free(tq_stix_pattern *p) {
  if (p)
    stix_arena_free(p->arena_);
}

const char *tq_stix_op_name(tq_stix_op op) {
  static const char *names[] = {
      "=", "!=", "<", "<=", ">", ">=", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS"};
  return (size_t)op < sizeof names / sizeof *names ? names[op] : "?";
}
