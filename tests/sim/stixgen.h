/* stixgen.h: rstsim's generated TAXII collections (stixgen.c): the four RST collections and
 * the model of their entries. An entry is one object version in a collection, named by its
 * generator index i in [0, N); everything about it (kind, STIX id, date_added, version, the
 * JSON text) is computed from (--seed, collection, i) on demand, so a collection of 200,000
 * entries costs no memory beyond taxii.c's ordering array. date_added never decreases with i;
 * ties come in groups (README, "TAXII 2.1"). Used only by taxii.c. */
#ifndef RSTSIM_STIXGEN_H
#define RSTSIM_STIXGEN_H

#include <stdint.h>

#include "sim.h"

typedef enum sim_coll_family { SIM_FAMILY_FEED, SIM_FAMILY_REPORTS } sim_coll_family;

typedef struct sim_coll {
  const char *id;    /* TAXII collection id (RST's for the Threat Feed, spec 5.3) */
  const char *title; /* as ThreatQ lists it */
  const char *alias;
  const char *description;
  const char *topic;                    /* seeds this collection's data ... */
  const char *topic_id, *topic_created; /* ... its ids and its created times */
  sim_coll_family family;
  int score_lo, score_hi; /* x_rst_score band of its indicators */
} sim_coll;

#define SIM_N_COLLS 4
extern const sim_coll sim_colls[SIM_N_COLLS];

/* What taxii.c needs to filter, order and page an entry, without its JSON. */
typedef struct sim_entry {
  uint32_t index;     /* generator index */
  uint32_t base;      /* index of the object's first version (== index unless a revocation) */
  int kind;           /* stixgen.c's kind of object */
  int revocation;     /* 1: a later version of base with revoked: true */
  const char *type;   /* STIX type */
  char id[96];        /* "<type>--<uuid>" */
  int64_t added_us;   /* date_added, Unix microseconds */
  int64_t version_us; /* the STIX modified (created for markings), microseconds */
  int64_t created_us; /* the STIX created of the object's first version */
} sim_entry;

/* Fills e for entry i of coll. Cheap: no JSON is built. */
void sim_stix_entry(const sim_config *cfg, const sim_coll *coll, uint32_t i, sim_entry *e);
/* Only the STIX type of entry i (for match[type] scans). */
const char *sim_stix_type(const sim_coll *coll, uint32_t i);
/* date_added of entry i (microseconds); never decreases with i. */
int64_t sim_stix_added_us(const sim_config *cfg, uint32_t i);
/* First index of i's tie group and one past its last ([i, i+1) when i has no tie), within n. */
void sim_stix_tie_group(uint32_t i, uint32_t n, uint32_t *lo, uint32_t *hi);
/* Whether entry i is a later (revoked) version of an earlier entry (match[version]=first). */
int sim_stix_is_revocation(const sim_coll *coll, uint32_t i);
/* Whether entry i has a later version in a collection of n entries (match[version]=last). */
int sim_stix_superseded(const sim_coll *coll, uint32_t i, uint32_t n);
/* Appends entry e's STIX object (compact JSON) to out. */
tq_code sim_stix_write(const sim_config *cfg, const sim_coll *coll, const sim_entry *e, tq_buf *out,
                       tq_err *err);
/* Writes a TAXII timestamp "YYYY-MM-DDTHH:MM:SS.ffffffZ" (microseconds). */
void sim_taxii_time(int64_t us, char out[32]);

#endif
