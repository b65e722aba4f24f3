/* Generic SigV4: canonical request, string to sign and signature for a
 * presigned URL (query mode) or an Authorization header (header mode).
 * Allocates freely; the DSQL token has its own allocation-free path. */
#include "internal.h"
#include "sigv4.h"
#include "strbuf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

static const char EMPTY_SHA256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

typedef struct kv {
    char *name;
    char *value;
} kv;

static int kv_compare(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void kv_free(kv *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        dsql__free_secret(list[i].name);
        dsql__free_secret(list[i].value);
    }
    dsql__free(list);
}

/* Decodes then re-encodes, so already-encoded input is not encoded twice. */
static char *canonical_component(const char *s)
{
    size_t n = strlen(s);
    char *decoded = dsql__malloc(n + 1);
    if (!decoded)
        return NULL;
    size_t dn = dsql__uri_decode(decoded, s, n);
    dsql__strbuf sb = {0};
    dsql__sb_encoded(&sb, decoded, dn, 0);
    OPENSSL_cleanse(decoded, n + 1);
    dsql__free(decoded);
    return dsql__sb_take(&sb);
}

static void canonical_path(dsql__strbuf *sb, const char *path, int normalize)
{
    if (!path || !*path)
        path = "/";
    if (!normalize) {
        dsql__sb_encoded(sb, path, strlen(path), 1);
        return;
    }
    /* keep segment start offsets on a stack to undo them on ".." */
    size_t n = strlen(path);
    size_t *starts = dsql__malloc((n + 1) * sizeof *starts);
    if (!starts) {
        sb->failed = 1;
        return;
    }
    size_t depth = 0, base = sb->len;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            if (depth > 0)
                sb->len = starts[--depth];
            continue;
        }
        starts[depth++] = sb->len;
        dsql__sb_putc(sb, '/');
        dsql__sb_encoded(sb, seg, len, 0);
    }
    dsql__free(starts);
    if (sb->len == base || (n > 1 && path[n - 1] == '/'))
        dsql__sb_putc(sb, '/');
    else if (sb->data)
        sb->data[sb->len] = '\0';
}

/* Lowercase names, trimmed values with whitespace runs collapsed; repeated
 * names joined with ',' in order of appearance; sorted by name. */
static kv *canonical_headers(const dsql_sigv4_pair *h, size_t n, const kv *extra,
                             size_t n_extra, size_t *out_n)
{
    size_t total = n + n_extra, count = 0;
    kv *list = dsql__calloc(total ? total : 1, sizeof *list);
    if (!list)
        return NULL;
    for (size_t i = 0; i < total; i++) {
        const char *name = i < n ? h[i].name : extra[i - n].name;
        const char *value = i < n ? h[i].value : extra[i - n].value;
        dsql__strbuf v = {0};
        int space = 0;
        for (const char *p = value ? value : ""; *p; p++) {
            if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
                space = v.len > 0;
                continue;
            }
            if (space)
                dsql__sb_putc(&v, ' ');
            space = 0;
            dsql__sb_putc(&v, *p);
        }
        dsql__sb_putc(&v, '\0');
        v.len--;
        char *lname = dsql__strdup(name);
        char *cvalue = dsql__sb_take(&v);
        if (!lname || !cvalue) {
            dsql__free(lname);
            dsql__free_secret(cvalue);
            kv_free(list, count);
            return NULL;
        }
        for (char *q = lname; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q + 32);
        size_t j;
        for (j = 0; j < count && strcmp(list[j].name, lname) != 0; j++)
            ;
        if (j < count) {
            dsql__strbuf joined = {0};
            dsql__sb_puts(&joined, list[j].value);
            dsql__sb_putc(&joined, ',');
            dsql__sb_puts(&joined, cvalue);
            char *nv = dsql__sb_take(&joined);
            dsql__free(lname);
            dsql__free_secret(cvalue);
            if (!nv) {
                kv_free(list, count);
                return NULL;
            }
            dsql__free_secret(list[j].value);
            list[j].value = nv;
        } else {
            list[count].name = lname;
            list[count].value = cvalue;
            count++;
        }
    }
    qsort(list, count, sizeof *list, kv_compare);
    *out_n = count;
    return list;
}

static dsql_status validate(const dsql_sigv4_request *r, const dsql_credentials *c,
                            dsql_error *err)
{
    if (!r || r->version != DSQL_STRUCT_VERSION)
        return dsql__error(err, DSQL_EINVAL, "SigV4 request is NULL or has a version other "
                           "than %d", DSQL_STRUCT_VERSION);
    if (r->mode != DSQL_SIGV4_QUERY && r->mode != DSQL_SIGV4_HEADER)
        return dsql__error(err, DSQL_EINVAL, "SigV4 mode %d is unknown", (int)r->mode);
    if (!r->method || !r->method[0])
        return dsql__error(err, DSQL_EINVAL, "SigV4 method is empty");
    if (!r->region || !r->region[0] || strchr(r->region, '/'))
        return dsql__error(err, DSQL_EINVAL, "SigV4 region is empty or contains '/'");
    if (!r->service || !r->service[0] || strchr(r->service, '/'))
        return dsql__error(err, DSQL_EINVAL, "SigV4 service is empty or contains '/'");
    if (r->mode == DSQL_SIGV4_QUERY && (r->expires < 1 || r->expires > DSQL_TOKEN_MAX_EXPIRES))
        return dsql__error(err, DSQL_EINVAL, "SigV4 expires %u is outside 1..%u", r->expires,
                           DSQL_TOKEN_MAX_EXPIRES);
    if (r->time < 0 || r->time > INT64_C(253402300799))
        return dsql__error(err, DSQL_EINVAL, "SigV4 time is outside years 1970..9999");
    if ((r->query_count && !r->query) || (r->header_count && !r->headers))
        return dsql__error(err, DSQL_EINVAL, "SigV4 query or header list is NULL");
    for (size_t i = 0; i < r->query_count; i++)
        if (!r->query[i].name || !r->query[i].value)
            return dsql__error(err, DSQL_EINVAL, "SigV4 query parameter %zu is NULL", i);
    int has_host = 0;
    for (size_t i = 0; i < r->header_count; i++) {
        if (!r->headers[i].name || !r->headers[i].name[0] || !r->headers[i].value)
            return dsql__error(err, DSQL_EINVAL, "SigV4 header %zu is empty", i);
        has_host |= strcasecmp(r->headers[i].name, "host") == 0;
    }
    if (!has_host)
        return dsql__error(err, DSQL_EINVAL, "SigV4 request has no Host header");
    if (!c || !c->access_key_id || !c->access_key_id[0] || !c->secret_access_key ||
        !c->secret_access_key[0])
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "credentials need an access key id and a secret access key");
    return DSQL_OK;
}

void dsql__sigv4_result_clear(dsql_sigv4_result *res)
{
    if (!res)
        return;
    dsql__free_secret(res->canonical_request);
    dsql__free_secret(res->string_to_sign);
    dsql__free_secret(res->query);
    dsql__free_secret(res->authorization);
    dsql__free(res->amz_date);
    OPENSSL_cleanse(res, sizeof *res);
}

static void put_pairs(dsql__strbuf *sb, const kv *list, size_t n, char sep, char eq)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            dsql__sb_putc(sb, sep);
        dsql__sb_puts(sb, list[i].name);
        dsql__sb_putc(sb, eq);
        dsql__sb_puts(sb, list[i].value);
    }
}

/* What one signature is built from, step by step (dsql__sigv4_sign). */
typedef struct signing {
    const dsql_sigv4_request *r;
    const dsql_credentials *c;
    char date[9], datetime[17], expires[16];
    int with_token;
    dsql__strbuf scope;        /* <date>/<region>/<service>/aws4_request */
    dsql__strbuf cred;         /* <access key id>/<scope> */
    dsql__strbuf signed_names; /* the signed header names, ';'-joined */
    kv *headers;               /* canonical headers, sorted */
    size_t n_headers;
    kv *query;                 /* canonical query, sorted */
    size_t n_query;
} signing;

static void signing_free(signing *s)
{
    kv_free(s->headers, s->n_headers);
    kv_free(s->query, s->n_query);
    dsql__sb_free(&s->scope);
    dsql__sb_free(&s->cred);
    dsql__sb_free(&s->signed_names);
}

static dsql_status no_memory(dsql_error *err)
{
    return dsql__error(err, DSQL_ENOMEM, "out of memory signing a request");
}

/* Step 1: the dates, the credential scope and the canonical headers (with
 * X-Amz-Date and the session token in HEADER mode) and their names. */
static dsql_status sign_scope(signing *s, dsql_error *err)
{
    const dsql_sigv4_request *r = s->r;
    dsql__utc_format(r->time, s->date, s->datetime);
    snprintf(s->expires, sizeof s->expires, "%u", r->expires);
    s->with_token = s->c->session_token && s->c->session_token[0];
    dsql__sb_puts(&s->scope, s->date);
    dsql__sb_putc(&s->scope, '/');
    dsql__sb_puts(&s->scope, r->region);
    dsql__sb_putc(&s->scope, '/');
    dsql__sb_puts(&s->scope, r->service);
    dsql__sb_puts(&s->scope, "/aws4_request");
    dsql__sb_puts(&s->cred, s->c->access_key_id);
    dsql__sb_putc(&s->cred, '/');
    dsql__sb_append(&s->cred, s->scope.data ? s->scope.data : "", s->scope.len);
    kv extra[2] = {{"x-amz-date", s->datetime}, {"x-amz-security-token", s->c->session_token}};
    size_t n_extra = r->mode == DSQL_SIGV4_HEADER ? (s->with_token ? 2 : 1) : 0;
    s->headers = canonical_headers(r->headers, r->header_count, extra, n_extra, &s->n_headers);
    if (!s->headers || s->scope.failed || s->cred.failed)
        return no_memory(err);
    for (size_t i = 0; i < s->n_headers; i++) {
        if (i)
            dsql__sb_putc(&s->signed_names, ';');
        dsql__sb_puts(&s->signed_names, s->headers[i].name);
    }
    return s->signed_names.failed ? no_memory(err) : DSQL_OK;
}

/* Step 2: the canonical query: the caller's parameters as canonical
 * components, in QUERY mode the X-Amz-* ones encoded, all sorted. */
static dsql_status sign_query(signing *s, dsql_error *err)
{
    const dsql_sigv4_request *r = s->r;
    const char *auth[6][2] = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                              {"X-Amz-Credential", s->cred.data},
                              {"X-Amz-Date", s->datetime},
                              {"X-Amz-Expires", s->expires},
                              {"X-Amz-SignedHeaders", s->signed_names.data},
                              {"X-Amz-Security-Token", s->c->session_token}};
    size_t n_auth = 0;
    if (r->mode == DSQL_SIGV4_QUERY)
        n_auth = s->with_token && !r->omit_session_token ? 6 : 5;
    if (!(s->query = dsql__calloc(r->query_count + 6, sizeof *s->query)))
        return no_memory(err);
    for (size_t i = 0; i < r->query_count + n_auth; i++) {
        int own = i < r->query_count;
        const char *name = own ? r->query[i].name : auth[i - r->query_count][0];
        const char *value = own ? r->query[i].value : auth[i - r->query_count][1];
        kv *q = &s->query[i];
        q->name = own ? canonical_component(name) : dsql__strdup(name);
        if (own) {
            q->value = canonical_component(value);
        } else {
            dsql__strbuf v = {0};
            dsql__sb_encoded(&v, value ? value : "", value ? strlen(value) : 0, 0);
            q->value = dsql__sb_take(&v);
        }
        s->n_query = i + 1;
        if (!q->name || !q->value)
            return no_memory(err);
    }
    qsort(s->query, s->n_query, sizeof *s->query, kv_compare);
    return DSQL_OK;
}

/* Step 3: the canonical request (AWS SigV4: "Create a canonical request"). */
static dsql_status sign_canonical_request(signing *s, dsql_sigv4_result *out,
                                          dsql_error *err)
{
    const dsql_sigv4_request *r = s->r;
    dsql__strbuf sb = {0};
    dsql__sb_puts(&sb, r->method);
    dsql__sb_putc(&sb, '\n');
    canonical_path(&sb, r->path, r->normalize_path);
    dsql__sb_putc(&sb, '\n');
    put_pairs(&sb, s->query, s->n_query, '&', '=');
    dsql__sb_putc(&sb, '\n');
    for (size_t i = 0; i < s->n_headers; i++) {
        dsql__sb_puts(&sb, s->headers[i].name);
        dsql__sb_putc(&sb, ':');
        dsql__sb_puts(&sb, s->headers[i].value);
        dsql__sb_putc(&sb, '\n');
    }
    dsql__sb_putc(&sb, '\n');
    dsql__sb_puts(&sb, s->signed_names.data ? s->signed_names.data : "");
    dsql__sb_putc(&sb, '\n');
    dsql__sb_puts(&sb, r->payload_sha256 ? r->payload_sha256 : EMPTY_SHA256);
    out->canonical_request = dsql__sb_take(&sb);
    return out->canonical_request ? DSQL_OK : no_memory(err);
}

/* Step 4: the string to sign and the signature with the derived key. */
static dsql_status sign_signature(signing *s, dsql_sigv4_result *out, dsql_error *err)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[65];
    SHA256((const unsigned char *)out->canonical_request, strlen(out->canonical_request),
           digest);
    dsql__hex(hex, digest, sizeof digest);
    hex[64] = '\0';
    dsql__strbuf sb = {0};
    dsql__sb_puts(&sb, "AWS4-HMAC-SHA256\n");
    dsql__sb_puts(&sb, s->datetime);
    dsql__sb_putc(&sb, '\n');
    dsql__sb_puts(&sb, s->scope.data);
    dsql__sb_putc(&sb, '\n');
    dsql__sb_puts(&sb, hex);
    if (!(out->string_to_sign = dsql__sb_take(&sb)))
        return no_memory(err);
    dsql__hmac_key key;
    dsql__sigv4_derive_key(&key, s->c->secret_access_key, s->date, s->r->region,
                           s->r->service);
    dsql__hmac(&key, out->string_to_sign, strlen(out->string_to_sign), digest);
    dsql__hmac_key_wipe(&key);
    dsql__hex(out->signature, digest, sizeof digest);
    out->signature[64] = '\0';
    return DSQL_OK;
}

/* Step 5a (QUERY): the caller's parameters as given, then ours
 * (aws-c-auth's order), the signature last. */
static dsql_status sign_presigned_query(signing *s, dsql_sigv4_result *out, dsql_error *err)
{
    const dsql_sigv4_request *r = s->r;
    dsql__strbuf sb = {0};
    for (size_t i = 0; i < r->query_count; i++) {
        if (i)
            dsql__sb_putc(&sb, '&');
        dsql__sb_puts(&sb, r->query[i].name);
        dsql__sb_putc(&sb, '=');
        dsql__sb_puts(&sb, r->query[i].value);
    }
    if (r->query_count)
        dsql__sb_putc(&sb, '&');
    dsql__sb_puts(&sb, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    dsql__sb_encoded(&sb, s->cred.data, s->cred.len, 0);
    dsql__sb_puts(&sb, "&X-Amz-Date=");
    dsql__sb_puts(&sb, s->datetime);
    dsql__sb_puts(&sb, "&X-Amz-SignedHeaders=");
    dsql__sb_encoded(&sb, s->signed_names.data, s->signed_names.len, 0);
    dsql__sb_puts(&sb, "&X-Amz-Expires=");
    dsql__sb_puts(&sb, s->expires);
    if (s->with_token) {
        dsql__sb_puts(&sb, "&X-Amz-Security-Token=");
        dsql__sb_encoded(&sb, s->c->session_token, strlen(s->c->session_token), 0);
    }
    dsql__sb_puts(&sb, "&X-Amz-Signature=");
    dsql__sb_puts(&sb, out->signature);
    out->query = dsql__sb_take(&sb);
    return out->query ? DSQL_OK : no_memory(err);
}

/* Step 5b (HEADER): the Authorization and X-Amz-Date header values. */
static dsql_status sign_authorization(signing *s, dsql_sigv4_result *out, dsql_error *err)
{
    dsql__strbuf sb = {0};
    dsql__sb_puts(&sb, "AWS4-HMAC-SHA256 Credential=");
    dsql__sb_puts(&sb, s->cred.data);
    dsql__sb_puts(&sb, ", SignedHeaders=");
    dsql__sb_puts(&sb, s->signed_names.data);
    dsql__sb_puts(&sb, ", Signature=");
    dsql__sb_puts(&sb, out->signature);
    out->authorization = dsql__sb_take(&sb);
    out->amz_date = dsql__strdup(s->datetime);
    return out->authorization && out->amz_date ? DSQL_OK : no_memory(err);
}

dsql_status dsql__sigv4_sign(const dsql_sigv4_request *r, const dsql_credentials *c,
                             dsql_sigv4_result *out, dsql_error *err)
{
    if (!out)
        return dsql__error(err, DSQL_EINVAL, "SigV4 result is NULL");
    memset(out, 0, sizeof *out);
    dsql_status st = validate(r, c, err);
    if (st != DSQL_OK)
        return st;
    signing s = {.r = r, .c = c};
    if ((st = sign_scope(&s, err)) == DSQL_OK && (st = sign_query(&s, err)) == DSQL_OK &&
        (st = sign_canonical_request(&s, out, err)) == DSQL_OK &&
        (st = sign_signature(&s, out, err)) == DSQL_OK)
        st = r->mode == DSQL_SIGV4_QUERY ? sign_presigned_query(&s, out, err)
                                         : sign_authorization(&s, out, err);
    signing_free(&s);
    if (st != DSQL_OK)
        dsql__sigv4_result_clear(out);
    return st;
}
