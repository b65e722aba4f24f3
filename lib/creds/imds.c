/* EC2 instance metadata (IMDSv2) credentials: PUT /latest/api/token, GET
 * .../iam/security-credentials/ for the role name, GET .../<role> for the
 * credentials. Short timeouts and bounded retries. To keep a laptop from
 * stalling, an unreachable endpoint (the token request times out or
 * cannot connect) is not retried; a reachable one that answers 5xx or
 * times out later is. Like botocore, a token request answered 403, 404 or
 * 405 falls back to IMDSv1 (no token) unless AWS_EC2_METADATA_V1_DISABLED
 * is true. Unlike botocore, expired credentials are an error instead of
 * being extended ("static stability"). */
#include "remote_util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WHAT "IMDS"
#define TOKEN_TTL "21600"
#define CREDS_PATH "/latest/meta-data/iam/security-credentials/"

typedef struct imds_ctx {
    char base[1024]; /* endpoint without a trailing '/' */
    char host[256];
    long timeout_ms;
    int attempts;
} imds_ctx;

static int env_true(const char *name)
{
    const char *v = dsql__env_nonempty(name);
    return v && strcasecmp(v, "true") == 0;
}

static dsql_status imds_request(const imds_ctx *c, const char *method, const char *path,
                                const char *token, int attempts, dsql__http_response *resp,
                                dsql_error *err)
{
    char url[2048];
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->base, path) >= sizeof url)
        return dsql__error(err, DSQL_ECONFIG, WHAT ": the metadata URL is too long");
    dsql__http_header headers[1];
    size_t nh = 0;
    if (strcmp(method, "PUT") == 0)
        headers[nh++] = (dsql__http_header){"X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL};
    else if (token)
        headers[nh++] = (dsql__http_header){"X-aws-ec2-metadata-token", token};
    dsql__http_request req = {.what = WHAT,
                              .method = method,
                              .url = url,
                              .headers = headers,
                              .header_count = nh,
                              .connect_timeout_ms = c->timeout_ms,
                              .timeout_ms = c->timeout_ms,
                              .max_body = 64 * 1024,
                              .no_proxy = 1};
    return dsql__http_perform_retry(&req, attempts, resp, err);
}

static dsql_status http_failure(const imds_ctx *c, const char *step, long status,
                                dsql_error *err)
{
    return dsql__error(err, status >= 500 ? DSQL_ESERVER : DSQL_ECREDENTIALS,
                       WHAT ": %s: %s answered HTTP %ld", step, c->host, status);
}

static dsql_status get_token(const imds_ctx *c, char **token, dsql_error *err)
{
    *token = NULL;
    dsql__http_response resp;
    /* first contact: not retried when unreachable (see the top comment) */
    dsql_status st = imds_request(c, "PUT", "/latest/api/token", NULL, 1, &resp, err);
    for (int i = 1; st == DSQL_OK && dsql__http_status_retryable(resp.status) && i < c->attempts;
         i++) {
        dsql__http_response_clear(&resp);
        dsql__sleep_ms(50L * i);
        st = imds_request(c, "PUT", "/latest/api/token", NULL, 1, &resp, err);
    }
    if (st != DSQL_OK) {
        if (err)
            dsql__log(DSQL_LOG_DEBUG, "%s", err->message);
        return st;
    }
    if (resp.status == 200 && resp.body_len > 0 && !strpbrk(resp.body, "\r\n")) {
        *token = resp.body;
        resp.body = NULL;
        dsql__http_response_clear(&resp);
        return DSQL_OK;
    }
    long status = resp.status;
    dsql__http_response_clear(&resp);
    if ((status == 403 || status == 404 || status == 405) &&
        !env_true("AWS_EC2_METADATA_V1_DISABLED")) {
        dsql__log(DSQL_LOG_DEBUG,
                  WHAT ": session token request answered HTTP %ld; falling back to IMDSv1",
                  status);
        return DSQL_OK;
    }
    if (status == 200)
        return dsql__error(err, DSQL_EPARSE,
                           WHAT ": get session token: %s returned an empty or multi-line "
                           "token",
                           c->host);
    return http_failure(c, "get session token", status, err);
}

static dsql_status get_role(const imds_ctx *c, const char *token, char **role,
                            dsql_error *err)
{
    *role = NULL;
    dsql__http_response resp;
    dsql_status st = imds_request(c, "GET", CREDS_PATH, token, c->attempts, &resp, err);
    if (st != DSQL_OK)
        return st;
    if (resp.status != 200) {
        long status = resp.status;
        dsql__http_response_clear(&resp);
        if (status == 404)
            return dsql__error(err, DSQL_ECREDENTIALS,
                               WHAT ": no IAM role is attached to this instance (%s answered "
                               "HTTP 404 for the role name)",
                               c->host);
        if (status == 401)
            return dsql__error(err, DSQL_ECREDENTIALS,
                               WHAT ": %s rejected the session token (HTTP 401)", c->host);
        return http_failure(c, "get role name", status, err);
    }
    /* the first line is the role name */
    size_t n = strcspn(resp.body, "\r\n");
    while (n && (resp.body[n - 1] == ' ' || resp.body[n - 1] == '\t'))
        n--;
    const char *b = resp.body;
    while (n && (*b == ' ' || *b == '\t')) {
        b++;
        n--;
    }
    if (n == 0 || n > 128 || memchr(b, '/', n) || memchr(b, ' ', n) || memchr(b, '<', n)) {
        dsql__http_response_clear(&resp);
        return dsql__error(err, DSQL_EPARSE,
                           WHAT ": %s returned an empty or malformed IAM role name", c->host);
    }
    *role = dsql__strndup(b, n);
    dsql__http_response_clear(&resp);
    return *role ? DSQL_OK : dsql__error(err, DSQL_ENOMEM, WHAT ": out of memory");
}

static dsql_status get_creds(const imds_ctx *c, const char *token, const char *role,
                             dsql_credentials *out, dsql_error *err)
{
    char path[512];
    size_t n = strlen(CREDS_PATH);
    if (n + dsql__uri_encoded_len(role, strlen(role), 0) + 1 > sizeof path)
        return dsql__error(err, DSQL_EPARSE, WHAT ": the IAM role name is too long");
    memcpy(path, CREDS_PATH, n);
    n += dsql__uri_encode(path + n, role, strlen(role), 0);
    path[n] = '\0';
    dsql__http_response resp;
    dsql_status st = imds_request(c, "GET", path, token, c->attempts, &resp, err);
    if (st != DSQL_OK)
        return st;
    if (resp.status != 200) {
        long status = resp.status;
        dsql__http_response_clear(&resp);
        if (status == 404)
            return dsql__error(err, DSQL_ECREDENTIALS,
                               WHAT ": %s has no credentials for IAM role %s (HTTP 404)",
                               c->host, role);
        return http_failure(c, "get role credentials", status, err);
    }
    cJSON *j = cJSON_ParseWithLength(resp.body, resp.body_len);
    if (!j) {
        st = dsql__error(err, DSQL_EPARSE,
                         WHAT ": the credentials for role %s from %s are not valid JSON "
                         "(content type %s, %zu bytes)",
                         role, c->host, resp.content_type ? resp.content_type : "none",
                         resp.body_len);
    } else {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "Code");
        if (cJSON_IsString(code) && strcmp(code->valuestring, "Success") != 0) {
            char shown[64];
            snprintf(shown, sizeof shown, "%s", code->valuestring);
            st = dsql__error(err, DSQL_ECREDENTIALS,
                             WHAT ": the credentials for role %s are not available (Code %s)",
                             role, shown);
        } else {
            char what[200];
            snprintf(what, sizeof what, WHAT " (role %s)", role);
            st = dsql__creds_from_json(what, j, "AccessKeyId", "SecretAccessKey", "Token",
                                       "Expiration", 0, 1, out, err);
        }
        dsql__json_delete_wiped(j);
    }
    dsql__http_response_clear(&resp);
    return st;
}

static dsql_status imds_get(void *self, dsql_credentials *out, dsql_error *err)
{
    (void)self;
    if (env_true("AWS_EC2_METADATA_DISABLED"))
        return dsql__error(err, DSQL_ECREDENTIALS,
                           WHAT ": disabled by AWS_EC2_METADATA_DISABLED=true");
    imds_ctx c;
    const char *ep = dsql__env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!ep) {
        const char *mode = dsql__env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        ep = mode && strcasecmp(mode, "IPv6") == 0 ? "http://[fd00:ec2::254]"
                                                    : "http://169.254.169.254";
    }
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof c.base)
        return dsql__error(err, DSQL_ECONFIG,
                           WHAT ": AWS_EC2_METADATA_SERVICE_ENDPOINT is empty or too long");
    memcpy(c.base, ep, n);
    c.base[n] = '\0';
    char *scheme = NULL;
    dsql_status st = dsql__http_url_parts(c.base, &scheme, NULL, NULL, NULL, err);
    if (st != DSQL_OK)
        return st == DSQL_ENOMEM
                   ? st
                   : dsql__error(err, DSQL_ECONFIG,
                                 WHAT ": the endpoint \"%s\" is not an http(s) URL", c.base);
    dsql__free(scheme);
    dsql__http_url_host(c.base, c.host, sizeof c.host);
    c.timeout_ms = dsql__env_seconds_ms("AWS_METADATA_SERVICE_TIMEOUT", 1000);
    c.attempts = dsql__env_positive_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 2);

    char *token = NULL, *role = NULL;
    st = get_token(&c, &token, err);
    if (st == DSQL_OK)
        st = get_role(&c, token, &role, err);
    if (st == DSQL_OK)
        st = get_creds(&c, token, role, out, err);
    dsql__free_secret(token);
    dsql__free(role);
    if (st == DSQL_OK) {
        char day[9], when[17];
        dsql__utc_format(out->expiration, day, when);
        dsql__log(DSQL_LOG_DEBUG, WHAT ": got credentials from %s, expiring at %s", c.host,
                  when);
    }
    return st;
}

static const dsql_credentials_provider_vtable IMDS_VTABLE = {DSQL_STRUCT_VERSION, imds_get,
                                                             NULL};

dsql_credentials_provider *dsql_credentials_provider_imds(dsql_error *err)
{
    return dsql_credentials_provider_new(&IMDS_VTABLE, NULL, err);
}
