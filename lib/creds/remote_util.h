/* Helpers shared by the HTTP credential providers (container, imds, sts,
 * sso, web identity). Internal. */
#ifndef DSQLAUTH_CREDS_REMOTE_UTIL_H
#define DSQLAUTH_CREDS_REMOTE_UTIL_H

#include <cjson/cJSON.h>

#include "../http.h"

/* getenv, with "" treated as unset. */
const char *dsql__env_nonempty(const char *name);
/* A number of seconds (fractions allowed) in env `name` as milliseconds;
 * dflt_ms when unset or not a positive number. */
long dsql__env_seconds_ms(const char *name, long dflt_ms);
/* A positive integer in env `name`, else dflt. */
int dsql__env_positive_int(const char *name, int dflt);
void dsql__sleep_ms(long ms);

/* Reads at most max bytes of a small text file (a token), trailing
 * whitespace removed. The result is a secret: free it with
 * dsql__free_secret. Errors name `what`, `label` and the path. */
dsql_status dsql__read_token_file(const char *what, const char *label, const char *path,
                                  size_t max, char **out, dsql_error *err);

/* cJSON_Delete after wiping every string in the tree. */
void dsql__json_delete_wiped(cJSON *j);

/* Credentials from a JSON object with the given member names. expiration
 * is an ISO 8601 string (exp_ms = 0) or a number of milliseconds since
 * the epoch (exp_ms = 1); exp_required says whether it may be missing.
 * Credentials that have already expired are DSQL_EEXPIRED. */
dsql_status dsql__creds_from_json(const char *what, const cJSON *obj, const char *k_akid,
                                  const char *k_secret, const char *k_token,
                                  const char *k_exp, int exp_ms, int exp_required,
                                  dsql_credentials *out, dsql_error *err);

/* 1 when region is 1..63 characters of a-z, A-Z, 0-9 and '-' (it goes
 * into endpoint host names). */
int dsql__region_is_valid(const char *region);

/* Is this status worth another attempt (5xx, 429)? */
int dsql__http_status_retryable(long status);



/* dsql__http_perform, repeated up to `attempts` times (short growing pause)
 * while the result is a timeout, a network error or a 5xx/429 status. */
dsql_status dsql__http_perform_retry(const dsql__http_request *req, int attempts,
                                     dsql__http_response *resp, dsql_error *err);

/* "code: message" from a JSON error body ({"code","message"} and the
 * like) into buf; "" when the body is not such JSON. Bodies are never
 * quoted otherwise (they might echo secrets). */
void dsql__http_error_summary(const dsql__http_response *resp, char *buf, size_t cap);

/* The JSON body of a 200 answer into *out (free it with
 * dsql__json_delete_wiped). Another status is "<what>: <host> answered
 * HTTP n (summary)", DSQL_ESERVER for 5xx, else DSQL_ECREDENTIALS; a body
 * that is not JSON is DSQL_EPARSE naming the content type and size (never
 * the body: it may hold secrets). resp is left for the caller to clear. */
dsql_status dsql__http_json_answer(const char *what, const char *host,
                                   const dsql__http_response *resp, cJSON **out,
                                   dsql_error *err);

/* container.c, tests only: the base URL AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * is joined to (NULL: http://169.254.170.2). */
void dsql__container_set_relative_base_for_tests(const char *base);

/* sts.c: an STS answer (any status) into credentials or an error naming
 * `what` and `host`; exposed for the fuzz target. */
dsql_status dsql__sts_parse_response(const char *what, const char *host,
                                     const dsql__http_response *resp, dsql_credentials *out,
                                     dsql_error *err);
#endif
