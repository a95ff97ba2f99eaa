/* fuzz_pattern.c: libFuzzer harness for the STIX pattern parser (stix/pattern.c). Any input
 * parses or is refused with a position inside the text; a parsed pattern's counts agree. */
#include <stdint.h>
#include <stdlib.h>

#include "tqhost/stix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tq_stix_pattern *p = NULL;
  tq_stix_pattern_error perr;
  tq_err err;
  if (tq_stix_pattern_parse((const char *)data, size, &p, &perr, &err) == TQ_OK) {
    if (p->n_observations == 0 || p->n_comparisons == 0)
      abort(); /* a pattern has at least one [ comparison ] */
    for (size_t i = 0; i < p->n_observables; i++)
      if (p->observables[i].object_type == NULL ||
          p->observables[i].observation >= p->n_observations)
        abort();
    tq_stix_pattern_free(p);
  } else if (perr.offset > size) {
    abort(); /* the fault is inside the text (or at its end) */
  }
  return 0;
}
