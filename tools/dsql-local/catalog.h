/* dsql-local: which relations committed DDL changed, and when, for DSQL's
 * schema conflicts ("Concurrency control in Aurora DSQL": OC001, a
 * transaction whose catalog is older than a committed DDL). One history
 * per process, shared by every region's gateway (one database); the
 * gateway is single-threaded. */
#ifndef DSQL_LOCAL_CATALOG_H
#define DSQL_LOCAL_CATALOG_H

#include <stddef.h>

#define DL_CATALOG_HISTORY 1024 /* changes remembered; older ones: any relation */
#define DL_CATALOG_ANY 0u       /* an oid standing for every relation */

/* The generation now: it grows by one with every committed DDL. */
unsigned long dl_catalog_gen(void);

/* A DDL that changed oids[0..n) committed (DL_CATALOG_ANY: it is not
 * known which). */
void dl_catalog_committed(const unsigned *oids, size_t n);

/* The relations changed by DDL committed after generation gen, into
 * out[0..cap): their number, 0 when none; when some are forgotten or do
 * not fit, out[0] is DL_CATALOG_ANY and 1 is returned. */
size_t dl_catalog_changed_since(unsigned long gen, unsigned *out, size_t cap);

#endif
