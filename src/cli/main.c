/* main.c: the tqhost binary's entry point; everything else lives in the cli part. */
#include <malloc.h>

#include "tqhost/cli.h"

/* A fixed mmap threshold: glibc raises it each time a large block is freed, after which
 * buffers of a megabyte (a TAXII page, its parse) come from the heap, fragment it and are
 * never given back: a 200,000-object poll peaked at 111 MB instead of 102 MB. Blocks from
 * 128 KiB up are mapped and unmapped on their own. */
int main(int argc, char **argv) {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  return tq_cli_main(argc, argv);
}
