/* main.c: the tqhost binary's entry point; everything else lives in the cli part. */
#include "tqhost/cli.h"

int main(int argc, char **argv) { return tq_cli_main(argc, argv); }
