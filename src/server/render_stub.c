/* render_stub.c: TEMPORARY weak stand-ins for render.c (the objects group's, not on main yet)
 * so that the search routes link; the real definitions win as soon as render.c is in the
 * build. Delete this file when render.c lands on main. */
#include <string.h>

#include "render.h"

__attribute__((weak)) int tq_render_with(const tq_req *rq, unsigned *with, tq_resp *rs) {
  (void)rs;
  *with = 0;
  const char *w = tq_req_arg(rq, "with");
  if (w && strstr(w, "score"))
    *with |= TQ_WITH_SCORE;
  return 1;
}

__attribute__((weak)) cJSON *tq_render_object(const tq_object *o, unsigned with) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL)
    return NULL;
  char t[20];
  cJSON_AddNumberToObject(j, "id", (double)o->id);
  cJSON_AddStringToObject(j, "value", o->value ? o->value : "");
  cJSON_AddNumberToObject(j, "status_id", o->status);
  if (with & TQ_WITH_SCORE) {
    cJSON *s = cJSON_AddObjectToObject(j, "score");
    cJSON_AddNumberToObject(s, "generated_score", o->score_generated);
    cJSON_AddNumberToObject(s, "score", o->score);
  } else
    cJSON_AddNumberToObject(j, "score", o->score);
  tq_time_format(o->updated_at, t);
  cJSON_AddStringToObject(j, "updated_at", t);
  return j;
}
