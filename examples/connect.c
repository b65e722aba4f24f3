/* Connect to Aurora DSQL with an IAM token and run a query.
 *
 *   connect [ENDPOINT | CLUSTER_ID | postgresql://... | "key=value ..."]
 *
 * With no argument the PG* / AWS_REGION environment is used (as set by
 * `dsql-local run`). Credentials come from the default AWS chain. */
#include <stdio.h>
#include <stdlib.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>

int main(int argc, char **argv)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || (argc > 1 && dsql_config_parse(cfg, argv[1], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "connect: %s\n", err.message);
        return 1;
    }
    dsql_config_set(cfg, "application_name_prefix", "example", NULL);

    /* the process-wide default provider (borrowed, never freed): credentials
     * from the default chain for cfg's profile, fetched once and cached for
     * every connection; a profile from AWS_PROFILE keeps the environment keys */
    dsql_token_provider *tokens = dsql_token_provider_shared(cfg, &err);
    if (!tokens) {
        fprintf(stderr, "connect: %s\n", err.message);
        dsql_config_free(cfg);
        return 1;
    }

    PGconn *conn = dsql_pq_connect(cfg, tokens, &err);
    if (!conn) {
        fprintf(stderr, "connect: %s (%s%s%s)\n", err.message, dsql_status_name(err.status),
                err.sqlstate[0] ? ", SQLSTATE " : "", err.sqlstate);
        dsql_config_free(cfg);
        return 1;
    }
    PGresult *res = PQexec(conn, "select current_user, version()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        printf("connected to %s as %s over %s\n%s\n", PQhost(conn), PQgetvalue(res, 0, 0),
               PQsslInUse(conn) ? PQsslAttribute(conn, "protocol") : "plaintext",
               PQgetvalue(res, 0, 1));
    else
        fprintf(stderr, "query: %s", PQerrorMessage(conn));
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    PQfinish(conn);
    dsql_config_free(cfg);
    return ok ? 0 : 1;
}
