/* Hostname validation and region discovery (lib/hostname.c). */
#ifndef DSQLAUTH_HOSTNAME_H
#define DSQLAUTH_HOSTNAME_H

#include "internal.h"

/* Strips http(s):// and one trailing '/', checks DNS syntax (no port). */
dsql_status dsql__hostname_check(const char *hostname, const char **start, size_t *len,
                                 dsql_error *err);
/* Finds <region> in "<id>.dsql*.<region>.on.aws"; 0 when it is not one. */
int dsql__region_in_hostname(const char *h, size_t n, const char **region, size_t *rlen);

#endif
