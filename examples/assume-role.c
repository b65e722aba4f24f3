/* Connect to Aurora DSQL as an IAM role assumed from code: the process's
 * own credentials (the default chain: environment, profile, container,
 * instance role) sign STS AssumeRole, and the role's credentials sign the
 * database token. A Lambda function reaching a database through a role
 * other than its own, or a service with one role per tenant, does this.
 *
 *   assume-role ROLE_ARN [ENDPOINT | CLUSTER_ID | postgresql://... | "key=value ..."]
 *
 * With no second argument the PG* / AWS_REGION environment is used (as set
 * by `dsql-local run`). */
#include <stdio.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: assume-role ROLE_ARN [ENDPOINT | URI | conninfo]\n");
        return 2;
    }
    dsql_error err = {0};
    int rc = 1;
    dsql_config *cfg = dsql_config_new(&err);
    dsql_credentials_provider *base = NULL, *role = NULL;
    dsql_token_provider *tokens = NULL;
    PGconn *conn = NULL;
    if (!cfg || (argc > 2 && dsql_config_parse(cfg, argv[2], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK)
        goto out;

    /* one base provider; each role assumed from it has its own cache */
    if (!(base = dsql_credentials_provider_default(NULL, &err)))
        goto out;
    dsql_assume_role_options o;
    dsql_assume_role_options_init(&o);
    o.role_arn = argv[1];
    o.role_session_name = "libdsqlauth-example";
    if (!(role = dsql_credentials_provider_assume_role(base, &o, &err)))
        goto out;
    tokens = dsql_token_provider_signing(role, NULL, &err); /* owns role from here */
    role = NULL;
    if (!tokens)
        goto out;

    if (!(conn = dsql_pq_connect(cfg, tokens, &err)))
        goto out;
    PGresult *r = PQexec(conn, "select current_user");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        printf("connected as %s with the credentials of %s\n", PQgetvalue(r, 0, 0), argv[1]);
        rc = 0;
    } else {
        fprintf(stderr, "assume-role: %s", PQerrorMessage(conn));
    }
    PQclear(r);
out:
    if (rc && err.message[0])
        fprintf(stderr, "assume-role: %s (%s)\n", err.message, dsql_status_name(err.status));
    PQfinish(conn);
    dsql_token_provider_free(tokens);
    dsql_credentials_provider_free(role);
    dsql_credentials_provider_free(base);
    dsql_config_free(cfg);
    return rc;
}
