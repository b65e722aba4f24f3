/* What a token takes from its hostname: the host (checked once), the
 * region the name carries, and the canonical request's tail, which signs
 * the host lowercased. A signer keeps a few of these per stripe, keyed by
 * the hostname's exact bytes: checking and lowercasing a 50-byte name cost
 * about 3% of a token with a 1 KB session token, and a process signs for
 * the same few endpoints again and again. */
#include "internal.h"
#include "hostname.h"

#include <string.h>

static const char EMPTY_SHA256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* The canonical request after the sorted query's last parameter but one:
 * the last parameter, the host header (lowercase, as botocore signs it),
 * the signed-header list and the empty payload's hash. */
static size_t canonical_tail(char *dst, const char *host, size_t n)
{
    static const char headers_pre[] = "&X-Amz-SignedHeaders=host\nhost:";
    static const char headers_post[] = "\n\nhost\n";
    size_t t = sizeof headers_pre - 1;
    memcpy(dst, headers_pre, t);
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        dst[t++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    memcpy(dst + t, headers_post, sizeof headers_post - 1);
    t += sizeof headers_post - 1;
    memcpy(dst + t, EMPTY_SHA256, 64);
    return t + 64;
}

/* Checks hostname and fills th from it; th->host points into hostname. */
static dsql_status token_host_build(dsql__token_host *th, const char *hostname, dsql_error *err)
{
    dsql_status st = dsql__hostname_check(hostname, &th->host, &th->host_len, err);
    if (st != DSQL_OK)
        return st;
    const char *r;
    size_t rlen = 0;
    if (!dsql__region_in_hostname(th->host, th->host_len, &r, &rlen))
        rlen = 0;
    th->region_len = rlen;
    th->region[0] = '\0';
    th->region_valid = 0;
    if (rlen <= DSQL_REGION_MAX) {
        for (size_t i = 0; i < rlen; i++)
            th->region[i] = (r[i] >= 'A' && r[i] <= 'Z') ? (char)(r[i] + 32) : r[i];
        th->region[rlen] = '\0';
        th->region_valid = rlen > 0 && dsql__region_bad_char(th->region, rlen) == 0;
    }
    th->tail_len = canonical_tail(th->tail, th->host, th->host_len);
    return DSQL_OK;
}

/* The slot holds exactly these n bytes. The first 8 are compared inline
 * first: the endpoints a process signs for differ in their cluster ids, at
 * the start, and a memcmp call per slot tried showed in every token. */
static int slot_holds(const dsql__host_slot *s, const char *hostname, size_t n)
{
    if (s->given_len != n)
        return 0;
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s->given, 8);
        memcpy(&b, hostname, 8);
        if (a != b)
            return 0;
    }
    return memcmp(s->given, hostname, n) == 0;
}

dsql_status dsql__token_host_get(dsql__host_memo *memo, const char *hostname,
                                 dsql__token_host *scratch, const dsql__token_host **out,
                                 dsql_error *err)
{
    *out = NULL;
    if (!memo || !hostname) {
        dsql_status st = token_host_build(scratch, hostname, err);
        if (st == DSQL_OK)
            *out = scratch;
        return st;
    }
    size_t n = strlen(hostname);
    for (unsigned i = 0; i < DSQL__HOST_MEMO_SLOTS; i++) {
        const dsql__host_slot *s = &memo->slot[i];
        if (slot_holds(s, hostname, n)) {
            *out = &s->th;
            return DSQL_OK;
        }
    }
    if (n >= sizeof memo->slot[0].given) { /* too long to be valid: say why */
        dsql_status st = token_host_build(scratch, hostname, err);
        if (st == DSQL_OK)
            *out = scratch;
        return st;
    }
    /* a new host: checked from the slot's own copy, so th->host points
     * there and stays valid as long as the slot */
    dsql__host_slot *s = &memo->slot[memo->next];
    s->given_len = 0;
    memcpy(s->given, hostname, n + 1);
    dsql_status st = token_host_build(&s->th, s->given, err);
    if (st != DSQL_OK)
        return st;
    s->given_len = n;
    memo->next = (memo->next + 1) % DSQL__HOST_MEMO_SLOTS;
    *out = &s->th;
    return DSQL_OK;
}
