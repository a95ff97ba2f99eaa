/* core.h: what every part of tqhost shares: the one error type, bounded buffers, time,
 * logging. Nothing here calls another part. */
#ifndef TQHOST_CORE_H
#define TQHOST_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ----------------------------------------------------------------------------
 * Every fallible function returns a tq_code and, when given a non-NULL tq_err, fills it with
 * a message that names what failed and where (file, line, value...). TQ_OK is 0. */
typedef enum tq_code {
  TQ_OK = 0,
  TQ_EINVAL,    /* bad input from the user: a value, an option, a file's content */
  TQ_ENOTFOUND, /* the thing named does not exist */
  TQ_EEXIST,    /* the thing to create exists already */
  TQ_ENOMEM,    /* an allocation failed or a size cap was reached */
  TQ_EIO,       /* the operating system refused (open, read, write) */
  TQ_EDB,       /* the database failed */
  TQ_ECORRUPT,  /* a file is not what it claims (foreign or damaged database, bad data) */
  TQ_ENET,      /* the network failed: refused, reset, TLS, DNS */
  TQ_ETIMEOUT,  /* a deadline passed */
  TQ_EDENIED,   /* refused by policy: sandbox, allow-list, permission */
  TQ_ELIMIT,    /* a budget ran out: memory, instructions, size */
  TQ_EINTERNAL  /* a bug: a condition believed impossible */
} tq_code;

typedef struct tq_err {
  tq_code code;
  char msg[512];
} tq_err;

/* Sets *err (if err is non-NULL) to code and the formatted message; returns code so that a
 * caller can write `return tq_err_set(err, TQ_EINVAL, "...")`. */
tq_code tq_err_set(tq_err *err, tq_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes err->msg with the formatted context ("file.csv:12: ") and returns err->code. */
tq_code tq_err_prefix(tq_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tq_err_clear(tq_err *err);
/* A short stable name for a code ("invalid", "not found", ...). */
const char *tq_code_name(tq_code code);

/* ---- bounded dynamic buffer ------------------------------------------------------------
 * A growable byte buffer that refuses to grow past max (0 = SIZE_MAX). data is always
 * NUL-terminated (when non-NULL). The buffer owns data; tq_buf_free releases it. */
typedef struct tq_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max;
} tq_buf;

void tq_buf_init(tq_buf *b, size_t max);
void tq_buf_free(tq_buf *b);
void tq_buf_reset(tq_buf *b);
tq_code tq_buf_add(tq_buf *b, const void *p, size_t n);
tq_code tq_buf_adds(tq_buf *b, const char *s);
tq_code tq_buf_addc(tq_buf *b, char c);
tq_code tq_buf_printf(tq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
tq_code tq_buf_vprintf(tq_buf *b, const char *fmt, va_list ap);
/* Hands data to the caller (who frees it with free()) and leaves b empty. Never NULL on
 * success: an empty buffer yields "". */
char *tq_buf_take(tq_buf *b);

/* ---- strings ---------------------------------------------------------------------------- */
/* strdup that returns NULL only when s is NULL or memory runs out. */
char *tq_strdup(const char *s);
char *tq_strndup(const char *s, size_t n);
/* Copies src into dst of size n, always NUL-terminated; returns strlen(src). */
size_t tq_strlcpy(char *dst, const char *src, size_t n);
/* Removes leading and trailing ASCII white space in place; returns s. */
char *tq_str_trim(char *s);
int tq_str_ieq(const char *a, const char *b);
/* The offset of the first byte of s[0..n) that is not part of well-formed UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or n when all of it is. */
size_t tq_utf8_invalid_at(const char *s, size_t n);
int tq_str_startswith(const char *s, const char *prefix);
/* Escaping text that comes from outside (feeds, servers, plugins, users) before it reaches a
 * terminal or a log line, so that it can neither forge a line nor send terminal escapes: \n,
 * \r and \t as themselves escaped, other control bytes (C0, DEL) as \xHH, C1 controls
 * (UTF-8 C2 80..9F) as \u00HH. Flags: TQ_ESC_QUOTE also escapes \ and " (a quoted log
 * field); TQ_ESC_LINES keeps \n and \t (multi-line text such as a traceback). */
enum { TQ_ESC_QUOTE = 1, TQ_ESC_LINES = 2 };
int tq_str_needs_escape(const char *s, int flags);
/* Writes the escaped s into out (n bytes, always terminated when n > 0; cut before an escape
 * that does not fit); returns the length the whole of it needs (without the NUL). */
size_t tq_str_escape(char *out, size_t n, const char *s, int flags);
/* The escaped s, malloc'd; NULL when memory runs out. */
char *tq_str_escape_dup(const char *s, int flags);
/* Parses a whole decimal integer in [lo, hi]; TQ_EINVAL (with what) otherwise. */
tq_code tq_parse_int(const char *s, long long lo, long long hi, long long *out, const char *what,
                     tq_err *err);
/* Parses a duration like "30s", "5m", "1h", "2d", "14d", "500ms" into milliseconds; NaN,
 * infinities, negative values and more than TQ_DURATION_MAX_MS are refused. */
#define TQ_DURATION_MAX_MS (100.0 * 365 * 86400000) /* 100 years */
tq_code tq_parse_duration_ms(const char *s, int64_t *out_ms, tq_err *err);
/* Parses a size like "32MiB", "64KiB", "1048576", "10MB" into bytes; NaN, infinities,
 * negative values and more than TQ_SIZE_MAX_BYTES are refused. */
#define TQ_SIZE_MAX_BYTES 1099511627776.0 /* 1 TiB */
tq_code tq_parse_size(const char *s, uint64_t *out, tq_err *err);

/* ---- paths ------------------------------------------------------------------------------
 * Keeping file access inside a folder (symlinks resolved with realpath). */
/* TQ_OK when path resolves to root or a file below it; *resolved (may be NULL; malloc'd)
 * gets the canonical path. TQ_EDENIED names both when it resolves elsewhere; TQ_ENOTFOUND
 * when path does not exist. */
tq_code tq_path_inside(const char *root, const char *path, char **resolved, tq_err *err);
/* TQ_EDENIED naming the first symlink anywhere below root (symlinked folders not entered)
 * that resolves outside root. Dangling links are left to whoever opens them. */
tq_code tq_path_tree_inside(const char *root, tq_err *err);

/* ---- time ------------------------------------------------------------------------------
 * Library times are Unix seconds (UTC). Text forms: "YYYY-MM-DD HH:MM:SS" (ThreatQ's) and
 * ISO 8601 / RFC 3339 ("2024-01-02T03:04:05.123Z", "+00:00" offsets). */
int64_t tq_time_now(void);    /* seconds; honours TQHOST_NOW (for tests) when set */
int64_t tq_time_now_us(void); /* microseconds, wall clock */
int64_t tq_mono_ms(void);     /* monotonic milliseconds */
/* Parses "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS" or RFC 3339 with any fraction and offset into
 * Unix seconds (fraction kept in *out_us when out_us is non-NULL: microseconds 0..999999). */
tq_code tq_time_parse(const char *s, int64_t *out_s, int32_t *out_us, tq_err *err);
/* Writes "YYYY-MM-DD HH:MM:SS" (UTC) into out (>= 20 bytes). */
void tq_time_format(int64_t t, char out[20]);
/* Writes "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (>= 28 bytes). */
void tq_time_format_iso(int64_t t, int32_t us, char out[28]);

/* ---- logging ---------------------------------------------------------------------------
 * Structured lines on stderr: level=info part=net msg="..." , one line per message: the
 * message is escaped (tq_str_escape with TQ_ESC_QUOTE), so that text from outside can
 * neither end the line nor the quoted field. The level is set once at start
 * (TQHOST_LOG=debug|info|warn|error, default warn). */
typedef enum tq_log_level { TQ_LOG_DEBUG, TQ_LOG_INFO, TQ_LOG_WARN, TQ_LOG_ERROR } tq_log_level;
void tq_log_set_level(tq_log_level level);
int tq_log_enabled(tq_log_level level);
void tq_log(tq_log_level level, const char *part, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
