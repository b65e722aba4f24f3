/* Generic AWS Signature Version 4 (query presign and header signing),
 * internal: the STS calls of the credential providers sign with it, and
 * the test suite checks it against AWS's SigV4 test suite. Not public: the
 * DSQL token (token.h) is a fast special case of the presign with its own
 * path, and a general presigner would be API to keep for no user of this
 * library. */
#ifndef DSQL_SIGV4_H
#define DSQL_SIGV4_H

#include "dsqlauth/common.h"
#include "dsqlauth/credentials.h"

typedef struct dsql_sigv4_pair {
    const char *name;
    const char *value;
} dsql_sigv4_pair;

typedef enum dsql_sigv4_mode {
    DSQL_SIGV4_QUERY = 0, /* presigned URL: X-Amz-* query parameters */
    DSQL_SIGV4_HEADER = 1 /* Authorization + X-Amz-Date (+ token) headers */
} dsql_sigv4_mode;

typedef struct dsql_sigv4_request {
    int version;                  /* DSQL_STRUCT_VERSION */
    dsql_sigv4_mode mode;
    const char *method;           /* "GET", "POST", ... */
    const char *path;             /* raw, not percent-encoded; "" means "/" */
    int normalize_path;           /* remove "." / ".." and empty segments */
    const dsql_sigv4_pair *query; /* as they appear in the URL (may be %-encoded) */
    size_t query_count;
    const dsql_sigv4_pair *headers; /* must include Host; all are signed */
    size_t header_count;
    const char *payload_sha256;   /* lowercase hex; NULL = hash of "" */
    const char *region;
    const char *service;
    int64_t time;                 /* Unix seconds (UTC) */
    uint32_t expires;             /* QUERY mode: X-Amz-Expires, 1..604800 */
    int omit_session_token;       /* QUERY mode: add the token unsigned */
} dsql_sigv4_request;

/* Result of a signature; every string is heap-allocated and NUL-terminated. */
typedef struct dsql_sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char signature[65];
    char *query;          /* QUERY mode: the full signed query string */
    char *authorization;  /* HEADER mode: the Authorization header value */
    char *amz_date;       /* HEADER mode: the X-Amz-Date header value */
} dsql_sigv4_result;

/* Signs req with creds into *out (zeroed first; on error everything in it
 * is freed). */
dsql_status dsql__sigv4_sign(const dsql_sigv4_request *req, const dsql_credentials *creds,
                             dsql_sigv4_result *out, dsql_error *err);
/* Wipes and frees what dsql__sigv4_sign allocated. */
void dsql__sigv4_result_clear(dsql_sigv4_result *res);

#endif
