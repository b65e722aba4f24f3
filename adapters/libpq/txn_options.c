/* libpq adapter: transaction options, their defaults and their check, for
 * dsql_pq_run_transaction and the pool's defaults (dsql_pq_pool_new). */
#include "dsqlauth/adapter.h"
#include "txn_options.h"

#include <string.h>

#define fail dsql_error_set /* the adapter kit's */

void dsql_pq_txn_options_init(dsql_pq_txn_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = DSQL_STRUCT_VERSION;
    dsql_retry_options_init(&o->retry);
    o->begin = NULL;
}

dsql_status dsql__pq_txn_options_check(const dsql_pq_txn_options *o, dsql_error *err)
{
    if (!o)
        return DSQL_OK;
    if (o->version != DSQL_STRUCT_VERSION)
        return fail(err, DSQL_EINVAL, "transaction options: version %d is not %d "
                    "(use dsql_pq_txn_options_init)", o->version, DSQL_STRUCT_VERSION);
    dsql_status st = dsql_retry_options_check(&o->retry, "transaction options", err);
    if (st != DSQL_OK)
        return st;
    if (o->begin && !*o->begin)
        return fail(err, DSQL_EINVAL, "transaction options: begin is empty");
    return DSQL_OK;
}
