/* Internal helpers shared by the files in lib/. Not installed. */
#ifndef DSQLAUTH_INTERNAL_H
#define DSQLAUTH_INTERNAL_H

/* The signer keeps SHA-256 states of the HMAC pads and copies them by
 * assignment, which OpenSSL 3 can only do through the low-level SHA256_*
 * API (EVP_MD_CTX_copy allocates on every copy). Those functions are
 * deprecated in OpenSSL 3.0 but present in every 3.x build that does not
 * set no-deprecated, including Debian's. */
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/sha.h>

#include "dsqlauth.h"

#if defined(__GNUC__)
#define DSQL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DSQL_PRINTF(a, b)
#endif

/* mem.c: every allocation goes through the user-settable allocator. */
void *dsql__malloc(size_t size);
void *dsql__calloc(size_t n, size_t size);
void *dsql__realloc(void *ptr, size_t size);
void dsql__free(void *ptr);
char *dsql__strdup(const char *s);
char *dsql__strndup(const char *s, size_t n);
/* Wipe then free a NUL-terminated secret string. */
void dsql__free_secret(char *s);
/* 1 when the n bytes at a and b are equal, in time that depends on n only
 * (CRYPTO_memcmp goes a byte at a time: too slow for 1 KB session tokens
 * compared on every token). */
int dsql__ct_equal(const void *a, const void *b, size_t n);

/* err.c: fill err (if any) and return status. */
dsql_status dsql__error(dsql_error *err, dsql_status status, const char *fmt, ...)
    DSQL_PRINTF(3, 4);
void dsql__error_clear(dsql_error *err);

/* log.c */
void dsql__log(dsql_log_level level, const char *fmt, ...) DSQL_PRINTF(2, 3);
int dsql__log_enabled(dsql_log_level level);

/* utctime.c: "YYYYMMDD" and "YYYYMMDDTHHMMSSZ" for Unix time t (UTC). */
void dsql__utc_format(int64_t t, char date[9], char datetime[17]);
/* Parse "YYYY-MM-DDTHH:MM:SSZ" (fractional seconds and +00:00 accepted). */
int dsql__utc_parse_iso8601(const char *s, int64_t *out);
int64_t dsql__now(void);

/* uri.c: RFC 3986 encoding, keeping A-Za-z0-9 - _ . ~ (and '/' if asked). */
#define DSQL__CC_UNRESERVED 1 /* A-Za-z0-9 - _ . ~ */
#define DSQL__CC_HOST_LABEL 2 /* A-Za-z0-9 - _ */
extern const unsigned char dsql__char_class[256];
size_t dsql__uri_encoded_len(const char *s, size_t n, int keep_slash);
size_t dsql__uri_encode(char *dst, const char *s, size_t n, int keep_slash);
/* Decode %XX in place-safe manner into dst (dst may equal s); returns length. */
size_t dsql__uri_decode(char *dst, const char *s, size_t n);
void dsql__hex(char *dst, const unsigned char *bytes, size_t n);

/* hmac.c: HMAC-SHA256 with precomputed pad states (no allocation). */
typedef struct dsql__hmac_key {
    SHA256_CTX inner;
    SHA256_CTX outer;
} dsql__hmac_key;
void dsql__hmac_key_init(dsql__hmac_key *k, const void *key, size_t len);
void dsql__hmac_start(const dsql__hmac_key *k, SHA256_CTX *ctx);
void dsql__hmac_finish(const dsql__hmac_key *k, SHA256_CTX *ctx,
                       unsigned char out[32]);
void dsql__hmac(const dsql__hmac_key *k, const void *msg, size_t n,
                unsigned char out[32]);
/* SigV4 signing key for (secret, date, region, service), as pad states. */
void dsql__sigv4_derive_key(dsql__hmac_key *out, const char *secret,
                            const char *date, const char *region,
                            const char *service);
void dsql__hmac_key_wipe(dsql__hmac_key *k);

/* token_host.c: what a token takes from its hostname, checked once: the
 * host (scheme and trailing '/' stripped), the region the name carries
 * (region_len 0: none; above DSQL_REGION_MAX: too long, region empty),
 * and the canonical request's tail from "&X-Amz-SignedHeaders=" on, with
 * the host lowercased. */
#define DSQL__CANONICAL_TAIL_MAX (31 + DSQL_HOSTNAME_MAX + 7 + 64)
typedef struct dsql__token_host {
    const char *host;
    size_t host_len;
    size_t region_len;
    char region[DSQL_REGION_MAX + 1];
    int region_valid; /* region passes the check a given region gets */
    size_t tail_len;
    char tail[DSQL__CANONICAL_TAIL_MAX];
} dsql__token_host;
/* A signer's memo of the last few hostnames, keyed by their exact bytes
 * as given ("https://", host, '/'); replaced round-robin. */
#define DSQL__HOST_MEMO_SLOTS 4
typedef struct dsql__host_slot {
    size_t given_len; /* 0: empty */
    char given[8 + DSQL_HOSTNAME_MAX + 1 + 1];
    dsql__token_host th;
} dsql__host_slot;
typedef struct dsql__host_memo {
    unsigned next;
    dsql__host_slot slot[DSQL__HOST_MEMO_SLOTS];
} dsql__host_memo;
/* The token host for hostname into *out: memo's when it holds these exact
 * bytes, else checked and built into memo (kept) or, with memo NULL, into
 * *scratch. *out lives as long as the memo slot or scratch. */
dsql_status dsql__token_host_get(dsql__host_memo *memo, const char *hostname,
                                 dsql__token_host *scratch, const dsql__token_host **out,
                                 dsql_error *err);

/* token.c: position (from 1) of the first byte of region r (n bytes) that
 * a region may not hold (lowercase letters, digits, '-'), 0: none. */
size_t dsql__region_bad_char(const char *r, size_t n);

/* token.c: the token body, with the signing key supplied by the caller. */
typedef struct dsql__token_input {
    const dsql__token_host *th; /* host, its region, the canonical tail */
    const char *host;           /* th->host */
    size_t host_len;
    const char *region;
    size_t region_len;
    size_t access_key_id_len, secret_len; /* measured once per token */
    const char *action;
    uint32_t expires;
    uint32_t expires_asked; /* above expires: lowered to the credentials' life */
    int64_t now;
    size_t session_token_len; /* 0: none */
    /* the session token already percent-encoded (a cache's copy), or NULL:
     * then it is encoded while the token is written */
    const char *session_enc;
    size_t session_enc_len;
    char date[9];
    char datetime[17];
} dsql__token_input;
/* The query text up to "X-Amz-Date=" and the canonical-request hash state
 * after it: fixed per (action, key id, date, region), so the signer
 * caches it next to the derived key. */
#define DSQL__MAX_ACCESS_KEY_ID 128
typedef struct dsql__token_prefix {
    const char *action;
    char access_key_id[DSQL__MAX_ACCESS_KEY_ID + 1];
    size_t access_key_id_len;
    size_t len;
    char text[128 + 3 * DSQL__MAX_ACCESS_KEY_ID + DSQL_REGION_MAX];
    SHA256_CTX canonical;
    /* The HMAC state after the string to sign's first 64 bytes ("AWS4-
     * HMAC-SHA256\n<datetime>\n<date>/<region>/dsql/..."): fixed for one
     * signing second, so kept for the second sts_datetime names. */
    int sts_head_valid;
    char sts_datetime[16];
    SHA256_CTX sts_head;
    /* The canonical-request hash state one block further: the bytes that
     * complete the block after the prefix ("<datetime>&X-Amz-Expires=<n>
     * &X-Amz-S...") are fixed for one signing second and lifetime, so the
     * state after them is kept with those bytes as its key. */
    size_t block_head_len; /* 0: nothing kept */
    char block_head[SHA256_CBLOCK];
    SHA256_CTX block_state;
} dsql__token_prefix;
void dsql__token_prefix_init(dsql__token_prefix *pre, const dsql__token_input *in,
                             const dsql_credentials *creds);
int dsql__token_prefix_matches(const dsql__token_prefix *pre, const dsql__token_input *in,
                               const dsql_credentials *creds);
/* A session token its owner has already measured and percent-encoded:
 * a credentials snapshot, which does not change while it is borrowed. */
typedef struct dsql__session_known {
    const char *enc; /* NULL: none known */
    size_t enc_len, len;
} dsql__session_known;
/* Common start of every token call: empties buf, validates the input into
 * *in, and checks that buf can hold the token (else DSQL_EBUFSIZE with the
 * token length in *len). The host comes from hosts (a signer's memo) or,
 * with hosts NULL, is checked into *host_buf; the session token's length
 * and encoding from known when it has them, else it is measured. Logs
 * nothing: the caller calls dsql__token_end after signing (and after
 * dropping its locks). */
dsql_status dsql__token_begin(const dsql_token_request *params, const dsql_credentials *creds,
                              dsql__token_input *in, dsql__host_memo *hosts,
                              dsql__token_host *host_buf, const dsql__session_known *known,
                              char *buf, size_t cap, size_t *len, dsql_error *err);
/* Logs what the caller should know about a token signed from in (a
 * lifetime lowered to the credentials' own). */
void dsql__token_end(const dsql__token_input *in);
/* Derives the key and writes the token; returns its length. */
size_t dsql__token_sign_uncached(const dsql__token_input *in, const dsql_credentials *creds,
                                 char *buf);
/* Writes token + NUL into buf (large enough); returns the token length. */
size_t dsql__token_write(const dsql__token_input *in, const dsql_credentials *creds,
                         dsql__token_prefix *pre, const dsql__hmac_key *signing_key,
                         char *buf);

/* signer.c: a signer caches the derived signing key per (secret, date,
 * region), so a token costs one HMAC chain instead of five. Shared by any
 * number of threads; the hot path takes an uncontended per-thread lock and
 * allocates nothing. Behind dsql_token_provider_signing. */
typedef struct dsql_signer dsql_signer;
dsql_signer *dsql__signer_new(dsql_error *err);
dsql_status dsql__signer_token(dsql_signer *signer, const dsql_token_request *req,
                               const dsql_credentials *creds, char *buf, size_t cap,
                               size_t *len, dsql_error *err);
/* Wipes every cached key. NULL is allowed. */
void dsql__signer_free(dsql_signer *signer);

/* signer.c: dsql__signer_token with creds->session_token already measured
 * and encoded (known; NULL or known->enc NULL: measure it, and encode it or
 * use the signer's own cached encoding). */
dsql_status dsql__signer_token_enc(dsql_signer *signer, const dsql_token_request *params,
                                   const dsql_credentials *creds,
                                   const dsql__session_known *known, char *buf, size_t cap,
                                   size_t *len, dsql_error *err);
/* Provider handles: the public structs are opaque, defined here. */
struct dsql_credentials_provider {
    const dsql_credentials_provider_vtable *vtable;
    void *self;
};
struct dsql_token_provider {
    const dsql_token_provider_vtable *vtable;
    void *self;
    int shared; /* a process-wide provider: dsql_token_provider_free ignores it */
};
void dsql__token_provider_mark_shared(dsql_token_provider *p);

/* config.c: cfg's "profile" when it was requested explicitly (set in code
 * or in a parsed connection string), NULL when unset or when it came from
 * the environment (AWS_PROFILE through dsql_config_load_env), which
 * botocore does not treat as an explicit request. */
const char *dsql__config_explicit_profile(const dsql_config *cfg);

/* config.c: the two string forms dsql_config_parse detects (tests and
 * fuzz targets call them directly). */
dsql_status dsql__config_parse_uri(dsql_config *cfg, const char *uri, dsql_error *err);
dsql_status dsql__config_parse_conninfo(dsql_config *cfg, const char *conninfo,
                                        dsql_error *err);

#endif
