/* Tokens through the default token-provider path with cached credentials:
 * dsql_token_provider_signing over dsql_credentials_provider_default (which
 * is cached), credentials from the environment or from a profile file, and
 * over dsql_credentials_provider_cached wrapping expiring credentials.
 * Prints one line per case:
 *   <case>: median_ns=<n> p99_ns=<n>
 * Times are per token, from batches of BATCH tokens. Target: median at most
 * 1500 ns. No network: every source here is local, and once cached no
 * source is read again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "dsqlauth.h"

#define TOKENS 500000
#define WARMUP 20000
#define BATCH 100

static int run_case(const char *name, dsql_credentials_provider *creds)
{
    static double samples[TOKENS / BATCH];
    dsql_error err;
    dsql_token_provider *tp = dsql_token_provider_signing(creds, NULL, &err);
    if (!tp) {
        fprintf(stderr, "provider-bench %s: %s\n", name, err.message);
        return 0;
    }
    char buf[8192];
    dsql_token_request req = {DSQL_STRUCT_VERSION,
                              "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "admin", NULL,
                              0};
    int ok = 1;
    for (int i = 0; ok && i < WARMUP; i++)
        ok = dsql_token_provider_token(tp, &req, buf, sizeof buf, NULL, &err) == DSQL_OK;
    for (int b = 0; ok && b < TOKENS / BATCH; b++) {
        double t0 = now_ns();
        for (int i = 0; ok && i < BATCH; i++)
            ok = dsql_token_provider_token(tp, &req, buf, sizeof buf, NULL, &err) == DSQL_OK;
        samples[b] = (now_ns() - t0) / BATCH;
    }
    dsql_token_provider_free(tp);
    if (!ok) {
        fprintf(stderr, "provider-bench %s: %s\n", name, err.message);
        return 0;
    }
    qsort(samples, TOKENS / BATCH, sizeof samples[0], cmp_double);
    printf("%s: median_ns=%.0f p99_ns=%.0f\n", name, samples[TOKENS / BATCH / 2],
           samples[TOKENS / BATCH * 99 / 100]);
    fflush(stdout);
    return 1;
}

int main(void)
{
    /* an STS-sized session token (about 900 bytes) */
    char session[901];
    for (int i = 0; i < 900; i++)
        session[i] = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+AbC="[i % 61];
    session[900] = '\0';
    static const char *const clear_vars[] = {"AWS_PROFILE", "AWS_CONFIG_FILE",
                                             "AWS_SHARED_CREDENTIALS_FILE",
                                             "AWS_WEB_IDENTITY_TOKEN_FILE",
                                             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                             "AWS_CONTAINER_CREDENTIALS_FULL_URI"};
    for (size_t i = 0; i < sizeof clear_vars / sizeof clear_vars[0]; i++)
        unsetenv(clear_vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

    /* 1: environment keys through the cached default chain */
    setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_SESSION_TOKEN", session, 1);
    int ok = run_case("default_env_session", dsql_credentials_provider_default(NULL, NULL));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");

    /* 2: a profile file through the cached default chain */
    char dir[] = "/tmp/dsql-provider-bench-XXXXXX";
    char path[256];
    if (ok && mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/credentials", dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "[bench]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                       "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
                       "aws_session_token = %s\n",
                    session);
            fclose(f);
            setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
            snprintf(path, sizeof path, "%s/config", dir);
            setenv("AWS_CONFIG_FILE", path, 1);
            ok = run_case("default_profile_session",
                          dsql_credentials_provider_default("bench", NULL));
            snprintf(path, sizeof path, "%s/credentials", dir);
            unlink(path);
        }
        rmdir(dir);
    }

    /* 3: expiring credentials (1 h left) through dsql_credentials_provider_cached */
    dsql_credentials temp = {"ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             session, (int64_t)time(NULL) + 3600};
    if (ok)
        ok = run_case("cached_expiring_session",
                      dsql_credentials_provider_cached(
                          dsql_credentials_provider_static(&temp, NULL), NULL));
    return ok ? 0 : 1;
}
