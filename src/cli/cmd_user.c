/* cmd_user.c: `tqhost user add|list|passwd|role|delete` and `tqhost client add`: the people
 * and API clients of `tqhost serve`. Passwords come from a prompt without echo on a terminal,
 * else from one line of stdin: never from argv (ps would show them). A client's secret is
 * printed once; the library keeps only its hash. Every change is written to the audit log
 * (who "cli") in the same transaction. */
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli_int.h"
#include "tqhost/server.h"

static const char USER_HELP[] =
    "usage: tqhost user add NAME --role admin|analyst|read-only\n"
    "       tqhost user list\n"
    "       tqhost user passwd NAME\n"
    "       tqhost user role NAME admin|analyst|read-only\n"
    "       tqhost user delete NAME\n"
    "The users of 'tqhost serve'. add and passwd read the password from a prompt (no echo) on\n"
    "a terminal, else one line of stdin; it is stored as an Argon2id hash. passwd and delete\n"
    "revoke the user's tokens. Roles: admin (everything), analyst (reads, operations, runs),\n"
    "read-only (reads).\n";

static const char CLIENT_HELP[] =
    "usage: tqhost client add NAME --role admin|analyst|read-only\n"
    "An OAuth client for the client_credentials grant of POST /api/token (HTTP Basic\n"
    "client_id:secret). Its client_id and secret are printed once: only a hash of the secret\n"
    "is kept. 'tqhost user list' shows clients; 'tqhost user delete NAME' removes one.\n";

#define CLI_WHO "cli"

/* Reads one line (its end of line cut) into a malloc'd string: from the terminal without echo
 * when stdin is one (prompt on stderr), else from stdin. NULL at end of input. */
static char *read_secret(const char *prompt) {
  int tty = isatty(STDIN_FILENO);
  struct termios old, quiet;
  if (tty) {
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) == 0) {
      quiet = old;
      quiet.c_lflag &= ~(tcflag_t)ECHO;
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    } else
      tty = 0;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  if (n < 0) {
    free(line);
    return NULL;
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  return line;
}

static void free_secret(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

/* The new password: asked twice on a terminal, once from a pipe. Usage error when absent,
 * empty or different. */
static int new_password(cli *c, char **out) {
  *out = read_secret("Password: ");
  if (*out == NULL || **out == '\0') {
    free_secret(*out);
    *out = NULL;
    return cli_usage_error(c, "needs a password (a prompt on a terminal, else one line of "
                              "stdin)");
  }
  if (isatty(STDIN_FILENO)) {
    char *again = read_secret("Again: ");
    int same = again && strcmp(again, *out) == 0;
    free_secret(again);
    if (!same) {
      free_secret(*out);
      *out = NULL;
      return cli_usage_error(c, "the two passwords differ");
    }
  }
  return EXIT_OK;
}

/* Parses NAME and --role R (required when need_role). */
static int name_role(cli *c, int argc, char **argv, int need_role, const char **name,
                     tq_role *role) {
  static const struct option opts[] = {{"role", required_argument, 0, 'r'}, {0, 0, 0, 0}};
  int ch;
  const char *r = NULL;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch != 'r')
      return EXIT_USAGE;
    r = optarg;
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one NAME");
  *name = argv[optind];
  if (need_role && r == NULL)
    return cli_usage_error(c, "needs --role admin|analyst|read-only");
  if (r && (*role = tq_role_from_name(r)) == TQ_ROLE_NONE)
    return cli_usage_error(c, "--role: '%s' is not admin, analyst or read-only", cli_txt(r));
  return EXIT_OK;
}

/* Runs one change and its audit row in one transaction. */
typedef tq_code (*change_fn)(tq_lib *lib, const char *name, const void *arg, tq_err *err);

static int audited(cli *c, const char *what, const char *name, const char *detail, change_fn fn,
                   const void *arg) {
  tq_err err;
  tq_err_clear(&err);
  tq_lib *lib = cli_lib(c, 0);
  if (lib == NULL)
    return EXIT_FAIL;
  if (tq_auth_migrate(lib, &err) != TQ_OK || tq_lib_begin(lib, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (fn(lib, name, arg, &err) != TQ_OK ||
      tq_auth_audit(lib, CLI_WHO, what, name, detail, NULL, &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK) {
    tq_lib_rollback(lib);
    return cli_fail(c, &err);
  }
  return EXIT_OK;
}

typedef struct add_arg {
  tq_role role;
  const char *password;
} add_arg;

static tq_code do_add(tq_lib *lib, const char *name, const void *arg, tq_err *err) {
  const add_arg *a = arg;
  return tq_auth_user_add(lib, name, a->role, a->password, err);
}
static tq_code do_passwd(tq_lib *lib, const char *name, const void *arg, tq_err *err) {
  return tq_auth_user_passwd(lib, name, arg, err);
}
static tq_code do_role(tq_lib *lib, const char *name, const void *arg, tq_err *err) {
  return tq_auth_user_role(lib, name, *(const tq_role *)arg, err);
}
static tq_code do_delete(tq_lib *lib, const char *name, const void *arg, tq_err *err) {
  (void)arg;
  return tq_auth_user_delete(lib, name, err);
}

static cJSON *user_json(const tq_user *u) {
  char when[20];
  tq_time_format(u->created_at, when);
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", (double)u->id);
  cJSON_AddStringToObject(j, "name", u->name);
  cJSON_AddStringToObject(j, "role", tq_role_name(u->role));
  cJSON_AddStringToObject(j, "kind", u->is_client ? "client" : "person");
  cJSON_AddStringToObject(j, "created_at", when);
  return j;
}

/* The user as it is now, printed (JSON or a line) after a change. */
static int show_user(cli *c, const char *verb, const char *name) {
  if (!c->json) {
    printf("%s user '%s'\n", verb, cli_txt(name));
    return EXIT_OK;
  }
  tq_user u;
  memset(&u, 0, sizeof u);
  tq_err err;
  tq_user *all = NULL;
  size_t n = 0;
  if (tq_auth_user_list(c->lib, &all, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  int found = 0;
  for (size_t i = 0; i < n && !found; i++)
    if (strcmp(all[i].name, name) == 0) {
      u = all[i];
      found = 1;
    }
  free(all);
  if (!found) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddBoolToObject(j, "deleted", 1);
    return cli_print_json(j);
  }
  return cli_print_json(user_json(&u));
}

static int user_add(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(USER_HELP);
  add_arg a = {TQ_ROLE_NONE, NULL};
  const char *name = NULL;
  int rc = name_role(c, argc, argv, 1, &name, &a.role);
  if (rc != EXIT_OK)
    return rc;
  char *pw = NULL;
  if ((rc = new_password(c, &pw)) != EXIT_OK)
    return rc;
  a.password = pw;
  rc = audited(c, "user.add", name, tq_role_name(a.role), do_add, &a);
  free_secret(pw);
  return rc == EXIT_OK ? show_user(c, "added", name) : rc;
}

static int user_passwd(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(USER_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  char *pw = NULL;
  int rc = new_password(c, &pw);
  if (rc != EXIT_OK)
    return rc;
  rc = audited(c, "user.passwd", argv[1], NULL, do_passwd, pw);
  free_secret(pw);
  return rc == EXIT_OK ? show_user(c, "changed the password of", argv[1]) : rc;
}

static int user_role(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(USER_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 3)
    return cli_usage_error(c, "needs NAME and ROLE");
  tq_role role = tq_role_from_name(argv[2]);
  if (role == TQ_ROLE_NONE)
    return cli_usage_error(c, "ROLE: '%s' is not admin, analyst or read-only", cli_txt(argv[2]));
  int rc = audited(c, "user.role", argv[1], argv[2], do_role, &role);
  return rc == EXIT_OK ? show_user(c, "changed the role of", argv[1]) : rc;
}

static int user_delete(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(USER_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  int rc = audited(c, "user.delete", argv[1], NULL, do_delete, NULL);
  return rc == EXIT_OK ? show_user(c, "deleted", argv[1]) : rc;
}

static int user_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(USER_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 1)
    return cli_usage_error(c, "takes no argument");
  tq_err err;
  tq_user *all = NULL;
  size_t n = 0;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_auth_user_list(c->lib, &all, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
      cJSON_AddItemToArray(arr, user_json(&all[i]));
    cli_print_json(arr);
  } else {
    printf("%6s  %-32s %-9s %-6s %s\n", "id", "name", "role", "kind", "created");
    for (size_t i = 0; i < n; i++) {
      char when[20];
      tq_time_format(all[i].created_at, when);
      printf("%6lld  %-32s %-9s %-6s %s\n", (long long)all[i].id, cli_txt(all[i].name),
             tq_role_name(all[i].role), all[i].is_client ? "client" : "person", when);
    }
  }
  free(all);
  return EXIT_OK;
}

int cli_cmd_user(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"add", user_add, "add a user (password from a prompt/stdin)"},
                                 {"list", user_list, "list users and API clients"},
                                 {"passwd", user_passwd, "set a user's password"},
                                 {"role", user_role, "set a user's role"},
                                 {"delete", user_delete, "delete a user or client"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "user", cmds, argc - 1, argv + 1);
}

static int client_add(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(CLIENT_HELP);
  tq_role role = TQ_ROLE_NONE;
  const char *name = NULL;
  int rc = name_role(c, argc, argv, 1, &name, &role);
  if (rc != EXIT_OK)
    return rc;
  tq_err err;
  tq_err_clear(&err);
  char *id = NULL, *secret = NULL;
  tq_lib *lib = cli_lib(c, 0);
  if (lib == NULL)
    return EXIT_FAIL;
  if (tq_auth_migrate(lib, &err) != TQ_OK || tq_lib_begin(lib, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (tq_auth_client_add(lib, name, role, &id, &secret, &err) != TQ_OK ||
      tq_auth_audit(lib, CLI_WHO, "client.add", name, tq_role_name(role), NULL, &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK) {
    tq_lib_rollback(lib);
    free(id);
    free_secret(secret);
    return cli_fail(c, &err);
  }
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddStringToObject(j, "role", tq_role_name(role));
    cJSON_AddStringToObject(j, "client_id", id);
    cJSON_AddStringToObject(j, "client_secret", secret);
    cli_print_json(j);
  } else {
    printf("added client '%s' (%s)\n", cli_txt(name), tq_role_name(role));
    printf("client_id:     %s\nclient_secret: %s\n", id, secret);
    printf("The secret is shown once: only its hash is kept.\n");
  }
  free(id);
  free_secret(secret);
  return EXIT_OK;
}

int cli_cmd_client(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"add", client_add, "make OAuth client credentials"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "client", cmds, argc - 1, argv + 1);
}
