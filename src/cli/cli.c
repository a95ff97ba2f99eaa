/* cli.c: command dispatch. */
#include <stdio.h>

#include "tqhost/cli.h"

int tq_cli_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "tqhost: not yet\n");
  return 2;
}
