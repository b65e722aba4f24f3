/* Tokens through the default token-provider path with cached credentials:
 * dsql_token_provider_signing over dsql_credentials_provider_default (which
 * is cached), credentials from the environment or from a profile file, and
 * over dsql_credentials_provider_cached wrapping expiring credentials.
 * Session tokens are STS-sized (900 or 1,200 bytes of base64 with '+', '/'
 * and '='); hosts and users rotate; signing time is the current time.
 * Prints one line per case:
 *   <case>: session_token_len=<n> token_len=<n> median_ns=<n> p99_ns=<n>
 *           [sha256_floor_ns=<n> ratio=<token/floor> rounds=<r1,...>]
 * session_token_len is read back from a signed token; the benchmark refuses
 * to run when it is not the intended one. The SHA-256 floor is the time to
 * hash as many bytes as the token's canonical request, in one call,
 * measured in the same run and paired with the tokens as in token-bench
 * (bench_measure in benchutil.h). Times are per token, from batches of
 * BATCH tokens. No network: every source here is local, and once cached no
 * source is read again. */
#include "benchutil.h" /* first: it selects the OpenSSL API */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsqlauth.h"

#define TOKENS 300000
#define WARMUP 20000
#define BATCH 100

typedef struct provider_case {
    dsql_token_provider *tp;
    dsql_error err;
} provider_case;

static int token(void *ctx, unsigned i, char *buf, size_t cap)
{
    provider_case *pc = ctx;
    dsql_token_request req = {DSQL_STRUCT_VERSION, BENCH_HOSTS[i % BENCH_ROTATION],
                              BENCH_USERS[(i / BENCH_ROTATION) % BENCH_ROTATION], NULL, 0, 0};
    return dsql_token_provider_get(pc->tp, &req, buf, cap, NULL, &pc->err) == DSQL_OK;
}

/* Takes ownership of creds. */
static int run_case(const char *name, dsql_credentials_provider *creds, size_t session_len)
{
    provider_case pc = {0};
    pc.tp = dsql_token_provider_signing(creds, NULL, &pc.err);
    if (!pc.tp) {
        fprintf(stderr, "provider-bench %s: %s\n", name, pc.err.message);
        return 0;
    }
    char buf[8192];
    unsigned k = 0;
    int ok = 1;
    for (int i = 0; ok && i < WARMUP; i++)
        ok = token(&pc, k++, buf, sizeof buf);
    if (ok)
        bench_require_session_len(name, buf, session_len);
    size_t token_len = strlen(buf), canonical_len = bench_canonical_len(buf);
    bench_stats s;
    ok = ok && bench_measure(token, &pc, &k, buf, sizeof buf, session_len ? canonical_len : 0,
                             TOKENS, BATCH, &s);
    dsql_token_provider_free(pc.tp);
    if (!ok) {
        fprintf(stderr, "provider-bench %s: %s\n", name, pc.err.message);
        return 0;
    }
    printf("%s: session_token_len=%zu token_len=%zu median_ns=%.0f p99_ns=%.0f", name,
           bench_signed_session_len(buf), token_len, s.median_ns, s.p99_ns);
    bench_print_floor(&s);
    printf("\n");
    fflush(stdout);
    return 1;
}

static void set_env_keys(const char *session)
{
    setenv("AWS_ACCESS_KEY_ID", session ? "ASIAIOSFODNN7EXAMPLE" : "AKIAIOSFODNN7EXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
    if (session)
        setenv("AWS_SESSION_TOKEN", session, 1);
    else
        unsetenv("AWS_SESSION_TOKEN");
}

static void clear_env_keys(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

/* A profile "bench" with static keys and the session token, in a private
 * directory; returns 0 when it cannot be written. */
static int profile_case(const char *name, const char *session, size_t session_len)
{
    char dir[] = "/tmp/dsql-provider-bench-XXXXXX";
    char creds_path[256], config_path[256];
    if (!mkdtemp(dir))
        return 0;
    snprintf(creds_path, sizeof creds_path, "%s/credentials", dir);
    snprintf(config_path, sizeof config_path, "%s/config", dir);
    FILE *f = fopen(creds_path, "w");
    int ok = 0;
    if (f) {
        fprintf(f, "[bench]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\n"
                   "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
                   "aws_session_token = %s\n",
                session);
        fclose(f);
        setenv("AWS_SHARED_CREDENTIALS_FILE", creds_path, 1);
        setenv("AWS_CONFIG_FILE", config_path, 1);
        ok = run_case(name, dsql_credentials_provider_default("bench", NULL), session_len);
        unlink(creds_path);
    }
    rmdir(dir);
    return ok;
}

int main(void)
{
    static char s900[901], s1200[1201];
    bench_session_token(s900, 900);
    bench_session_token(s1200, 1200);
    static const char *const clear_vars[] = {"AWS_PROFILE", "AWS_CONFIG_FILE",
                                             "AWS_SHARED_CREDENTIALS_FILE",
                                             "AWS_WEB_IDENTITY_TOKEN_FILE",
                                             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                             "AWS_CONTAINER_CREDENTIALS_FULL_URI"};
    for (size_t i = 0; i < sizeof clear_vars / sizeof clear_vars[0]; i++)
        unsetenv(clear_vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

    /* environment keys through the cached default chain */
    set_env_keys(NULL);
    int ok = run_case("default_env", dsql_credentials_provider_default(NULL, NULL), 0);
    set_env_keys(s900);
    ok = ok && run_case("default_env_session900", dsql_credentials_provider_default(NULL, NULL),
                        900);
    set_env_keys(s1200);
    ok = ok && run_case("default_env_session1200",
                        dsql_credentials_provider_default(NULL, NULL), 1200);
    clear_env_keys();

    /* a profile file through the cached default chain */
    ok = ok && profile_case("default_profile_session1200", s1200, 1200);

    /* expiring credentials (1 h left) through dsql_credentials_provider_cached */
    dsql_credentials temp = {"ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             s1200, (int64_t)time(NULL) + 3600};
    ok = ok && run_case("cached_expiring_session1200",
                        dsql_credentials_provider_cached(
                            dsql_credentials_provider_static(&temp, NULL), NULL),
                        1200);
    return ok ? 0 : 1;
}
