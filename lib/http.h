/* The one HTTP seam of the library (lib/http.c, libcurl). Used by the
 * credential providers that talk to IMDS, the container endpoint, STS and
 * SSO. Internal; not installed. */
#ifndef DSQLAUTH_HTTP_H
#define DSQLAUTH_HTTP_H

#include "internal.h"

#define DSQL__HTTP_MAX_BODY ((size_t)1 << 20) /* 1 MiB */

typedef struct dsql__http_header {
    const char *name;
    const char *value; /* never logged: may be a token */
} dsql__http_header;

typedef struct dsql__http_request {
    const char *what;   /* who asks, for messages: "IMDS", "STS AssumeRole" */
    const char *method; /* "GET", "PUT", "POST" */
    const char *url;    /* http:// or https:// only */
    const dsql__http_header *headers;
    size_t header_count;
    const char *body;   /* NULL: no body */
    size_t body_len;
    long connect_timeout_ms; /* 0: 5000 */
    long timeout_ms;         /* whole request; 0: 30000 */
    size_t max_body;         /* 0: DSQL__HTTP_MAX_BODY */
    int no_proxy;            /* 1: never use a proxy (link-local/loopback) */
} dsql__http_request;

typedef struct dsql__http_response {
    long status;        /* HTTP status code */
    char *body;         /* NUL-terminated (body_len bytes before the NUL) */
    size_t body_len;
    char *content_type; /* NULL when the server sent none */
} dsql__http_response;

/* Performs the request. DSQL_OK means an HTTP response was received (any
 * status: the caller judges it); otherwise DSQL_ETIMEOUT, DSQL_ENETWORK,
 * DSQL_ETLS, DSQL_ENOMEM or DSQL_EINVAL with a message naming req->what,
 * the URL's host and the cause. TLS peer and host verification are always
 * on. Headers and bodies are never logged. */
dsql_status dsql__http_perform(const dsql__http_request *req, dsql__http_response *resp,
                               dsql_error *err);

/* Wipes (the body may hold credentials) and frees; zeroes *resp. */
void dsql__http_response_clear(dsql__http_response *resp);

/* Copies the host of url (as curl sees it, IPv6 in brackets) into buf;
 * "?" if it cannot be parsed. Returns buf. */
char *dsql__http_url_host(const char *url, char *buf, size_t cap);

/* Scheme ("http"/"https"), host, and the Host header value (host[:port],
 * port only when not the scheme's default) and path of url; each heap
 * allocated, NULL pointers are skipped. DSQL_EINVAL if url is malformed. */
dsql_status dsql__http_url_parts(const char *url, char **scheme, char **host,
                                 char **host_header, char **path, dsql_error *err);

/* Content type check: 1 when ct names the media type `want` (case
 * insensitive, parameters such as charset ignored). */
int dsql__http_content_type_is(const char *ct, const char *want);

/* Tests only: caps every connect and total timeout at ms (0: no cap). */
void dsql__http_set_timeout_cap_ms(long ms);
/* Tests only: trust the CAs in this PEM file instead of the system's
 * (verification stays on). NULL restores the default. Not exported. */
void dsql__http_set_test_ca_file(const char *path);

#endif
