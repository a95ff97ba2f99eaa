/* fuzz_stix_object.c: libFuzzer harness for STIX envelope, bundle and object parsing
 * (stix/object.c): every object of a page is either good or bad, in order. */
#include <stdint.h>
#include <stdlib.h>

#include "tqhost/stix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tq_stix_page page;
  tq_err err;
  if (tq_stix_page_parse((const char *)data, size, 1000, &page, &err) == TQ_OK) {
    for (size_t i = 0; i < page.n_bad; i++)
      if (page.bad[i].message[0] == '\0')
        abort(); /* a refused object says why */
    tq_stix_page_free(&page);
  }
  return 0;
}
