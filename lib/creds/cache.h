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

#endif
