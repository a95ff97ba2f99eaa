/* fuzz_ioc.c: libFuzzer harness for indicator classification (ioc/). A value that classifies
 * has a canonical form that classifies again to the same type and the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/ioc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *value = malloc(size + 1);
  if (value == NULL)
    return 0;
  memcpy(value, data, size);
  value[size] = '\0'; /* the API takes C strings: the text up to a NUL */
  tq_ioc_type type = TQ_IOC_UNKNOWN, again = TQ_IOC_UNKNOWN;
  char *canon = NULL, *canon2 = NULL;
  tq_err err;
  if (tq_ioc_classify(value, &type, &canon, &err) == TQ_OK) {
    if (tq_ioc_classify(canon, &again, &canon2, &err) != TQ_OK) {
      fprintf(stderr, "canonical '%s' (%s) of '%s' does not classify: %s\n", canon,
              tq_ioc_type_name(type), value, err.msg);
      abort();
    }
    if (again != type || strcmp(canon, canon2) != 0) {
      fprintf(stderr, "'%s' -> %s '%s' -> %s '%s'\n", value, tq_ioc_type_name(type), canon,
              tq_ioc_type_name(again), canon2);
      abort();
    }
    free(canon2);
    canon2 = NULL;
    /* normalising the canonical form as its own type gives it back too */
    if (tq_ioc_normalize(type, canon, &canon2, &err) != TQ_OK || strcmp(canon, canon2) != 0) {
      fprintf(stderr, "normalize(%s, '%s') -> '%s'\n", tq_ioc_type_name(type), canon,
              canon2 ? canon2 : err.msg);
      abort();
    }
  }
  free(canon);
  free(canon2);
  free(value);
  return 0;
}
