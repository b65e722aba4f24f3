/* Token generation cost: one-shot (key derived every time) and the caching
 * signer, with long-term keys and with STS-sized session tokens (900 and
 * 1,200 bytes, base64 with '+', '/' and '='). Signing time is the current
 * time; hosts and users rotate (both actions), so no two tokens in a row
 * are alike. The *_new_second cases sign each token one second after the
 * previous one, so nothing the signer keeps for the current second helps.
 * cached_session1200_16hosts rotates 16 endpoints, more than the 4
 * hostnames a signer stripe keeps checked, so every token checks and
 * lowercases its host again. Prints one line per case:
 *   <case>: session_token_len=<n> token_len=<n> canonical_len=<n>
 *           median_ns=<n> p99_ns=<n> allocs_per_token=<n>
 *           [sha256_floor_ns=<n> ratio=<token/floor> rounds=<r1,...>]
 * session_token_len is read back from a signed token (what was really
 * signed); the benchmark refuses to run when it is not the intended one.
 * The SHA-256 floor is the time to hash canonical_len bytes in one call,
 * measured in the same run: a batch of hashes next to every batch of
 * tokens (alternately before and after it), so a pair sees the same load;
 * ratio is the median over BENCH_ROUNDS rounds of each round's median
 * pair ratio, and rounds lists them. Times are per token, from batches of
 * BATCH tokens (the clock's own cost stays out of the numbers).
 * Allocations are counted through both the library's allocator seam and
 * OpenSSL's. An argument names the one case to run. */
#include "benchutil.h" /* first: it selects the OpenSSL API */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "dsqlauth.h"

#define TOKENS 300000
#define WARMUP 20000
#define BATCH 100

static atomic_long allocations;

static void *count_malloc(size_t n) { atomic_fetch_add(&allocations, 1); return malloc(n); }
static void *count_realloc(void *p, size_t n) { atomic_fetch_add(&allocations, 1); return realloc(p, n); }
static void *ossl_malloc(size_t n, const char *f, int l) { (void)f, (void)l; return count_malloc(n); }
static void *ossl_realloc(void *p, size_t n, const char *f, int l) { (void)f, (void)l; return count_realloc(p, n); }
static void ossl_free(void *p, const char *f, int l) { (void)f, (void)l; free(p); }

/* One case: the signer (NULL: one-shot) and credentials; new_second:
 * each token signed one second after the previous one, so nothing kept
 * for the current second (its date text, the hash states of the first
 * blocks) is reused: the cost of tokens that share nothing but the key. */
typedef struct token_case {
    dsql_signer *signer;
    const dsql_credentials *creds;
    int new_second;
    int64_t start;
    unsigned hosts; /* 0: BENCH_HOSTS; else that many of many_hosts */
} token_case;

#define MANY_HOSTS 16
static char many_hosts[MANY_HOSTS][64];

static int sign(void *ctx, unsigned i, char *buf, size_t cap)
{
    token_case *tc = ctx;
    const char *host = tc->hosts ? many_hosts[i % tc->hosts] : BENCH_HOSTS[i % BENCH_ROTATION];
    dsql_token_request p = {DSQL_STRUCT_VERSION, host,
                            BENCH_USERS[(i / BENCH_ROTATION) % BENCH_ROTATION], NULL, 900,
                            tc->new_second ? tc->start + i : 0};
    dsql_status st = tc->signer ? dsql__signer_token(tc->signer, &p, tc->creds, buf, cap, NULL, NULL)
                                : dsql_token_generate(&p, tc->creds, buf, cap, NULL, NULL);
    return st == DSQL_OK;
}

static const char *only; /* argv[1]: run just this case (for profiling) */

static int run_case_as(const char *name, dsql_signer *signer, const dsql_credentials *c,
                       size_t session_len, int new_second, unsigned hosts)
{
    if (only && strcmp(only, name) != 0)
        return 1;
    token_case tc = {signer, c, new_second, (int64_t)time(NULL), hosts};
    char buf[8192];
    unsigned k = 0;
    for (int i = 0; i < WARMUP; i++)
        if (!sign(&tc, k++, buf, sizeof buf))
            return 0;
    bench_require_session_len(name, buf, session_len);
    size_t token_len = strlen(buf), canonical_len = bench_canonical_len(buf);
    long allocs_before = atomic_load(&allocations);
    bench_stats s;
    if (!bench_measure(sign, &tc, &k, buf, sizeof buf, session_len ? canonical_len : 0, TOKENS,
                       BATCH, &s))
        return 0;
    long allocs = atomic_load(&allocations) - allocs_before;
    printf("%s: session_token_len=%zu token_len=%zu canonical_len=%zu median_ns=%.0f "
           "p99_ns=%.0f allocs_per_token=%.2f",
           name, bench_signed_session_len(buf), token_len, canonical_len, s.median_ns,
           s.p99_ns, (double)allocs / TOKENS);
    bench_print_floor(&s);
    printf("\n");
    fflush(stdout);
    return 1;
}

static int run_case(const char *name, dsql_signer *signer, const dsql_credentials *c,
                    size_t session_len)
{
    return run_case_as(name, signer, c, session_len, 0, 0);
}

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : NULL;
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fprintf(stderr, "token-bench: CRYPTO_set_mem_functions failed\n");
        return 1;
    }
    dsql_set_allocator(count_malloc, count_realloc, free);

    for (unsigned h = 0; h < MANY_HOSTS; h++) /* 26-character cluster ids, like BENCH_HOSTS */
        snprintf(many_hosts[h], sizeof many_hosts[h], "cluster%019u.dsql.us-east-1.on.aws", h);
    static char s900[901], s1200[1201];
    bench_session_token(s900, 900);
    bench_session_token(s1200, 1200);
    dsql_credentials plain = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              NULL, 0};
    dsql_credentials t900 = {"ASIAIOSFODNN7EXAMPLE", plain.secret_access_key, s900, 0};
    dsql_credentials t1200 = t900;
    t1200.session_token = s1200;

    dsql_signer *signer = dsql__signer_new(NULL);
    int ok = signer && run_case("oneshot", NULL, &plain, 0) &&
             run_case("oneshot_session900", NULL, &t900, 900) &&
             run_case("oneshot_session1200", NULL, &t1200, 1200) &&
             run_case("cached", signer, &plain, 0) &&
             run_case("cached_session900", signer, &t900, 900) &&
             run_case("cached_session1200", signer, &t1200, 1200) &&
             run_case_as("cached_session1200_16hosts", signer, &t1200, 1200, 0, MANY_HOSTS) &&
             run_case_as("cached_new_second", signer, &plain, 0, 1, 0) &&
             run_case_as("cached_session1200_new_second", signer, &t1200, 1200, 1, 0);
    dsql__signer_free(signer);
    if (!ok) {
        fprintf(stderr, "token-bench: signing failed\n");
        return 1;
    }
    return 0;
}
