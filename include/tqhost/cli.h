/* cli.h: the tqhost command line (argv in, exit status out: 0 ok, 1 failure, 2 usage). */
#ifndef TQHOST_CLI_H
#define TQHOST_CLI_H

int tq_cli_main(int argc, char **argv);

#endif
