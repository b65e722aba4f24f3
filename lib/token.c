/* The DSQL token: a SigV4 presigned GET / for service "dsql", written
 * straight into the caller's buffer while the canonical request is hashed
 * from the same bytes. No allocation, no I/O. */
#include "internal.h"

#include <string.h>
#include <openssl/crypto.h>

#define MAX_ACCESS_KEY_ID ((unsigned)DSQL__MAX_ACCESS_KEY_ID)
#define MAX_SECRET 1024u
#define MAX_SESSION_TOKEN (1024u * 1024u)
#define MAX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* Appends to buf when it is non-NULL; always counts. */
typedef struct writer {
    char *buf;
    size_t pos;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->buf)
        memcpy(w->buf + w->pos, s, n);
    w->pos += n;
}

static void put_str(writer *w, const char *s) { put(w, s, strlen(s)); }

static void put_encoded_n(writer *w, const char *s, size_t n)
{
    if (w->buf)
        w->pos += dsql__uri_encode(w->buf + w->pos, s, n, 0);
    else
        w->pos += dsql__uri_encoded_len(s, n, 0);
}

static void put_encoded(writer *w, const char *s) { put_encoded_n(w, s, strlen(s)); }

/* Digits straight into place, last first (a copy from a byte-by-byte
 * scratch buffer stalled on store forwarding in every token). */
static void put_uint(writer *w, uint32_t v)
{
    size_t n = 1;
    for (uint32_t rest = v / 10; rest; rest /= 10)
        n++;
    if (w->buf)
        for (size_t i = n; i-- > 0; v /= 10)
            w->buf[w->pos + i] = (char)('0' + v % 10);
    w->pos += n;
}

static int has_session_token(const dsql_credentials *c)
{
    return c->session_token && c->session_token[0];
}

static int region_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

size_t dsql__region_bad_char(const char *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!region_char(r[i]))
            return i + 1;
    return 0;
}

static dsql_status check_region(const char *r, size_t *len, dsql_error *err)
{
    size_t n = *len = strlen(r);
    if (n > DSQL_REGION_MAX)
        return dsql__error(err, DSQL_EINVAL, "region is longer than %u characters",
                           DSQL_REGION_MAX);
    size_t bad = dsql__region_bad_char(r, n);
    if (bad)
        return dsql__error(err, DSQL_EINVAL,
                           "region contains an invalid character (byte 0x%02x) at "
                           "position %zu; expected lowercase letters, digits and '-'",
                           (unsigned char)r[bad - 1], bad);
    return DSQL_OK;
}

/* Also records the lengths of the key id, secret and session token (the
 * last can be long): each is measured once per token. */
static dsql_status check_credentials(const dsql_credentials *c, dsql__token_input *in,
                                     const dsql__session_known *known, dsql_error *err)
{
    if (!c || !c->access_key_id || !c->access_key_id[0])
        return dsql__error(err, DSQL_ECREDENTIALS, "credentials have no access key id");
    if (!c->secret_access_key || !c->secret_access_key[0])
        return dsql__error(err, DSQL_ECREDENTIALS, "credentials have no secret access key");
    if ((in->access_key_id_len = strlen(c->access_key_id)) > MAX_ACCESS_KEY_ID)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "access key id is longer than %u characters", MAX_ACCESS_KEY_ID);
    if ((in->secret_len = strlen(c->secret_access_key)) > MAX_SECRET)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "secret access key is longer than %u characters", MAX_SECRET);
    in->session_enc = NULL;
    in->session_enc_len = 0;
    if (!has_session_token(c)) {
        in->session_token_len = 0;
    } else if (known && known->enc) { /* its owner measured it: no pass over 1 KB */
        in->session_token_len = known->len;
        in->session_enc = known->enc;
        in->session_enc_len = known->enc_len;
    } else {
        in->session_token_len = strlen(c->session_token);
    }
    if (in->session_token_len > MAX_SESSION_TOKEN)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "session token is longer than %u bytes", MAX_SESSION_TOKEN);
    return DSQL_OK;
}

static dsql_status token_prepare(const dsql_token_request *p, const dsql_credentials *creds,
                                 dsql__token_input *in, dsql__host_memo *hosts,
                                 dsql__token_host *host_buf, const dsql__session_known *known,
                                 dsql_error *err)
{
    if (!p)
        return dsql__error(err, DSQL_EINVAL, "token parameters are NULL");
    if (p->version != DSQL_STRUCT_VERSION)
        return dsql__error(err, DSQL_EINVAL, "token parameters have version %d; expected %d",
                           p->version, DSQL_STRUCT_VERSION);
    dsql_status st = dsql__token_host_get(hosts, p->hostname, host_buf, &in->th, err);
    if (st != DSQL_OK)
        return st;
    in->host = in->th->host;
    in->host_len = in->th->host_len;

    if (p->region && p->region[0]) {
        in->region = p->region;
    } else {
        if (!in->th->region_len)
            return dsql__error(err, DSQL_EINVAL,
                               "region is not set and hostname '%.*s' does not name one "
                               "(<id>.dsql.<region>.on.aws)",
                               (int)in->host_len, in->host);
        if (in->th->region_len > DSQL_REGION_MAX)
            return dsql__error(err, DSQL_EINVAL, "region in hostname is longer than %u "
                               "characters", DSQL_REGION_MAX);
        in->region = in->th->region;
    }
    if (in->region == in->th->region && in->th->region_valid) /* checked with the host */
        in->region_len = in->th->region_len;
    else if ((st = check_region(in->region, &in->region_len, err)) != DSQL_OK)
        return st;

    const char *user = p->user ? p->user : "admin";
    if (!user[0])
        return dsql__error(err, DSQL_EINVAL, "user is empty");
    in->action = strcmp(user, "admin") == 0 ? "DbConnectAdmin" : "DbConnect";

    uint32_t expires = p->expires_in ? p->expires_in : DSQL_TOKEN_DEFAULT_EXPIRES;
    if (expires > DSQL_TOKEN_MAX_EXPIRES)
        return dsql__error(err, DSQL_EINVAL, "expires_in %u is outside 1..%u", expires,
                           DSQL_TOKEN_MAX_EXPIRES);
    in->expires_asked = expires;
    in->now = p->now ? p->now : dsql__now();
    if (in->now < 0 || in->now > MAX_TIME)
        return dsql__error(err, DSQL_EINVAL, "signing time %lld is outside years 1970..9999",
                           (long long)in->now);

    if ((st = check_credentials(creds, in, known, err)) != DSQL_OK)
        return st;
    if (creds->expiration) {
        if (creds->expiration <= in->now)
            return dsql__error(err, DSQL_EEXPIRED,
                               "credentials for access key %.4s... expired %lld s ago",
                               creds->access_key_id,
                               (long long)(in->now - creds->expiration));
        if (creds->expiration - in->now < (int64_t)expires)
            expires = (uint32_t)(creds->expiration - in->now);
    }
    in->expires = expires;
    dsql__utc_format(in->now, in->date, in->datetime);
    return DSQL_OK;
}

/* Everything of the token before the signature; records the spans the
 * canonical query reuses. */
typedef struct spans {
    size_t query_start, query_mid, token_start, token_end;
} spans;

/* "Action=...&X-Amz-Date=": the part of the query fixed for a given
 * action, key id, date and region. */
static void write_prefix(writer *w, const dsql__token_input *in, const dsql_credentials *c)
{
    put_str(w, "Action=");
    put_str(w, in->action);
    put_str(w, "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    put_encoded(w, c->access_key_id);
    put(w, "%2F", 3);
    put(w, in->date, 8);
    put(w, "%2F", 3);
    put_encoded(w, in->region);
    put_str(w, "%2Fdsql%2Faws4_request&X-Amz-Date=");
}

/* Everything of the token before the signature; records the spans the
 * canonical query reuses. pre == NULL only counts. */
static void write_unsigned(writer *w, const dsql__token_input *in, const dsql_credentials *c,
                           const dsql__token_prefix *pre, spans *sp)
{
    put(w, in->host, in->host_len);
    put(w, "/?", 2);
    sp->query_start = w->pos;
    if (pre)
        put(w, pre->text, pre->len);
    else
        write_prefix(w, in, c);
    put(w, in->datetime, 16);
    put_str(w, "&X-Amz-Expires=");
    put_uint(w, in->expires);
    sp->query_mid = w->pos;
    put_str(w, "&X-Amz-SignedHeaders=host");
    sp->token_start = sp->token_end = w->pos;
    if (in->session_token_len) {
        put_str(w, "&X-Amz-Security-Token=");
        if (in->session_enc)
            put(w, in->session_enc, in->session_enc_len);
        else
            put_encoded_n(w, c->session_token, in->session_token_len);
        sp->token_end = w->pos;
    }
    put_str(w, "&X-Amz-Signature=");
}

void dsql__token_prefix_init(dsql__token_prefix *pre, const dsql__token_input *in,
                             const dsql_credentials *c)
{
    writer w = {pre->text, 0};
    write_prefix(&w, in, c);
    pre->len = w.pos;
    pre->action = in->action;
    pre->sts_head_valid = 0;
    pre->block_head_len = 0;
    memcpy(pre->access_key_id, c->access_key_id, in->access_key_id_len + 1); /* checked */
    pre->access_key_id_len = in->access_key_id_len;
    SHA256_Init(&pre->canonical);
    SHA256_Update(&pre->canonical, "GET\n/\n", 6);
    SHA256_Update(&pre->canonical, pre->text, pre->len);
}

int dsql__token_prefix_matches(const dsql__token_prefix *pre, const dsql__token_input *in,
                               const dsql_credentials *c)
{
    /* date and region are part of the signer's own cache key */
    return pre->action == in->action && pre->access_key_id_len == in->access_key_id_len &&
           memcmp(pre->access_key_id, c->access_key_id, in->access_key_id_len) == 0;
}

static size_t token_length(const dsql__token_input *in, const dsql_credentials *creds)
{
    writer w = {NULL, 0};
    spans sp;
    write_unsigned(&w, in, creds, NULL, &sp);
    return w.pos + 64;
}

/* HMAC of the string to sign, starting from the kept state after its
 * first block when that block is the one kept (same second; the key and
 * region are the prefix's own). */
static void sign_string(dsql__token_prefix *pre, const dsql__token_input *in,
                        const dsql__hmac_key *key, const char *sts, size_t n,
                        unsigned char digest[SHA256_DIGEST_LENGTH])
{
    if (!pre->sts_head_valid || memcmp(pre->sts_datetime, in->datetime, 16) != 0) {
        dsql__hmac_start(key, &pre->sts_head);
        SHA256_Update(&pre->sts_head, sts, SHA256_CBLOCK); /* n is always above 64 */
        memcpy(pre->sts_datetime, in->datetime, 16);
        pre->sts_head_valid = 1;
    }
    SHA256_CTX ctx = pre->sts_head;
    SHA256_Update(&ctx, sts + SHA256_CBLOCK, n - SHA256_CBLOCK);
    dsql__hmac_finish(key, &ctx, digest);
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Starts the canonical-request hash after the prefix: from the kept state
 * one block further when the bytes completing that block are the kept
 * ones (same second and lifetime), else from the prefix's state, keeping
 * the new one. Returns how many bytes of parts it has hashed. */
/* The kept block head is the first need bytes of parts, compared piece
 * by piece where they lie (no copy on the hit that nearly every token is);
 * returns how many bytes that is, 0 when it is not the kept one. */
static size_t kept_head_matches(const dsql__token_prefix *pre, const span parts[3],
                                size_t need)
{
    size_t at = 0;
    for (size_t i = 0; i < 3 && at < need; i++) {
        size_t take = parts[i].n < need - at ? parts[i].n : need - at;
        if (at + take > pre->block_head_len ||
            memcmp(pre->block_head + at, parts[i].p, take) != 0)
            return 0;
        at += take;
    }
    return at == pre->block_head_len ? at : 0;
}

static size_t canonical_block_start(dsql__token_prefix *pre, const span parts[3],
                                    SHA256_CTX *ctx)
{
    size_t need = SHA256_CBLOCK - (6 + pre->len) % SHA256_CBLOCK; /* 6: "GET\n/\n" */
    size_t got = kept_head_matches(pre, parts, need);
    if (!got) {
        char head[SHA256_CBLOCK];
        for (size_t i = 0; i < 3 && got < need; i++) {
            size_t take = parts[i].n < need - got ? parts[i].n : need - got;
            memcpy(head + got, parts[i].p, take);
            got += take;
        }
        pre->block_state = pre->canonical;
        SHA256_Update(&pre->block_state, head, got);
        memcpy(pre->block_head, head, got);
        pre->block_head_len = got;
    }
    *ctx = pre->block_state;
    return got;
}

size_t dsql__token_write(const dsql__token_input *in, const dsql_credentials *creds,
                         dsql__token_prefix *pre, const dsql__hmac_key *signing_key,
                         char *buf)
{
    writer w = {buf, 0};
    spans sp;
    write_unsigned(&w, in, creds, pre, &sp);

    /* Canonical request; the query is the sorted parameter list, which is
     * the token's own order except that Security-Token sorts before
     * SignedHeaders; the rest (host header, signed headers, payload hash)
     * is the host's kept tail. */
    unsigned char digest[SHA256_DIGEST_LENGTH];
    size_t rest = sp.query_start + pre->len;
    span parts[3] = {{buf + rest, sp.query_mid - rest},
                     {buf + sp.token_start, sp.token_end - sp.token_start},
                     {in->th->tail, in->th->tail_len}};
    SHA256_CTX ctx;
    size_t skip = canonical_block_start(pre, parts, &ctx);
    for (size_t i = 0; i < 3; i++) {
        size_t from = skip < parts[i].n ? skip : parts[i].n;
        skip -= from;
        if (parts[i].n > from)
            SHA256_Update(&ctx, parts[i].p + from, parts[i].n - from);
    }
    SHA256_Final(digest, &ctx);

    /* string to sign */
    char sts[17 + 16 + 1 + 8 + 1 + DSQL_REGION_MAX + 19 + 64];
    size_t region_len = in->region_len;
    size_t n = 0;
    memcpy(sts, "AWS4-HMAC-SHA256\n", 17);
    n += 17;
    memcpy(sts + n, in->datetime, 16);
    n += 16;
    sts[n++] = '\n';
    memcpy(sts + n, in->date, 8);
    n += 8;
    sts[n++] = '/';
    memcpy(sts + n, in->region, region_len);
    n += region_len;
    memcpy(sts + n, "/dsql/aws4_request\n", 19);
    n += 19;
    dsql__hex(sts + n, digest, sizeof digest);
    n += 64;
    sign_string(pre, in, signing_key, sts, n, digest);
    dsql__hex(buf + w.pos, digest, sizeof digest);
    buf[w.pos + 64] = '\0';
    return w.pos + 64;
}

dsql_status dsql__token_begin(const dsql_token_request *params, const dsql_credentials *creds,
                              dsql__token_input *in, dsql__host_memo *hosts,
                              dsql__token_host *host_buf, const dsql__session_known *known,
                              char *buf, size_t cap, size_t *len, dsql_error *err)
{
    if (buf && cap)
        buf[0] = '\0';
    dsql_status st = token_prepare(params, creds, in, hosts, host_buf, known, err);
    if (st != DSQL_OK)
        return st;
    /* Most callers pass a roomy buffer: an upper bound (every byte of the
     * encoded values at its worst, 3 bytes) spares the exact counting pass. */
    size_t usable = buf ? cap : 0;
    size_t bound = in->host_len + 256 + 3 * (in->access_key_id_len + in->region_len);
    bound += 32 + 3 * in->session_token_len;
    if (usable > bound)
        return DSQL_OK;
    size_t need = token_length(in, creds);
    if (usable >= need + 1)
        return DSQL_OK;
    if (len)
        *len = need;
    return dsql__error(err, DSQL_EBUFSIZE, "token needs a buffer of %zu bytes; got %zu",
                       need + 1, usable);
}

size_t dsql__token_sign_uncached(const dsql__token_input *in, const dsql_credentials *creds,
                                 char *buf)
{
    dsql__hmac_key key;
    dsql__token_prefix pre;
    dsql__sigv4_derive_key(&key, creds->secret_access_key, in->date, in->region, "dsql");
    dsql__token_prefix_init(&pre, in, creds);
    size_t written = dsql__token_write(in, creds, &pre, &key, buf);
    dsql__hmac_key_wipe(&key);
    OPENSSL_cleanse(&pre.sts_head, sizeof pre.sts_head); /* holds the key's inner pad */
    return written;
}

void dsql__token_end(const dsql__token_input *in)
{
    if (in->expires < in->expires_asked)
        dsql__log(DSQL_LOG_INFO,
                  "token lifetime lowered from %u s to %u s: the credentials expire sooner",
                  in->expires_asked, in->expires);
}

dsql_status dsql_token_generate(const dsql_token_request *params, const dsql_credentials *creds,
                                char *buf, size_t cap, size_t *len, dsql_error *err)
{
    dsql__token_input in;
    dsql__token_host host;
    dsql_status st = dsql__token_begin(params, creds, &in, NULL, &host, NULL, buf, cap, len, err);
    if (st != DSQL_OK)
        return st;
    size_t written = dsql__token_sign_uncached(&in, creds, buf);
    if (len)
        *len = written;
    dsql__token_end(&in);
    return DSQL_OK;
}
