/* fuzz_csv_import.c: libFuzzer harness for the import of a list or CSV file
 * (library/import.c) into a library in memory: any input imports or is refused row by row,
 * and every row counted is added, merged or reported. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tqhost/library.h"

static tq_lib *lib;
static int runs;

static void on_bad(void *ud, const char *path, long line, const char *why) {
  (void)ud;
  (void)path;
  if (line < 1 || why[0] == '\0')
    abort(); /* a refused row is named and explained */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tq_err err;
  if (lib == NULL || ++runs % 500 == 0) { /* a fresh library now and then: memory stays flat */
    tq_lib_close(lib);
    lib = NULL;
    if (tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err) != TQ_OK) {
      fprintf(stderr, "%s\n", err.msg);
      abort();
    }
  }
  FILE *f = fmemopen((void *)data, size, "rb");
  if (f == NULL)
    return 0;
  tq_import_opts o = {.path = "fuzz.csv", .on_bad = on_bad};
  tq_import_stats st;
  if (tq_lib_import(lib, f, &o, &st, &err) == TQ_OK && st.added + st.merged > st.rows)
    abort();
  fclose(f);
  return 0;
}
