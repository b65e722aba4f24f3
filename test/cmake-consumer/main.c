/* Calls one function of each library (core, libpq adapter, ODBC adapter)
 * from an outside build: the published token, the pool defaults, an ODBC
 * quoted value. Used by test/t-cmake.sh and test/t-install.sh. */
#include <stdio.h>
#include <string.h>
#include <dsqlauth.h>
#include <dsqlauth/odbc.h>
#include <dsqlauth/pool.h>

int main(void)
{
    dsql_credentials c = {"ACCESS_KEY", "SECRET_KEY", "SESSION_TOKEN", 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "test.dsql.us-east-1.on.aws", "admin", NULL, 900,
                           1731001173};
    char token[2048], quoted[16];
    size_t len;
    dsql_error err;
    if (dsql_token_generate(&p, &c, token, sizeof token, NULL, &err) != DSQL_OK)
        return fprintf(stderr, "token: %s\n", err.message), 1;
    dsql_pq_pool_options o;
    dsql_pq_pool_options_init(&o);
    if (dsql_odbc_quote("a}b", quoted, sizeof quoted, &len, &err) != DSQL_OK)
        return fprintf(stderr, "quote: %s\n", err.message), 1;
    printf("version %s\ntoken %s\npool options version %d\nquoted %s\n", dsql_version(),
           strstr(token, "X-Amz-Signature="), (int)o.version, quoted);
    return 0;
}
