/* Timing helpers and realistic inputs shared by the benchmarks. */
#ifndef DSQL_BENCHUTIL_H
#define DSQL_BENCHUTIL_H

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED /* the low-level SHA256 the signer uses too */
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts samples in place; the value at the given percentile (0..100). */
static inline double percentile(double *samples, size_t n, unsigned pct)
{
    qsort(samples, n, sizeof samples[0], cmp_double);
    return samples[n * pct / 100 < n ? n * pct / 100 : n - 1];
}

/* Hosts and users the benchmarks rotate through, so that no two tokens in
 * a row are alike (both actions, several clusters of one region). */
static const char *const BENCH_HOSTS[] = {
    "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
    "a1b2c3d4e5f6g7h8i9j0k1l2m3.dsql.us-east-1.on.aws",
    "zyxwvutsrqponmlkjihgfedcba.dsql.us-east-1.on.aws",
    "q1w2e3r4t5y6u7i8o9p0a1s2d3.dsql.us-east-1.on.aws"};
static const char *const BENCH_USERS[] = {"admin", "app_reader", "admin", "app_writer"};
#define BENCH_ROTATION 4

/* A session token of exactly len bytes that looks like STS's: base64
 * (A-Z a-z 0-9 '+' '/') behind STS's usual "IQoJb3JpZ2luX2Vj" start,
 * '=' padded, so about one byte in 30 needs percent-encoding as in real
 * tokens. Deterministic. buf holds len + 1 bytes. */
static inline void bench_session_token(char *buf, size_t len)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char START[] = "IQoJb3JpZ2luX2Vj";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = i < sizeof START - 1 ? START[i] : B64[x >> 58];
    }
    if (len >= 2)
        buf[len - 1] = buf[len - 2] = '=';
    buf[len] = '\0';
}

/* Length, decoded, of the session token inside a signed token (what was
 * really signed), or 0 when the token carries none. */
static inline size_t bench_signed_session_len(const char *token)
{
    const char *p = strstr(token, "X-Amz-Security-Token=");
    if (!p)
        return 0;
    size_t n = 0;
    for (p += strlen("X-Amz-Security-Token="); *p && *p != '&'; n++)
        p += *p == '%' ? 3 : 1;
    return n;
}

/* Bytes of the canonical request hashed for this token: the same query
 * (other order), "GET\n/\n" before it, and the host header, signed-header
 * list and empty-payload hash after it. */
static inline size_t bench_canonical_len(const char *token)
{
    const char *q = strstr(token, "/?"), *sig = strstr(token, "&X-Amz-Signature=");
    if (!q || !sig)
        return 0;
    size_t host = (size_t)(q - token), query = (size_t)(sig - (q + 2));
    return 6 + query + 1 + 5 + host + 1 + 1 + 4 + 1 + 64;
}

/* Exits unless the token signed the session token length intended. */
static inline void bench_require_session_len(const char *what, const char *token, size_t want)
{
    size_t got = bench_signed_session_len(token);
    if (got != want) {
        fprintf(stderr, "%s: signed a %zu-byte session token; intended %zu: refusing to run\n",
                what, got, want);
        exit(1);
    }
}

/* The SHA-256 floor: ns per hash of n bytes in one call (SHA256_Init, one
 * SHA256_Update, SHA256_Final), from one batch of per hashes. The
 * benchmarks interleave these batches with their own, so both see the
 * same machine load; the floor is the median of them. */
static inline double bench_sha256_batch_ns(size_t n, int per)
{
    static unsigned char data[1 << 16];
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (n > sizeof data)
        n = sizeof data;
    double t0 = now_ns();
    for (int i = 0; i < per; i++) {
        data[0] = (unsigned char)i;
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, data, n);
        SHA256_Final(md, &c);
    }
    return (now_ns() - t0) / per;
}

#endif
