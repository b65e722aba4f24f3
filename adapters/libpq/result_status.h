/* libpq adapter: what a result or error says (result_status.c), for the
 * transaction runner and statements with retry. Not installed. */
#ifndef DSQL_PQ_RESULT_STATUS_H
#define DSQL_PQ_RESULT_STATUS_H

#include "dsqlauth/pool.h" /* dsql_pq_result_status */

/* The kind of the conflict in err, whose message dsql_pq_result_status
 * filled with the server's primary message alone. */
dsql_conflict_kind dsql__pq_conflict_kind(const dsql_error *err);

/* Copy a (possibly multi-line) libpq message into err after prefix,
 * without the trailing newline. */
void dsql__pq_copy_message(dsql_error *err, const char *prefix, const char *msg);

#endif
