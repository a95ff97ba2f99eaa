/* pattern.c: string.find, match, gmatch and gsub of the sandbox: the pattern language of Lua
 * 5.4 (reference manual, 6.4.1), matched by backtracking as Lua does, with every step charged
 * to the run's instruction budget and the run's deadline checked as it goes. Lua's own matcher
 * runs inside one C call, where the budget hook never fires: ("a*"):rep(20) .. "b" against 40
 * a's backtracks for ages, behind a pcall too. Here such a match is killed like any runaway
 * run ("instruction budget exceeded ... in string.find"). Plain searches use memmem, which is
 * linear. Outside a run (no budget) the functions behave the same, uncharged. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lua_int.h"

#define PAT_MAX_CAPTURES 32
#define PAT_MAX_DEPTH 200      /* nested matches (Lua's MAXCCALLS): "pattern too complex" */
#define PAT_CHARGE_EVERY 4096u /* steps between two charges to the run */
#define PAT_ESC '%'
#define PAT_SPECIALS "^$*+?.([%-"
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

typedef struct pat_state {
  const char *src_init, *src_end; /* the subject */
  const char *p_end;              /* end of the pattern */
  lua_State *L;
  tq_lua_run *run;  /* charged; NULL: no budget */
  const char *what; /* the function, for a kill's message */
  uint64_t steps, charged, next_charge;
  int depth; /* nested matches left */
  int level; /* captures in use */
  struct {
    const char *init;
    ptrdiff_t len; /* or CAP_UNFINISHED, CAP_POSITION */
  } capture[PAT_MAX_CAPTURES];
} pat_state;

static int uchar(char c) { return (unsigned char)c; }

/* ---- budget ---------------------------------------------------------------------------------- */

/* Charges the steps made since the last charge to the run; kills it past its instruction budget
 * or its deadline. */
static void pat_charge(pat_state *ms) {
  tq_lua_run *run = ms->run;
  ms->next_charge = ms->steps + PAT_CHARGE_EVERY;
  if (run == NULL || run->script == NULL)
    return;
  run->instr += ms->steps - ms->charged;
  ms->charged = ms->steps;
  run_kill kill = run->kill;
  if (kill == KILL_NONE && run->instr > run->script->limits.instructions)
    kill = KILL_INSTRUCTIONS;
  else if (kill == KILL_NONE && tq_mono_ms() > run->deadline_ms)
    kill = KILL_TIMEOUT;
  if (kill == KILL_NONE)
    return;
  if (run->kill == KILL_NONE)
    run->kill_site = ms->what;
  run_kill_raise(ms->L, run, kill);
}

/* At the end of a call: the remaining steps are charged, without a check (the next charge or
 * the hook checks). */
static void pat_settle(pat_state *ms) {
  if (ms->run)
    ms->run->instr += ms->steps - ms->charged;
  ms->charged = ms->steps;
}

static inline void pat_step(pat_state *ms, size_t n) {
  ms->steps += n;
  if (__builtin_expect(ms->steps >= ms->next_charge, 0))
    pat_charge(ms);
}

static void pat_init(pat_state *ms, lua_State *L, const char *what, const char *s, size_t ls,
                     const char *p, size_t lp) {
  ms->L = L;
  ms->run = run_of(L);
  ms->what = what;
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->steps = ms->charged = 0;
  ms->next_charge = PAT_CHARGE_EVERY;
}

/* Before each attempt at a position. */
static void pat_reset(pat_state *ms) {
  ms->level = 0;
  ms->depth = PAT_MAX_DEPTH;
}

/* ---- single characters -------------------------------------------------------------------- */

/* The end of the single-character class at p (a character, %x, [set]). */
static const char *class_end(pat_state *ms, const char *p) {
  char c = *p++;
  if (c == PAT_ESC) {
    if (p == ms->p_end)
      luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (*p == '^')
      p++;
    do { /* the first character, even ']', belongs to the set */
      if (p == ms->p_end)
        luaL_error(ms->L, "malformed pattern (missing ']')");
      c = *p++;
      if (c == PAT_ESC && p < ms->p_end)
        p++;
    } while (*p != ']');
    return p + 1;
  }
  return p;
}

/* Whether c is in class %cl (a letter class, its upper case the complement; any other
 * character stands for itself). cl | 0x20 is the lower case of an ASCII letter and no letter
 * for any other character (cheaper than tolower, on the matcher's hottest path). */
static inline int class_match(int c, int cl) {
  int res;
  switch (cl | 0x20) {
  case 'a': res = isalpha(c); break;
  case 'c': res = iscntrl(c); break;
  case 'd': res = c >= '0' && c <= '9'; break;
  case 'g': res = isgraph(c); break;
  case 'l': res = islower(c); break;
  case 'p': res = ispunct(c); break;
  case 's': res = isspace(c); break;
  case 'u': res = isupper(c); break;
  case 'w': res = isalnum(c); break;
  case 'x': res = isxdigit(c); break;
  case 'z': res = c == 0; break; /* deprecated, still in Lua 5.4 */
  default: return cl == c;
  }
  return (cl & 0x20) ? res != 0 : res == 0;
}

/* Whether c is in the set [..] from p (at '[') to close (at its ']'). */
static int set_match(int c, const char *p, const char *close) {
  int in = 1;
  if (*(p + 1) == '^') {
    in = 0;
    p++;
  }
  while (++p < close) {
    if (*p == PAT_ESC) {
      p++;
      if (class_match(c, uchar(*p)))
        return in;
    } else if (*(p + 1) == '-' && p + 2 < close) {
      p += 2;
      if (uchar(*(p - 2)) <= c && c <= uchar(*p))
        return in;
    } else if (uchar(*p) == c) {
      return in;
    }
  }
  return !in;
}

/* Whether the subject character at s matches the class from p to ep. */
static int single_match(const pat_state *ms, const char *s, const char *p, const char *ep) {
  if (s >= ms->src_end)
    return 0;
  int c = uchar(*s);
  switch (*p) {
  case '.': return 1;
  case PAT_ESC: return class_match(c, uchar(*(p + 1)));
  case '[': return set_match(c, p, ep - 1);
  default: return uchar(*p) == c;
  }
}

/* ---- the matcher --------------------------------------------------------------------------- */

static const char *match(pat_state *ms, const char *s, const char *p);

/* %bxy at p (after "%b"). */
static const char *match_balance(pat_state *ms, const char *s, const char *p) {
  if (p >= ms->p_end - 1)
    luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p)
    return NULL;
  char open = p[0], close = p[1];
  int depth = 1;
  const char *start = s;
  while (++s < ms->src_end) {
    if (*s == close) {
      if (--depth == 0) {
        pat_step(ms, (size_t)(s - start));
        return s + 1;
      }
    } else if (*s == open) {
      depth++;
    }
  }
  pat_step(ms, (size_t)(s - start));
  return NULL;
}

/* x* (and x+ from s + 1): the longest run first, then shorter ones. */
static const char *max_expand(pat_state *ms, const char *s, const char *p, const char *ep) {
  ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep))
    i++;
  pat_step(ms, (size_t)i);
  for (; i >= 0; i--) {
    const char *res = match(ms, s + i, ep + 1);
    if (res)
      return res;
  }
  return NULL;
}

/* x-: the shortest run first. */
static const char *min_expand(pat_state *ms, const char *s, const char *p, const char *ep) {
  for (;;) {
    const char *res = match(ms, s, ep + 1);
    if (res)
      return res;
    if (!single_match(ms, s, p, ep))
      return NULL;
    s++;
  }
}

static const char *start_capture(pat_state *ms, const char *s, const char *p, ptrdiff_t what) {
  if (ms->level >= PAT_MAX_CAPTURES)
    luaL_error(ms->L, "too many captures");
  ms->capture[ms->level].init = s;
  ms->capture[ms->level].len = what;
  ms->level++;
  const char *res = match(ms, s, p);
  if (res == NULL)
    ms->level--;
  return res;
}

static const char *end_capture(pat_state *ms, const char *s, const char *p) {
  int l = ms->level - 1;
  while (l >= 0 && ms->capture[l].len != CAP_UNFINISHED)
    l--;
  if (l < 0)
    luaL_error(ms->L, "invalid pattern capture");
  ms->capture[l].len = s - ms->capture[l].init;
  const char *res = match(ms, s, p);
  if (res == NULL)
    ms->capture[l].len = CAP_UNFINISHED;
  return res;
}

/* %1 .. %9 at s: the text of a closed capture again. */
static const char *match_capture(pat_state *ms, const char *s, int digit) {
  int l = digit - '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
    luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  size_t len = (size_t)ms->capture[l].len; /* a position capture never matches */
  if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0) {
    pat_step(ms, len);
    return s + len;
  }
  return NULL;
}

/* %f[set] at p (after "%f"): the pattern goes on at the returned position, or NULL. */
static const char *frontier(pat_state *ms, const char *s, const char *p) {
  if (*p != '[')
    luaL_error(ms->L, "missing '[' after '%%f' in pattern");
  const char *ep = class_end(ms, p);
  int prev = s == ms->src_init ? '\0' : uchar(*(s - 1));
  int cur = s < ms->src_end ? uchar(*s) : '\0';
  if (!set_match(prev, p, ep - 1) && set_match(cur, p, ep - 1))
    return ep;
  return NULL;
}

/* Matches the pattern from p at subject position s: the end of the match, or NULL. Tail
 * positions loop rather than recurse; each turn is a step. */
static const char *match(pat_state *ms, const char *s, const char *p) {
  if (ms->depth-- == 0)
    luaL_error(ms->L, "pattern too complex");
  while (s != NULL && p != ms->p_end) {
    pat_step(ms, 1);
    const char *ep = NULL;
    switch (*p) {
    case '(':
      s = p[1] == ')' ? start_capture(ms, s, p + 2, CAP_POSITION)
                      : start_capture(ms, s, p + 1, CAP_UNFINISHED);
      goto done;
    case ')': s = end_capture(ms, s, p + 1); goto done;
    case '$':
      if (p + 1 == ms->p_end) {
        s = s == ms->src_end ? s : NULL;
        goto done;
      }
      break;
    case PAT_ESC:
      if (p[1] == 'b') {
        s = match_balance(ms, s, p + 2);
        p += 4;
        continue;
      }
      if (p[1] == 'f') {
        p = frontier(ms, s, p + 2);
        if (p == NULL)
          s = NULL;
        continue;
      }
      if (isdigit(uchar(p[1]))) {
        s = match_capture(ms, s, uchar(p[1]));
        p += 2;
        continue;
      }
      break;
    default: break;
    }
    ep = class_end(ms, p);
    if (!single_match(ms, s, p, ep)) {
      if (*ep == '*' || *ep == '?' || *ep == '-') { /* may match zero times */
        p = ep + 1;
        continue;
      }
      s = NULL;
      goto done;
    }
    switch (*ep) {
    case '?': {
      const char *res = match(ms, s + 1, ep + 1);
      if (res) {
        s = res;
        goto done;
      }
      p = ep + 1;
      continue;
    }
    case '+': s = max_expand(ms, s + 1, p, ep); goto done;
    case '*': s = max_expand(ms, s, p, ep); goto done;
    case '-': s = min_expand(ms, s, p, ep); goto done;
    default:
      s++;
      p = ep;
      continue;
    }
  }
done:
  ms->depth++;
  return s;
}

/* ---- captures ------------------------------------------------------------------------------ */

/* Pushes capture i (the whole match s..e when there are none and i is 0). [-0, +1] */
static void push_capture(pat_state *ms, int i, const char *s, const char *e) {
  if (i >= ms->level) {
    if (i != 0)
      luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(ms->L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t len = ms->capture[i].len;
  if (len == CAP_UNFINISHED)
    luaL_error(ms->L, "unfinished capture");
  if (len == CAP_POSITION)
    lua_pushinteger(ms->L, (lua_Integer)(ms->capture[i].init - ms->src_init) + 1);
  else
    lua_pushlstring(ms->L, ms->capture[i].init, (size_t)len);
}

/* Pushes the captures (or the whole match s..e when s is not NULL and there are none);
 * returns how many. */
static int push_captures(pat_state *ms, const char *s, const char *e) {
  int n = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(ms, i, s, e);
  return n;
}

/* ---- the functions ------------------------------------------------------------------------- */

/* Lua's position rule for init: negative counts from the end; 1-based result >= 1. */
static size_t pos_start(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 1;
  return len + (size_t)pos + 1;
}

/* Whether p (lp bytes, possibly with NULs) has no special character. */
static int no_specials(const char *p, size_t lp) {
  size_t at = 0;
  do {
    if (strpbrk(p + at, PAT_SPECIALS))
      return 0;
    at += strlen(p + at) + 1;
  } while (at <= lp);
  return 1;
}

static int find_aux(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
    const char *at = memmem(s + init, ls - init, p, lp);
    if (at) {
      lua_pushinteger(L, (lua_Integer)(at - s) + 1);
      lua_pushinteger(L, (lua_Integer)(at - s + (ptrdiff_t)lp));
      return 2;
    }
    luaL_pushfail(L);
    return 1;
  }
  pat_state ms;
  int anchor = *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  pat_init(&ms, L, find ? "string.find" : "string.match", s, ls, p, lp);
  const char *s1 = s + init;
  do {
    pat_reset(&ms);
    const char *e = match(&ms, s1, p);
    if (e != NULL) {
      pat_settle(&ms);
      if (!find)
        return push_captures(&ms, s1, e);
      lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
      lua_pushinteger(L, (lua_Integer)(e - s));
      return push_captures(&ms, NULL, NULL) + 2;
    }
  } while (s1++ < ms.src_end && !anchor);
  pat_settle(&ms);
  luaL_pushfail(L);
  return 1;
}

static int pat_find(lua_State *L) { return find_aux(L, 1); }
static int pat_match(lua_State *L) { return find_aux(L, 0); }

typedef struct gmatch_state {
  const char *src; /* where the next attempt starts */
  const char *p;
  const char *last; /* end of the last match: an empty match there is skipped */
  pat_state ms;
} gmatch_state;

static int gmatch_next(lua_State *L) {
  gmatch_state *gm = lua_touserdata(L, lua_upvalueindex(3));
  gm->ms.L = L;
  gm->ms.run = run_of(L);
  for (const char *src = gm->src; src <= gm->ms.src_end; src++) {
    pat_reset(&gm->ms);
    const char *e = match(&gm->ms, src, gm->p);
    if (e != NULL && e != gm->last) {
      gm->src = gm->last = e;
      pat_settle(&gm->ms);
      return push_captures(&gm->ms, src, e);
    }
  }
  pat_settle(&gm->ms);
  return 0;
}

/* string.gmatch(s, pattern [, init]): the iterator keeps s and pattern as upvalues, so that
 * the pointers of its state stay valid. */
static int pat_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls)
    init = ls + 1; /* past the end: no match */
  lua_settop(L, 2);
  gmatch_state *gm = lua_newuserdatauv(L, sizeof *gm, 0);
  pat_init(&gm->ms, L, "string.gmatch", s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->last = NULL;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* Appends the replacement string (argument 3) for the match s..e, with %0-%9 and %%. */
static void add_string(pat_state *ms, luaL_Buffer *b, const char *s, const char *e) {
  lua_State *L = ms->L;
  size_t len;
  const char *r = lua_tolstring(L, 3, &len);
  const char *end = r + len;
  const char *esc;
  while ((esc = memchr(r, PAT_ESC, (size_t)(end - r))) != NULL) {
    luaL_addlstring(b, r, (size_t)(esc - r));
    char c = esc[1]; /* the string's terminating NUL after a final '%' */
    if (c == PAT_ESC) {
      luaL_addchar(b, PAT_ESC);
    } else if (c == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit(uchar(c))) {
      push_capture(ms, c - '1', s, e);
      luaL_tolstring(L, -1, NULL); /* a position capture is a number */
      lua_remove(L, -2);
      luaL_addvalue(b);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", PAT_ESC);
    }
    r = esc + 2;
  }
  luaL_addlstring(b, r, (size_t)(end - r));
}

/* Appends the replacement of the match s..e; returns whether the text changed. */
static int add_value(pat_state *ms, luaL_Buffer *b, const char *s, const char *e, int tr) {
  lua_State *L = ms->L;
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(ms, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_string(ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: the original text */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

static int pat_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(
      L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
      "string/function/table");
  int anchor = *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  pat_state ms;
  pat_init(&ms, L, "string.gsub", src, ls, p, lp);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *last = NULL;
  lua_Integer n = 0;
  int changed = 0;
  while (n < max) {
    pat_reset(&ms);
    const char *e = match(&ms, src, p);
    if (e != NULL && e != last) {
      n++;
      changed |= add_value(&ms, &b, src, e, tr);
      src = last = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor)
      break;
  }
  pat_settle(&ms);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

void pattern_install(lua_State *L) {
  static const luaL_Reg fns[] = {{"find", pat_find},
                                 {"match", pat_match},
                                 {"gmatch", pat_gmatch},
                                 {"gsub", pat_gsub},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
