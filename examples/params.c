/* Your own PQconnectdbParams call with IAM: dsql_pq_params gives the
 * keyword/value arrays (fresh token as the password, verify-full TLS), for
 * code that must create the PGconn itself (pools, frameworks).
 *
 *   params [ENDPOINT | CLUSTER_ID | URI | "key=value ..."]
 *
 * Without an argument the PG* / AWS_REGION environment is used. */
#include <stdio.h>
#include <string.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>

int main(int argc, char **argv)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || (argc > 1 && dsql_config_parse(cfg, argv[1], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK || dsql_config_resolve(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "params: %s\n", err.message);
        return 1;
    }
    /* the process-wide default provider (borrowed, never freed): credentials
     * from the default chain for cfg's profile, fetched once and cached for
     * every connection; a profile from AWS_PROFILE keeps the environment keys */
    dsql_token_provider *tokens = dsql_token_provider_shared(cfg, &err);
    if (!tokens) {
        fprintf(stderr, "params: %s\n", err.message);
        return 1;
    }
    int rc = 1;
    /* a token is valid for one host: walk the hosts yourself */
    for (size_t i = 0; i < dsql_config_host_count(cfg) && rc != 0; i++) {
        const char *const *kw, *const *val;
        if (dsql_pq_params(cfg, tokens, i, &kw, &val, &err) != DSQL_OK) {
            fprintf(stderr, "params: %s\n", err.message);
            break;
        }
        for (size_t k = 0; kw[k]; k++) /* show what libpq gets, token redacted */
            printf("  %s=%s\n", kw[k], strcmp(kw[k], "password") == 0 ? "<token>" : val[k]);
        PGconn *conn = PQconnectdbParams(kw, val, 0);
        dsql_pq_params_free(kw, val); /* wipes the token */
        if (PQstatus(conn) == CONNECTION_OK) {
            printf("connected to %s (server %d)\n", PQhost(conn), PQserverVersion(conn));
            rc = 0;
        } else {
            fprintf(stderr, "params: %s", PQerrorMessage(conn));
        }
        PQfinish(conn);
    }
    dsql_config_free(cfg);
    return rc;
}
