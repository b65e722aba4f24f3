/* Internal knobs of the caching provider (tests shorten the windows). */
#ifndef DSQLAUTH_CREDS_CACHE_H
#define DSQLAUTH_CREDS_CACHE_H

#include "../internal.h"

#define DSQL__CACHE_ADVISORY_S 300
#define DSQL__CACHE_MANDATORY_S 60

/* p must come from dsql_credentials_provider_cached; set before sharing. */
void dsql__cached_set_windows(dsql_credentials_provider *p, int64_t advisory_s,
                              int64_t mandatory_s);
/* Number of inner fetches started so far. */
uint64_t dsql__cached_fetches(dsql_credentials_provider *p);

/* Borrowing the cached credentials instead of copying them (the signing
 * token provider's hot path). When p is a caching provider, refreshes as
 * get() would and sets *creds to the current credentials, which stay valid
 * and unchanged, also across a concurrent refresh, until
 * dsql__cached_return(*snap). Never write through *creds. On failure
 * *snap and *creds are NULL and nothing is to be returned. */
typedef struct dsql__creds_snapshot dsql__creds_snapshot;
int dsql__is_cached(const dsql_credentials_provider *p);
dsql_status dsql__cached_borrow(dsql_credentials_provider *p, dsql__creds_snapshot **snap,
                                const dsql_credentials **creds, dsql_error *err);
/* The borrowed session token's length and its encoding as a token carries
 * it, made with the snapshot (known->enc NULL: the credentials have none).
 * Valid as long as the snapshot. */
void dsql__snapshot_session(const dsql__creds_snapshot *snap, dsql__session_known *known);
/* Drops the reference; the last one wipes the secrets. NULL is allowed. */
void dsql__cached_return(dsql__creds_snapshot *snap);

#endif
