/* dsql-local: verifies a DSQL IAM token the way the service does: parse
 * the presigned query, check every field, then sign the same request with
 * the core's signer and compare signatures in constant time. Reasons never
 * quote the token, its signature or a secret. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "dsqlauth.h"
#include "local.h"

#define TOKEN_MAX 8192

enum { P_ACTION, P_ALG, P_CRED, P_DATE, P_EXPIRES, P_SECTOK, P_HEADERS, P_SIG, P_N };
static const char *const param_names[P_N] = {
    "Action", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
    "X-Amz-Expires", "X-Amz-Security-Token", "X-Amz-SignedHeaders",
    "X-Amz-Signature"};

typedef struct parsed {
    char buf[TOKEN_MAX + 1]; /* decoded copy; values point into it */
    const char *host;
    const char *v[P_N];
} parsed;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* In-place percent-decoding; 0 on success. */
static int pct_decode(char *s)
{
    char *w = s;
    for (; *s; s++) {
        if (*s == '%') {
            int h = hexval((unsigned char)s[1]), l = h < 0 ? -1 : hexval((unsigned char)s[2]);
            if (h < 0 || l < 0)
                return -1;
            *w++ = (char)(h * 16 + l);
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return 0;
}

static int fail(char *reason, size_t cap, const char *fmt, const char *arg)
{
    snprintf(reason, cap, fmt, arg ? arg : "");
    return -1;
}

static int parse(const char *token, size_t len, parsed *p, char *reason, size_t cap)
{
    char *q, *save = NULL, *pair;
    size_t i;

    memset(p->v, 0, sizeof p->v);
    if (len == 0)
        return fail(reason, cap, "no token was provided as the password%s", NULL);
    if (len > TOKEN_MAX || memchr(token, '\0', len))
        return fail(reason, cap, "the password is not an IAM authentication token%s", NULL);
    memcpy(p->buf, token, len);
    p->buf[len] = '\0';
    q = strstr(p->buf, "/?");
    if (!q || q == p->buf)
        return fail(reason, cap, "the password is not an IAM authentication token%s", NULL);
    *q = '\0';
    p->host = p->buf;
    if (strncmp(p->host, "https://", 8) == 0)
        p->host += 8;
    for (pair = strtok_r(q + 2, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq)
            return fail(reason, cap, "malformed token query parameter%s", NULL);
        *eq = '\0';
        for (i = 0; i < P_N && strcmp(pair, param_names[i]) != 0; i++)
            ;
        if (i == P_N)
            return fail(reason, cap, "unexpected token parameter %.64s", pair);
        if (p->v[i])
            return fail(reason, cap, "duplicate token parameter %s", param_names[i]);
        if (pct_decode(eq + 1) != 0)
            return fail(reason, cap, "malformed encoding in token parameter %s",
                        param_names[i]);
        p->v[i] = eq + 1;
    }
    for (i = 0; i < P_N; i++)
        if (!p->v[i] && i != P_SECTOK)
            return fail(reason, cap, "token is missing the %s parameter", param_names[i]);
    return 0;
}

/* "YYYYMMDDTHHMMSSZ" -> Unix seconds; -1 when malformed. */
static int64_t parse_amz_date(const char *s)
{
    int f[6], i, lens[6] = {4, 2, 2, 2, 2, 2}, pos = 0;
    int64_t y, m, days;

    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (i = 0; i < 6; i++) {
        int k;
        if (i == 3)
            pos = 9;
        f[i] = 0;
        for (k = 0; k < lens[i]; k++, pos++) {
            if (!isdigit((unsigned char)s[pos]))
                return -1;
            f[i] = f[i] * 10 + (s[pos] - '0');
        }
    }
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
        return -1;
    /* days from civil (proleptic Gregorian) */
    y = f[0] - (f[1] <= 2);
    m = f[1];
    {
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + f[2] - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        days = era * 146097 + doe - 719468;
    }
    return days * 86400 + f[3] * 3600 + f[4] * 60 + f[5];
}

/* Splits "AKID/YYYYMMDD/region/service/aws4_request" in place. */
static int split_scope(char *cred, char *parts[5])
{
    int n = 0;
    char *s = cred, *slash;

    while (n < 4 && (slash = strchr(s, '/')) != NULL) {
        *slash = '\0';
        parts[n++] = s;
        s = slash + 1;
    }
    parts[n++] = s;
    return n == 5 && !strchr(s, '/') ? 0 : -1;
}

static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static const char *find_signature(const char *token)
{
    const char *s = strstr(token, "X-Amz-Signature=");
    return s ? s + 16 : NULL;
}

int dl_verify_token(const dl_verify_in *in, char *reason, size_t cap)
{
    static parsed p; /* large; the gateway is single-threaded */
    char *scope[5], cred[512], *end;
    const char *want_action, *expected_sig;
    char mine[TOKEN_MAX + 1];
    size_t mine_len = 0, siglen;
    int64_t date;
    unsigned long expires;
    dl_key key;
    dsql_token_request tp;
    dsql_credentials creds;
    dsql_error err;
    int rc = -1, found;

    if (parse(in->token, in->token_len, &p, reason, cap) != 0)
        goto out;
    if (strcmp(p.v[P_ALG], "AWS4-HMAC-SHA256") != 0) {
        fail(reason, cap, "unsupported signing algorithm (X-Amz-Algorithm must be AWS4-HMAC-SHA256)%s", NULL);
        goto out;
    }
    if (strlen(p.v[P_CRED]) >= sizeof cred) {
        fail(reason, cap, "malformed X-Amz-Credential%s", NULL);
        goto out;
    }
    strcpy(cred, p.v[P_CRED]);
    if (split_scope(cred, scope) != 0 || !scope[0][0] || strlen(scope[1]) != 8 ||
        strcmp(scope[4], "aws4_request") != 0) {
        fail(reason, cap, "malformed X-Amz-Credential: expected <key>/<YYYYMMDD>/<region>/dsql/aws4_request%s", NULL);
        goto out;
    }
    if (strcmp(scope[3], "dsql") != 0) {
        fail(reason, cap, "Credential should be scoped to correct service: 'dsql'%s", NULL);
        goto out;
    }
    date = parse_amz_date(p.v[P_DATE]);
    if (date < 0) {
        fail(reason, cap, "malformed X-Amz-Date: expected YYYYMMDDTHHMMSSZ%s", NULL);
        goto out;
    }
    if (strncmp(p.v[P_DATE], scope[1], 8) != 0) {
        fail(reason, cap, "the X-Amz-Credential date does not match X-Amz-Date%s", NULL);
        goto out;
    }
    if (in->region && strcmp(scope[2], in->region) != 0) {
        snprintf(reason, cap, "Credential should be scoped to a valid region: token is for '%.64s', this cluster is in '%.64s'",
                 scope[2], in->region);
        goto out;
    }
    if (strcmp(p.v[P_HEADERS], "host") != 0) {
        fail(reason, cap, "X-Amz-SignedHeaders must be exactly 'host'%s", NULL);
        goto out;
    }
    expires = strtoul(p.v[P_EXPIRES], &end, 10);
    if (!isdigit((unsigned char)p.v[P_EXPIRES][0]) || *end || expires < 1 ||
        expires > DSQL_TOKEN_MAX_EXPIRES) {
        fail(reason, cap, "X-Amz-Expires must be between 1 and 604800 seconds (one week)%s", NULL);
        goto out;
    }
    if (!in->sni || strcasecmp(p.host, in->sni) != 0) {
        fail(reason, cap, "the token was signed for a different host than %.253s", in->sni ? in->sni : "this cluster");
        goto out;
    }
    want_action = strcmp(in->user, "admin") == 0 ? "DbConnectAdmin" : "DbConnect";
    if (strcmp(p.v[P_ACTION], want_action) != 0) {
        if (strcmp(p.v[P_ACTION], "DbConnectAdmin") == 0)
            fail(reason, cap, "Action DbConnectAdmin is only allowed for the admin role; use DbConnect%s", NULL);
        else if (strcmp(p.v[P_ACTION], "DbConnect") == 0)
            fail(reason, cap, "the admin role requires Action DbConnectAdmin%s", NULL);
        else
            fail(reason, cap, "unknown Action: expected DbConnect or DbConnectAdmin%s", NULL);
        goto out;
    }
    if (date > in->now + in->clock_skew) {
        fail(reason, cap, "Token is not yet valid: X-Amz-Date %s is in the future", p.v[P_DATE]);
        goto out;
    }
    if (in->now > date + (int64_t)expires) {
        fail(reason, cap, "Token has expired%s", NULL);
        goto out;
    }
    found = dl_keys_lookup(in->keys_file, scope[0], &key);
    if (found < 0 && (errno == EMFILE || errno == ENFILE) && in->make_room &&
        in->make_room(in->room_arg))
        found = dl_keys_lookup(in->keys_file, scope[0], &key);
    if (found < 0) {
        fail(reason, cap, "the key table cannot be read: %s", strerror(errno));
        goto out;
    }
    if (found == 0) {
        fail(reason, cap, "The AWS Access Key ID you provided does not exist in our records%s", NULL);
        goto out;
    }
    if (key.session[0] && !p.v[P_SECTOK]) {
        fail(reason, cap, "the token has no X-Amz-Security-Token, but these credentials are temporary and need one%s", NULL);
        goto out;
    }
    if (p.v[P_SECTOK] && !same_secret(p.v[P_SECTOK], key.session)) {
        fail(reason, cap, "The security token included in the request is invalid%s", NULL);
        goto out;
    }
    memset(&tp, 0, sizeof tp);
    tp.version = DSQL_STRUCT_VERSION;
    tp.hostname = in->sni;
    tp.region = scope[2];
    tp.user = in->user;
    tp.expires_in = (uint32_t)expires;
    tp.now = date;
    memset(&creds, 0, sizeof creds);
    creds.access_key_id = key.akid;
    creds.secret_access_key = key.secret;
    creds.session_token = key.session[0] ? key.session : NULL;
    if (dsql_token_generate(&tp, &creds, mine, sizeof mine, &mine_len, &err) != DSQL_OK) {
        fail(reason, cap, "the token cannot be verified: %s", err.message);
        goto out;
    }
    expected_sig = find_signature(mine);
    siglen = expected_sig ? strcspn(expected_sig, "&") : 0;
    if (!expected_sig || strlen(p.v[P_SIG]) != siglen ||
        CRYPTO_memcmp(p.v[P_SIG], expected_sig, siglen) != 0) {
        fail(reason, cap, "The request signature we calculated does not match the signature you provided%s", NULL);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(&key, sizeof key);
    OPENSSL_cleanse(mine, sizeof mine);
    OPENSSL_cleanse(&p, sizeof p);
    return rc;
}
