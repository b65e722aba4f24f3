/* dsql-local: DSQL's dialect on the relay (see dialect.c). */
#ifndef DSQL_LOCAL_DIALECT_H
#define DSQL_LOCAL_DIALECT_H

#include "gateway.h"

/* Move what arrived in `in` to `out`, message by message, rewritten where
 * DSQL would answer differently. A partial message waits in `in` (whole
 * Query/Parse texts up to 1 MiB, errors up to 64 KiB; longer ones pass
 * through unchanged). 0, DIALECT_DROP, or -1 when out of memory. */
#define DIALECT_DROP 1 /* returned when the connection is to be cut (a fault) */
int dialect_client_to_backend(conn *c, struct evbuffer *in, struct evbuffer *out);
int dialect_backend_to_client(conn *c, struct evbuffer *in, struct evbuffer *out);

#endif
