/* Fuzz target: hostname validation, region discovery and token signing
 * with hostile hostnames, regions and users. Input: three NUL-separated
 * fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsqlauth.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *in = malloc(size + 3);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = in[size + 1] = in[size + 2] = '\0';
    const char *host = in;
    const char *region = host + strlen(host) + 1;
    const char *user = region <= in + size ? region + strlen(region) + 1 : in + size + 2;
    if (region > in + size)
        region = in + size + 1;

    char buf[DSQL_REGION_MAX + 1];
    dsql_error err;
    dsql_region_from_hostname(host, buf, sizeof buf, &err);

    dsql_credentials c = {"AKID", "SECRET", "TOKEN+/=", 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, host, user, region, 0, 1700000000};
    char token[4096];
    size_t len = 0;
    dsql_status st = dsql_token_generate(&p, &c, token, sizeof token, &len, &err);
    if (st == DSQL_OK && strlen(token) != len)
        abort(); /* the reported length must be the written length */
    if (st != DSQL_OK && token[0] != '\0')
        abort(); /* never a partial token */
    free(in);
    return 0;
}
