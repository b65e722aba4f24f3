/* Print an Aurora DSQL IAM token, nothing else: no database driver.
 *
 *   token [HOSTNAME [USER [SECONDS]]]
 *
 * HOSTNAME defaults to $PGHOST, USER to $PGUSER (else "admin"). The region
 * comes from the hostname (<id>.dsql.<region>.on.aws), else AWS_REGION /
 * AWS_DEFAULT_REGION / the profile's region. Credentials come from the
 * default AWS chain (environment keys, AWS_PROFILE's files, SSO, web
 * identity, container, instance role). Use the token as the PostgreSQL
 * password, e.g.  PGPASSWORD=$(token my.dsql.us-east-1.on.aws) psql ...
 *
 * Link with -ldsqlauth (pkg-config --libs dsqlauth). */
#include <stdio.h>
#include <stdlib.h>

#include <dsqlauth.h>

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : getenv("PGHOST");
    const char *user = argc > 2 ? argv[2] : getenv("PGUSER");
    uint32_t seconds = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
    if (!host || !*host) {
        fprintf(stderr, "usage: token HOSTNAME [USER [SECONDS]]  (or set PGHOST)\n");
        return 2;
    }
    if (!user || !*user)
        user = "admin";

    dsql_error err = {0};
    /* NULL profile: AWS_PROFILE, else "default" */
    dsql_credentials_provider *creds = dsql_credentials_provider_default(NULL, &err);
    /* the token provider owns creds from here on, also if this fails */
    dsql_token_provider *tokens = creds ? dsql_token_provider_signing(creds, NULL, &err) : NULL;
    if (!tokens) {
        fprintf(stderr, "token: %s\n", err.message);
        return 1;
    }

    dsql_token_request req = {
        .version = DSQL_STRUCT_VERSION,
        .hostname = host,
        .user = user,        /* "admin" signs DbConnectAdmin, others DbConnect */
        .region = NULL,      /* from the hostname, else the environment */
        .expires_in = seconds, /* 0: 900 s */
    };
    /* a token is a few hundred bytes, more with a session token: let the
     * library size the buffer */
    char *token = NULL;
    size_t len = 0;
    dsql_status st = dsql_token_provider_get_alloc(tokens, &req, &token, &len, &err);
    if (st != DSQL_OK) {
        fprintf(stderr, "token: %s (%s)\n", err.message, dsql_status_name(st));
    } else {
        fwrite(token, 1, len, stdout);
        putchar('\n');
    }
    dsql_token_free(token); /* wipes it; NULL is fine */
    dsql_token_provider_free(tokens);
    return st == DSQL_OK ? 0 : 1;
}
