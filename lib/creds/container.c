/* Container credentials: ECS task roles and EKS Pod Identity.
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (joined to http://169.254.170.2)
 * wins over AWS_CONTAINER_CREDENTIALS_FULL_URI; plain http is allowed only
 * for loopback addresses and the ECS/EKS link-local hosts (botocore's
 * rule), https anywhere. The authorization token (from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, re-read on every fetch, else
 * AWS_CONTAINER_AUTHORIZATION_TOKEN) is sent as the Authorization header.
 * Everything is read from the environment at each get(). */
#include "remote_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WHAT "container credentials"
#define ECS_HOST "http://169.254.170.2"
#define TOKEN_MAX 16384

static const char *g_ecs_base = ECS_HOST;

void dsql__container_set_relative_base_for_tests(const char *base)
{
    g_ecs_base = base ? base : ECS_HOST;
}

static int host_is_loopback(const char *host)
{
    char buf[64];
    size_t n = strlen(host);
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        struct in6_addr a6;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static int host_is_allowed_http(const char *host)
{
    static const char *const allowed[] = {"169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"};
    if (host_is_loopback(host))
        return 1;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strcasecmp(host, allowed[i]) == 0)
            return 1;
    return 0;
}

/* The endpoint URL (heap) from the environment. */
static dsql_status container_url(char **url, dsql_error *err)
{
    *url = NULL;
    const char *rel = dsql__env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = dsql__env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rel) {
        size_t n = strlen(g_ecs_base) + strlen(rel) + 2;
        char *u = dsql__malloc(n);
        if (!u)
            return dsql__error(err, DSQL_ENOMEM, WHAT ": out of memory");
        snprintf(u, n, "%s%s%s", g_ecs_base, rel[0] == '/' ? "" : "/", rel);
        *url = u;
        return DSQL_OK;
    }
    if (!full)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           WHAT ": neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
    char *scheme = NULL, *host = NULL;
    dsql_status st = dsql__http_url_parts(full, &scheme, &host, NULL, NULL, err);
    if (st != DSQL_OK)
        return st == DSQL_ENOMEM
                   ? st
                   : dsql__error(err, DSQL_ECONFIG,
                                 WHAT ": AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\" is not an "
                                 "http(s) URL with a host",
                                 full);
    if (strcmp(scheme, "http") == 0 && !host_is_allowed_http(host)) {
        dsql__error(err, DSQL_ECONFIG,
                    WHAT ": AWS_CONTAINER_CREDENTIALS_FULL_URI uses plain http with host %s; "
                    "only loopback addresses, 169.254.170.2, 169.254.170.23 and "
                    "[fd00:ec2::23] may use http, others need https",
                    host);
        dsql__free(scheme);
        dsql__free(host);
        return DSQL_ECONFIG;
    }
    dsql__free(scheme);
    dsql__free(host);
    if (!(*url = dsql__strdup(full)))
        return dsql__error(err, DSQL_ENOMEM, WHAT ": out of memory");
    return DSQL_OK;
}

static dsql_status auth_token(char **out, dsql_error *err)
{
    *out = NULL;
    const char *file = dsql__env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = dsql__env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (file) {
        dsql_status st = dsql__read_token_file(WHAT, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                               file, TOKEN_MAX, out, err);
        if (st != DSQL_OK)
            return st;
    } else if (tok) {
        if (!(*out = dsql__strdup(tok)))
            return dsql__error(err, DSQL_ENOMEM, WHAT ": out of memory");
    } else {
        return DSQL_OK;
    }
    if (strpbrk(*out, "\r\n")) {
        dsql__free_secret(*out);
        *out = NULL;
        return dsql__error(err, DSQL_ECONFIG,
                           WHAT ": the authorization token (%s) contains a line break",
                           file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
                                : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    return DSQL_OK;
}

static dsql_status container_get(void *self, dsql_credentials *out, dsql_error *err)
{
    (void)self;
    char *url = NULL, *token = NULL;
    dsql_status st = container_url(&url, err);
    if (st == DSQL_OK)
        st = auth_token(&token, err);
    if (st != DSQL_OK) {
        dsql__free(url);
        return st;
    }
    char host[256];
    dsql__http_url_host(url, host, sizeof host);
    dsql__http_header headers[2] = {{"Accept", "application/json"}, {"Authorization", token}};
    long timeout = dsql__env_seconds_ms("AWS_METADATA_SERVICE_TIMEOUT", 2000);
    dsql__http_request req = {.what = WHAT,
                              .method = "GET",
                              .url = url,
                              .headers = headers,
                              .header_count = token ? 2 : 1,
                              .connect_timeout_ms = timeout,
                              .timeout_ms = timeout,
                              .no_proxy = 1};
    dsql__http_response resp;
    st = dsql__http_perform_retry(
        &req, dsql__env_positive_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 3), &resp, err);
    dsql__free_secret(token);
    dsql__free(url);
    if (st != DSQL_OK)
        return st;
    cJSON *j;
    st = dsql__http_json_answer(WHAT, host, &resp, &j, err);
    if (st == DSQL_OK) {
        st = dsql__creds_from_json(WHAT, j, "AccessKeyId", "SecretAccessKey", "Token",
                                   "Expiration", 0, 1, out, err);
        dsql__json_delete_wiped(j);
    }
    dsql__http_response_clear(&resp);
    if (st == DSQL_OK) {
        char day[9], when[17];
        dsql__utc_format(out->expiration, day, when);
        dsql__log(DSQL_LOG_DEBUG, WHAT ": got credentials from %s, expiring at %s", host,
                  when);
    }
    return st;
}

static const dsql_credentials_provider_vtable CONTAINER_VTABLE = {DSQL_STRUCT_VERSION,
                                                                  container_get, NULL};

dsql_credentials_provider *dsql_credentials_provider_container(dsql_error *err)
{
    return dsql_credentials_provider_new(&CONTAINER_VTABLE, NULL, err);
}
