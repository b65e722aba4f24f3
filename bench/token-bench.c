/* Token generation cost: one-shot (key derived every time) and the caching
 * signer, with and without a session token. Prints one line per case:
 *   <case>: median_ns=<n> p99_ns=<n> allocs_per_token=<n>
 * Times are per token, from batches of BATCH tokens (the clock's own cost
 * stays out of the numbers). Allocations are counted through both the
 * library's allocator seam and OpenSSL's. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "benchutil.h"
#include "dsqlauth.h"

#define TOKENS 1000000
#define WARMUP 20000
#define BATCH 100

static atomic_long allocations;

static void *count_malloc(size_t n) { atomic_fetch_add(&allocations, 1); return malloc(n); }
static void *count_realloc(void *p, size_t n) { atomic_fetch_add(&allocations, 1); return realloc(p, n); }
static void *ossl_malloc(size_t n, const char *f, int l) { (void)f, (void)l; return count_malloc(n); }
static void *ossl_realloc(void *p, size_t n, const char *f, int l) { (void)f, (void)l; return count_realloc(p, n); }
static void ossl_free(void *p, const char *f, int l) { (void)f, (void)l; free(p); }

static int sign(dsql_signer *signer, const dsql_token_params *p, const dsql_credentials *c,
                char *buf, size_t cap)
{
    dsql_status st = signer ? dsql_signer_token(signer, p, c, buf, cap, NULL, NULL)
                            : dsql_token_generate(p, c, buf, cap, NULL, NULL);
    return st == DSQL_OK;
}

static int run_case(const char *name, dsql_signer *signer, const dsql_credentials *c)
{
    static double samples[TOKENS / BATCH];
    char buf[4096];
    dsql_token_params p = {DSQL_STRUCT_VERSION, "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                           NULL, "admin", 900, 1764000000};
    for (int i = 0; i < WARMUP; i++)
        if (!sign(signer, &p, c, buf, sizeof buf))
            return 0;
    long allocs_before = atomic_load(&allocations);
    for (int b = 0; b < TOKENS / BATCH; b++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++)
            if (!sign(signer, &p, c, buf, sizeof buf))
                return 0;
        samples[b] = (now_ns() - t0) / BATCH;
    }
    long allocs = atomic_load(&allocations) - allocs_before;
    printf("%s: median_ns=%.0f p99_ns=%.0f allocs_per_token=%.2f\n", name,
           percentile(samples, TOKENS / BATCH, 50), percentile(samples, TOKENS / BATCH, 99),
           (double)allocs / TOKENS);
    fflush(stdout);
    return 1;
}

int main(void)
{
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fprintf(stderr, "token-bench: CRYPTO_set_mem_functions failed\n");
        return 1;
    }
    dsql_set_allocator(count_malloc, count_realloc, free);

    /* an STS-sized session token (about 900 bytes, with '/', '+' and '=') */
    char session[901];
    for (int i = 0; i < 900; i++)
        session[i] = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+AbC="[i % 61];
    session[900] = '\0';
    dsql_credentials plain = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              NULL, 0};
    dsql_credentials temp = plain;
    temp.session_token = session;

    dsql_signer *signer = dsql_signer_new(NULL);
    int ok = signer && run_case("oneshot", NULL, &plain) &&
             run_case("oneshot_session", NULL, &temp) && run_case("cached", signer, &plain) &&
             run_case("cached_session", signer, &temp);
    dsql_signer_free(signer);
    if (!ok) {
        fprintf(stderr, "token-bench: signing failed\n");
        return 1;
    }
    return 0;
}
