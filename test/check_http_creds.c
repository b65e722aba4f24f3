/* The HTTP credential providers (container, IMDSv2, STS AssumeRole and
 * AssumeRoleWithWebIdentity, SSO) against test/aws_test_server.py on
 * 127.0.0.1: success paths, and every injected fault giving a specific
 * status and a message naming the provider and the cause. No secret may
 * appear in an error message or a log line. */
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "testutil.h"
#include "aws_server.h"
#include "creds/remote.h"
#include "creds/remote_util.h"

#define AKID "ASIATESTACCESSKEY"
#define SECRET "test/secret+access/key"
#define TOKEN "test-session-token"

/* ---- log capture and the secrets check ------------------------------- */

static char logbuf[65536];
static size_t loglen;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Log callbacks may be called from several threads at once. */
static void capture_log(dsql_log_level level, const char *msg, void *ud)
{
    (void)level, (void)ud;
    size_t n = strlen(msg);
    pthread_mutex_lock(&log_lock);
    if (loglen + n + 2 < sizeof logbuf) {
        memcpy(logbuf + loglen, msg, n);
        loglen += n;
        logbuf[loglen++] = '\n';
        logbuf[loglen] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

static const char *const secrets[] = {SECRET, TOKEN, "source-secret", "web-identity-jwt",
                                      "sso-access-token", "imds-token-", "container-auth-tok",
                                      "src-session-tok"};

static void assert_no_secrets(const dsql_error *err)
{
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        ck_assert_msg(!strstr(logbuf, secrets[i]), "secret %s in the log:\n%s", secrets[i],
                      logbuf);
        if (err)
            ck_assert_msg(!strstr(err->message, secrets[i]), "secret %s in error: %s",
                          secrets[i], err->message);
    }
}

static void setup(void)
{
    loglen = 0;
    logbuf[0] = '\0';
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    ck_assert_int_eq(aws_server_config(NULL), 0);
}

/* Whatever a test did, nothing it logged may contain a secret. */
static void teardown(void)
{
    dsql__http_set_test_ca_file(NULL);
    assert_no_secrets(NULL);
}

static void configf(const char *fmt, ...) DSQL_PRINTF(1, 2);
static void configf(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ck_assert_msg(aws_server_config(buf) == 0, "config %s", buf);
}

#define ASSERT_MSG_HAS(err, s)                                                                 \
    ck_assert_msg(strstr((err).message, (s)), "message \"%s\" lacks \"%s\"", (err).message, (s))

/* Sets one injected fault: fault("ecs", "\"status\":500") configures
 * {"faults":{"ecs":{"status":500}}}. */
static void fault(const char *route, const char *spec)
{
    configf("{\"faults\":{\"%s\":{%s}}}", route, spec);
}

/* The status of `what` (run at line `line` of a test) must be `want`, and
 * its error message must hold each string of the NULL-terminated list ap;
 * no secret may appear in it. */
static void check_outcome(int line, const char *what, dsql_status st, const dsql_error *err,
                          dsql_status want, va_list ap)
{
    ck_assert_msg(st == want, "line %d: %s gave %s, want %s: %s", line, what,
                  dsql_status_name(st), dsql_status_name(want), err->message);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err->message, s), "line %d: %s: message \"%s\" lacks \"%s\"", line,
                      what, err->message, s);
    assert_no_secrets(err);
}

/* EXPECT(call, err, want, "part of the message", ...): call's status is
 * want and err's message holds every string given. */
#define EXPECT(call, err, ...) expect_(__LINE__, #call, (call), &(err), __VA_ARGS__, NULL)
static void expect_(int line, const char *what, dsql_status st, const dsql_error *err,
                    dsql_status want, ...)
{
    va_list ap;
    va_start(ap, want);
    check_outcome(line, what, st, err, want, ap);
    va_end(ap);
}

/* Runs provider p once; returns the status, fills err/creds. */
static dsql_status run(dsql_credentials_provider *(*make)(dsql_error *), dsql_credentials *c,
                       dsql_error *err)
{
    dsql_credentials_provider *p = make(err);
    ck_assert_ptr_nonnull(p);
    memset(err, 0, sizeof *err);
    dsql_status st = dsql_credentials_provider_get(p, c, err);
    dsql_credentials_provider_free(p);
    assert_no_secrets(err);
    return st;
}

/* EXPECT_GET(make, want, "part of the message", ...): like EXPECT for one
 * run() of the provider; credentials it gets are dropped. */
#define EXPECT_GET(make, ...) expect_get(__LINE__, #make, make, __VA_ARGS__, NULL)
static void expect_get(int line, const char *what, dsql_credentials_provider *(*make)(dsql_error *),
                       dsql_status want, ...)
{
    dsql_credentials c;
    dsql_error err;
    dsql_status st = run(make, &c, &err);
    if (st == DSQL_OK)
        dsql_credentials_clear(&c);
    va_list ap;
    va_start(ap, want);
    check_outcome(line, what, st, &err, want, ap);
    va_end(ap);
}

static void assert_test_creds(const dsql_credentials *c, int64_t expires_in)
{
    ck_assert_str_eq(c->access_key_id, AKID);
    ck_assert_str_eq(c->secret_access_key, SECRET);
    ck_assert_str_eq(c->session_token, TOKEN);
    int64_t d = c->expiration - (dsql__now() + expires_in);
    ck_assert_msg(d >= -5 && d <= 5, "expiration off by %lld s", (long long)d);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    ck_assert(getsockname(s, (struct sockaddr *)&a, &len) == 0);
    close(s);
    return ntohs(a.sin_port);
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

/* ---- HTTP seam -------------------------------------------------------- */

START_TEST(test_url_parts)
{
    char *scheme, *host, *hh, *path;
    ck_assert_int_eq(dsql__http_url_parts("https://sts.amazonaws.com/", &scheme, &host, &hh,
                                          &path, NULL),
                     DSQL_OK);
    ck_assert_str_eq(scheme, "https");
    ck_assert_str_eq(host, "sts.amazonaws.com");
    ck_assert_str_eq(hh, "sts.amazonaws.com");
    ck_assert_str_eq(path, "/");
    dsql__free(scheme), dsql__free(host), dsql__free(hh), dsql__free(path);
    ck_assert_int_eq(dsql__http_url_parts("http://127.0.0.1:8080", NULL, NULL, &hh, &path, NULL),
                     DSQL_OK);
    ck_assert_str_eq(hh, "127.0.0.1:8080");
    ck_assert_str_eq(path, "/");
    dsql__free(hh), dsql__free(path);
    ck_assert_int_eq(dsql__http_url_parts("http://[::1]:80/x", NULL, &host, &hh, NULL, NULL),
                     DSQL_OK);
    ck_assert_str_eq(host, "[::1]");
    ck_assert_str_eq(hh, "[::1]");
    dsql__free(host), dsql__free(hh);
    dsql_error err;
    ck_assert_int_eq(dsql__http_url_parts("ftp://x/", NULL, NULL, NULL, NULL, &err), DSQL_EINVAL);
    ck_assert_int_eq(dsql__http_url_parts("not a url", NULL, NULL, NULL, NULL, &err),
                     DSQL_EINVAL);
    ck_assert(dsql__http_content_type_is("application/json; charset=utf-8", "application/json"));
    ck_assert(dsql__http_content_type_is("Application/JSON", "application/json"));
    ck_assert(!dsql__http_content_type_is("application/jsonx", "application/json"));
    ck_assert(!dsql__http_content_type_is(NULL, "application/json"));
}
END_TEST

START_TEST(test_http_https_to_plain_server_fails_tls)
{
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/_control/stats", aws_server_port);
    dsql__http_request req = {.what = "probe", .method = "GET", .url = url, .timeout_ms = 2000};
    dsql__http_response resp;
    dsql_error err;
    dsql_status st = dsql__http_perform(&req, &resp, &err);
    ck_assert_int_eq(st, DSQL_ETLS);
    ASSERT_MSG_HAS(err, "probe");
    ASSERT_MSG_HAS(err, "127.0.0.1");
}
END_TEST

START_TEST(test_http_body_cap)
{
    configf("{\"faults\":{\"ecs\":{\"body\":\"%s\"}}}", "0123456789abcdef0123456789abcdef");
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/x", aws_server_url);
    dsql__http_request req = {.what = "probe", .method = "GET", .url = url, .max_body = 16};
    dsql__http_response resp;
    dsql_error err;
    ck_assert_int_eq(dsql__http_perform(&req, &resp, &err), DSQL_ENETWORK);
    ASSERT_MSG_HAS(err, "larger than 16 bytes");
    req.max_body = 32;
    ck_assert_int_eq(dsql__http_perform(&req, &resp, &err), DSQL_OK);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_uint_eq(resp.body_len, 32);
    ck_assert_str_eq(resp.content_type, "application/json");
    dsql__http_response_clear(&resp);
}
END_TEST

START_TEST(test_http_header_injection_refused)
{
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/x", aws_server_url);
    dsql__http_header h = {"X-Test", "a\r\nX-Evil: 1"};
    dsql__http_request req = {.what = "probe", .method = "GET", .url = url, .headers = &h,
                              .header_count = 1};
    dsql__http_response resp;
    dsql_error err;
    ck_assert_int_eq(dsql__http_perform(&req, &resp, &err), DSQL_EINVAL);
    ck_assert_int_eq(aws_server_count("ecs"), 0);
}
END_TEST

/* ---- container ---------------------------------------------------------- */

static void container_env(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/creds", aws_server_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.5", 1);
}

START_TEST(test_container_ok)
{
    container_env();
    dsql_credentials c;
    dsql_error err;
    ck_assert_int_eq(run(dsql_credentials_provider_container, &c, &err), DSQL_OK);
    assert_test_creds(&c, 3600);
    dsql_credentials_clear(&c);
    ck_assert_int_eq(aws_server_count("ecs"), 1);
}
END_TEST

START_TEST(test_container_relative_uri_wins)
{
    /* the ECS host itself is never contacted: the test points the base at
     * the loopback server */
    dsql__container_set_relative_base_for_tests(aws_server_url);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/v2/creds?id=1", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/never", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_OK);
    char *path = aws_server_last("ecs", "path");
    ck_assert_str_eq(path, "/ecs/v2/creds?id=1");
    free(path);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "ecs/no-slash", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_OK);
    path = aws_server_last("ecs", "path");
    ck_assert_str_eq(path, "/ecs/no-slash");
    free(path);
    dsql__container_set_relative_base_for_tests(NULL);
}
END_TEST

START_TEST(test_container_not_configured)
{
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECREDENTIALS, "container credentials",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI");
}
END_TEST

START_TEST(test_container_full_uri_host_rules)
{
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.2", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECONFIG, "example.com", "https");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.3/creds", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECONFIG);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "file:///etc/passwd", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECONFIG);
    /* loopback in any spelling is allowed (and here refused by nobody) */
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/ecs/creds", aws_server_port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ecs/creds", free_port());
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ENETWORK, "cannot connect to 127.0.0.1");
}
END_TEST

START_TEST(test_container_auth_token)
{
    container_env();
    configf("{\"ecs_authorization\":\"container-auth-tok-1\"}");
    dsql_credentials c;
    dsql_error err;
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECREDENTIALS, "HTTP 401", "AccessDenied");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-tok-1", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_OK);

    /* the file wins over the variable and is re-read at every get() */
    char path[] = "/tmp/dsql-ecs-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, "container-auth-tok-2\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    configf("{\"ecs_authorization\":\"container-auth-tok-2\"}");
    dsql_credentials_provider *p = dsql_credentials_provider_container(&err);
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_OK);
    dsql_credentials_clear(&c);
    write_file(path, "container-auth-tok-3");
    configf("{\"ecs_authorization\":\"container-auth-tok-3\"}");
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_OK);
    dsql_credentials_clear(&c);
    write_file(path, "container-auth-tok-4\r\nX-Evil: 1");
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_ECONFIG);
    ASSERT_MSG_HAS(err, "line break");
    unlink(path);
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_EIO);
    ASSERT_MSG_HAS(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    dsql_credentials_provider_free(p);
    assert_no_secrets(&err);
}
END_TEST

START_TEST(test_container_500_retried_then_fails)
{
    container_env();
    fault("ecs", "\"status\":500");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ESERVER, "container credentials",
               "HTTP 500", "InternalError");
    ck_assert_int_eq(aws_server_count("ecs"), 3);
}
END_TEST

START_TEST(test_container_500_once_recovers)
{
    container_env();
    fault("ecs", "\"status\":503,\"times\":1");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_OK);
    ck_assert_int_eq(aws_server_count("ecs"), 2);
}
END_TEST

START_TEST(test_container_404)
{
    container_env();
    fault("ecs", "\"status\":404,\"body\":\"\"");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECREDENTIALS,
               "container credentials: 127.0.0.1", "HTTP 404");
    ck_assert_int_eq(aws_server_count("ecs"), 1);
}
END_TEST

START_TEST(test_container_timeout)
{
    container_env();
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.3", 1);
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1", 1);
    fault("ecs", "\"delay\":2");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ETIMEOUT, "container credentials",
               "timed out", "127.0.0.1");
}
END_TEST

START_TEST(test_container_slow_body)
{
    container_env();
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.4", 1);
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1", 1);
    fault("ecs", "\"slow_body\":0.1");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ETIMEOUT, "container credentials",
               "timed out");
}
END_TEST

START_TEST(test_container_truncated)
{
    container_env();
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1", 1);
    fault("ecs", "\"truncate\":true");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ENETWORK, "container credentials",
               "truncated");
}
END_TEST

START_TEST(test_container_malformed_json)
{
    container_env();
    fault("ecs", "\"body\":\"{\\\"AccessKeyId\\\": \\\"AKID\\\", \"");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_EPARSE, "container credentials",
               "not valid JSON");
}
END_TEST

START_TEST(test_container_wrong_content_type)
{
    container_env();
    fault("ecs", "\"body\":\"<html>captive portal</html>\","
                 "\"content_type\":\"text/html\"");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_EPARSE, "not valid JSON", "text/html");
}
END_TEST

START_TEST(test_container_missing_field)
{
    container_env();
    fault("ecs", "\"body\":\"{\\\"AccessKeyId\\\":\\\"AKID\\\"}\"");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_EPARSE, "has no SecretAccessKey");
}
END_TEST

START_TEST(test_container_expired)
{
    container_env();
    fault("ecs", "\"expires_in\":-60");
    EXPECT_GET(dsql_credentials_provider_container, DSQL_EEXPIRED, "container credentials",
               "already expired");
}
END_TEST

START_TEST(test_container_oversized)
{
    container_env();
    /* 1 MiB + 1 of JSON-ish text */
    size_t n = (1u << 20) + 1;
    char *json = malloc(n + 64);
    strcpy(json, "{\"faults\":{\"ecs\":{\"body\":\"");
    size_t off = strlen(json);
    memset(json + off, 'x', n);
    strcpy(json + off + n, "\"}}}");
    ck_assert_int_eq(aws_server_config(json), 0);
    free(json);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ENETWORK, "larger than 1048576 bytes");
}
END_TEST

/* ---- IMDS ------------------------------------------------------------- */

static void imds_env(void)
{
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws_server_url, 1);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.5", 1);
}

START_TEST(test_imds_ok)
{
    imds_env();
    dsql_credentials c;
    dsql_error err;
    ck_assert_int_eq(run(dsql_credentials_provider_imds, &c, &err), DSQL_OK);
    assert_test_creds(&c, 3600);
    dsql_credentials_clear(&c);
    ck_assert_int_eq(aws_server_count("imds_token"), 1);
    ck_assert_int_eq(aws_server_count("imds_role"), 1);
    ck_assert_int_eq(aws_server_count("imds_creds"), 1);
    char *ttl = aws_server_last("imds_token", "headers.X-aws-ec2-metadata-token-ttl-seconds");
    ck_assert_ptr_nonnull(ttl);
    ck_assert_str_eq(ttl, "21600");
    free(ttl);
}
END_TEST

START_TEST(test_imds_disabled)
{
    imds_env();
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ECREDENTIALS,
               "IMDS: disabled by AWS_EC2_METADATA_DISABLED");
    ck_assert_int_eq(aws_server_total(), 0);
}
END_TEST

START_TEST(test_imds_no_role)
{
    imds_env();
    fault("imds_role", "\"status\":404");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ECREDENTIALS, "IMDS: no IAM role is attached");
}
END_TEST

START_TEST(test_imds_unknown_role)
{
    imds_env();
    fault("imds_role", "\"body\":\"other-role\\n\"");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ECREDENTIALS,
               "no credentials for IAM role other-role");
}
END_TEST

START_TEST(test_imds_token_500_once_recovers)
{
    imds_env();
    fault("imds_token", "\"status\":500,\"times\":1");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_OK);
    ck_assert_int_eq(aws_server_count("imds_token"), 2);
}
END_TEST

START_TEST(test_imds_creds_500_bounded)
{
    imds_env();
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3", 1);
    fault("imds_creds", "\"status\":500");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ESERVER, "IMDS: get role credentials",
               "HTTP 500");
    ck_assert_int_eq(aws_server_count("imds_creds"), 3);
}
END_TEST

START_TEST(test_imds_unreachable_not_retried)
{
    imds_env();
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.3", 1);
    fault("imds_token", "\"delay\":2");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ETIMEOUT, "IMDS", "timed out");
    ck_assert_int_eq(aws_server_count("imds_token"), 1);
}
END_TEST

START_TEST(test_imds_slow_creds)
{
    imds_env();
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.3", 1);
    fault("imds_creds", "\"slow_body\":0.1");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ETIMEOUT, "IMDS");
    ck_assert_int_eq(aws_server_count("imds_creds"), 2); /* default: 2 attempts */
}
END_TEST

START_TEST(test_imds_malformed_and_truncated)
{
    imds_env();
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1", 1);
    fault("imds_creds", "\"body\":\"{\\\"Code\\\":\\\"Success\\\",\"");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_EPARSE, "IMDS", "not valid JSON");
    fault("imds_creds", "\"truncate\":true");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ENETWORK, "IMDS", "truncated");
}
END_TEST

START_TEST(test_imds_code_not_success)
{
    imds_env();
    fault("imds_creds", "\"body\":\"{\\\"Code\\\":\\\"AssumeRoleUnauthorizedAccess\\\"}\"");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ECREDENTIALS, "AssumeRoleUnauthorizedAccess");
}
END_TEST

START_TEST(test_imds_expired)
{
    imds_env();
    fault("imds_creds", "\"expires_in\":-1");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_EEXPIRED, "IMDS (role test-role)",
               "already expired");
}
END_TEST

START_TEST(test_imds_v1_disabled)
{
    imds_env();
    setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
    fault("imds_token", "\"status\":403");
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ECREDENTIALS, "IMDS: get session token",
               "HTTP 403");
    ck_assert_int_eq(aws_server_count("imds_role"), 0);
}
END_TEST

START_TEST(test_imds_connection_refused)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_ENETWORK, "IMDS: cannot connect to 127.0.0.1");
}
END_TEST

/* ---- STS ---------------------------------------------------------------- */

static void sts_env(void)
{
    setenv("AWS_ENDPOINT_URL_STS", aws_server_url, 1);
    dsql__http_set_timeout_cap_ms(1000);
}

static dsql_credentials source_creds = {"AKIDSOURCE", "source-secret", NULL, 0};

#define ROLE_R "arn:aws:iam::123456789012:role/r"

/* EXPECT_ASSUME_ROLE(want, "part of the message", ...): like EXPECT for an
 * AssumeRole of ROLE_R with source_creds; credentials it gets are dropped. */
#define EXPECT_ASSUME_ROLE(...) expect_assume_role(__LINE__, __VA_ARGS__, NULL)
static void expect_assume_role(int line, dsql_status want, ...)
{
    dsql__assume_role_params p = {.role_arn = ROLE_R};
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql__sts_assume_role(&source_creds, &p, &c, &err);
    if (st == DSQL_OK)
        dsql_credentials_clear(&c);
    va_list ap;
    va_start(ap, want);
    check_outcome(line, "STS AssumeRole of " ROLE_R, st, &err, want, ap);
    va_end(ap);
}

START_TEST(test_sts_assume_role_signed)
{
    sts_env();
    dsql__assume_role_params p = {.role_arn = "arn:aws:iam::123456789012:role/r",
                                  .role_session_name = "my-session",
                                  .external_id = "ext-1",
                                  .duration_seconds = 900,
                                  .region = "eu-west-1"};
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql__sts_assume_role(&source_creds, &p, &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s", err.message);
    assert_test_creds(&c, 3600);
    dsql_credentials_clear(&c);
    char *body = aws_server_last("sts_assume_role", "body");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body, "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
                           "123456789012%3Arole%2Fr&RoleSessionName=my-session&ExternalId=ext-1"
                           "&DurationSeconds=900");
    free(body);
    char *auth = aws_server_last("sts_assume_role", "headers.Authorization");
    ck_assert_ptr_nonnull(auth);
    ck_assert_msg(strstr(auth, "/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;"
                               "x-amz-date, Signature="),
                  "%s", auth);
    free(auth);
    assert_no_secrets(&err);
}
END_TEST

START_TEST(test_sts_assume_role_with_session_token)
{
    sts_env();
    configf("{\"sts_source_session_token\":\"src-session-tok\"}");
    dsql_credentials src = {"AKIDSOURCE", "source-secret", "src-session-tok", 0};
    dsql__assume_role_params p = {.role_arn = ROLE_R};
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql__sts_assume_role(&src, &p, &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s", err.message);
    dsql_credentials_clear(&c);
    char *body = aws_server_last("sts_assume_role", "body");
    ck_assert_msg(strstr(body, "RoleSessionName=dsqlauth-"), "%s", body);
    ck_assert(!strstr(body, "ExternalId"));
    ck_assert(!strstr(body, "DurationSeconds"));
    free(body);
    char *auth = aws_server_last("sts_assume_role", "headers.Authorization");
    ck_assert_msg(strstr(auth, "/us-east-1/sts/aws4_request"), "%s", auth);
    ck_assert_msg(strstr(auth, "x-amz-date;x-amz-security-token"), "%s", auth);
    free(auth);
    assert_no_secrets(&err);
}
END_TEST

START_TEST(test_sts_generic_endpoint_env)
{
    setenv("AWS_ENDPOINT_URL", aws_server_url, 1);
    EXPECT_ASSUME_ROLE(DSQL_OK);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1);
}
END_TEST

START_TEST(test_sts_bad_signature)
{
    sts_env();
    dsql_credentials wrong = {"AKIDSOURCE", "not-the-secret", NULL, 0};
    dsql__assume_role_params p = {.role_arn = ROLE_R};
    dsql_credentials c;
    dsql_error err = {0};
    EXPECT(dsql__sts_assume_role(&wrong, &p, &c, &err), err, DSQL_ECREDENTIALS,
           "STS AssumeRole: 127.0.0.1", "HTTP 403: SignatureDoesNotMatch: signature mismatch");
    ck_assert_ptr_null(c.access_key_id);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1);
}
END_TEST

START_TEST(test_sts_500_retried)
{
    sts_env();
    fault("sts_assume_role", "\"status\":500");
    EXPECT_ASSUME_ROLE(DSQL_ESERVER, "HTTP 500: InternalFailure: injected failure");
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 3);
}
END_TEST

START_TEST(test_sts_expired_token_code)
{
    sts_env();
    fault("sts_assume_role",
          "\"status\":400,\"body\":\"<ErrorResponse><Error>"
          "<Code>ExpiredToken</Code><Message>The security token included in the request is "
          "expired</Message></Error></ErrorResponse>\"");
    EXPECT_ASSUME_ROLE(DSQL_EEXPIRED, "ExpiredToken: The security token included");
}
END_TEST

START_TEST(test_sts_malformed_xml)
{
    sts_env();
    fault("sts_assume_role", "\"body\":\"<AssumeRoleResponse><AssumeRoleResult>"
                             "<Credentials><AccessKeyId>AK</AccessKeyId>\"");
    EXPECT_ASSUME_ROLE(DSQL_EPARSE, "STS AssumeRole", "not well-formed XML");
}
END_TEST

START_TEST(test_sts_missing_credentials_element)
{
    sts_env();
    fault("sts_assume_role",
          "\"body\":\"<AssumeRoleResponse><AssumeRoleResult>"
          "<Credentials><AccessKeyId>AK</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
          "<SessionToken>T</SessionToken></Credentials></AssumeRoleResult>"
          "</AssumeRoleResponse>\"");
    EXPECT_ASSUME_ROLE(DSQL_EPARSE, "has no Credentials/Expiration");
}
END_TEST

START_TEST(test_sts_doctype_refused)
{
    sts_env();
    configf("{\"faults\":{\"sts_assume_role\":{\"body\":\"<?xml version=\\\"1.0\\\"?>"
            "<!DOCTYPE r [<!ENTITY a \\\"aaaa\\\">]><r>&a;</r>\"}}}");
    EXPECT_ASSUME_ROLE(DSQL_EPARSE, "DOCTYPE");
}
END_TEST

START_TEST(test_sts_html_error_page)
{
    sts_env();
    fault("sts_assume_role", "\"status\":502,\"content_type\":\"text/html\","
                             "\"body\":\"<html><body>Bad Gateway<br></body></html>\"");
    EXPECT_ASSUME_ROLE(DSQL_ESERVER,
                       "HTTP 502 (content type text/html, not an STS error document)");
}
END_TEST

START_TEST(test_sts_expired_credentials)
{
    sts_env();
    fault("sts_assume_role", "\"expires_in\":-10");
    EXPECT_ASSUME_ROLE(DSQL_EEXPIRED, "have already expired");
}
END_TEST

START_TEST(test_sts_timeout)
{
    sts_env();
    dsql__http_set_timeout_cap_ms(200);
    fault("sts_assume_role", "\"delay\":1");
    EXPECT_ASSUME_ROLE(DSQL_ETIMEOUT, "STS AssumeRole: POST 127.0.0.1", "timed out");
}
END_TEST

START_TEST(test_sts_invalid_input)
{
    sts_env();
    dsql__assume_role_params p = {.role_arn = ""};
    dsql_credentials c;
    dsql_error err = {0};
    ck_assert_int_eq(dsql__sts_assume_role(&source_creds, &p, &c, &err), DSQL_EINVAL);
    p.role_arn = ROLE_R;
    p.role_session_name = "bad name with spaces";
    ck_assert_int_eq(dsql__sts_assume_role(&source_creds, &p, &c, &err), DSQL_ECONFIG);
    ASSERT_MSG_HAS(err, "role_session_name");
    p.role_session_name = NULL;
    p.duration_seconds = 60;
    ck_assert_int_eq(dsql__sts_assume_role(&source_creds, &p, &c, &err), DSQL_ECONFIG);
    ASSERT_MSG_HAS(err, "duration_seconds 60");
    p.duration_seconds = 0;
    p.region = "evil.example.com/x?";
    ck_assert_int_eq(dsql__sts_assume_role(&source_creds, &p, &c, &err), DSQL_ECONFIG);
    ASSERT_MSG_HAS(err, "not a valid AWS region");
    ck_assert_int_eq(dsql__sso_get_role_credentials("a.b", "sso-access-token", "1", "r", &c,
                                                    &err),
                     DSQL_ECONFIG);
    ASSERT_MSG_HAS(err, "not a valid AWS region");
    p.region = NULL;
    dsql_credentials none = {0};
    p.duration_seconds = 0;
    ck_assert_int_eq(dsql__sts_assume_role(&none, &p, &c, &err), DSQL_ECREDENTIALS);
    ck_assert_int_eq(aws_server_total(), 0);
}
END_TEST

/* ---- web identity -------------------------------------------------------- */

/* A web identity token file (path: a mkstemp template) and the role the
 * environment names for it. */
static void web_identity_env(char *path)
{
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, "web-identity-jwt\n");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web", 1);
}

START_TEST(test_web_identity_provider)
{
    sts_env();
    char path[] = "/tmp/dsql-web-token-XXXXXX";
    web_identity_env(path);
    setenv("AWS_ROLE_SESSION_NAME", "pod-1", 1);
    setenv("AWS_REGION", "ap-south-1", 1);
    dsql_credentials c;
    dsql_error err;
    ck_assert_int_eq(run(dsql_credentials_provider_web_identity, &c, &err), DSQL_OK);
    assert_test_creds(&c, 3600);
    dsql_credentials_clear(&c);
    char *auth = aws_server_last("sts_web_identity", "headers.Authorization");
    ck_assert_ptr_null(auth); /* unsigned */
    char *body = aws_server_last("sts_web_identity", "body");
    ck_assert_str_eq(body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws"
                           "%3Aiam%3A%3A123456789012%3Arole%2Fweb&RoleSessionName=pod-1"
                           "&WebIdentityToken=web-identity-jwt");
    free(body);

    /* the file is re-read: a rotated token is used at the next get() */
    configf("{\"web_identity_token\":\"web-identity-jwt-2\"}");
    EXPECT_GET(dsql_credentials_provider_web_identity, DSQL_ECREDENTIALS,
               "STS AssumeRoleWithWebIdentity: 127.0.0.1 answered HTTP 400: "
               "InvalidIdentityToken");
    write_file(path, "web-identity-jwt-2");
    EXPECT_GET(dsql_credentials_provider_web_identity, DSQL_OK);

    unlink(path);
    EXPECT_GET(dsql_credentials_provider_web_identity, DSQL_EIO,
               "web identity: cannot open AWS_WEB_IDENTITY_TOKEN_FILE");
}
END_TEST

START_TEST(test_web_identity_not_configured)
{
    EXPECT_GET(dsql_credentials_provider_web_identity, DSQL_ECREDENTIALS,
               "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set");
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web", 1);
    EXPECT_GET(dsql_credentials_provider_web_identity, DSQL_ECREDENTIALS,
               "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
}
END_TEST

/* ---- SSO --------------------------------------------------------------- */

/* EXPECT_SSO(want, "part of the message", ...): like EXPECT for an SSO
 * GetRoleCredentials of role r in account 1 with "sso-access-token". */
#define EXPECT_SSO(...) expect_sso(__LINE__, __VA_ARGS__, NULL)
static void expect_sso(int line, dsql_status want, ...)
{
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st =
        dsql__sso_get_role_credentials("us-west-2", "sso-access-token", "1", "r", &c, &err);
    if (st == DSQL_OK)
        dsql_credentials_clear(&c);
    va_list ap;
    va_start(ap, want);
    check_outcome(line, "SSO GetRoleCredentials of 1/r", st, &err, want, ap);
    va_end(ap);
}

START_TEST(test_sso_ok)
{
    setenv("AWS_ENDPOINT_URL_SSO", aws_server_url, 1);
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql__sso_get_role_credentials("us-west-2", "sso-access-token",
                                                    "123456789012", "Admin Role", &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s", err.message);
    assert_test_creds(&c, 3600);
    dsql_credentials_clear(&c);
    char *path = aws_server_last("sso", "path");
    ck_assert_str_eq(path,
                     "/federation/credentials?account_id=123456789012&role_name=Admin%20Role");
    free(path);
    assert_no_secrets(&err);
}
END_TEST

START_TEST(test_sso_rejected_token)
{
    setenv("AWS_ENDPOINT_URL_SSO", aws_server_url, 1);
    dsql_credentials c;
    dsql_error err = {0};
    EXPECT(dsql__sso_get_role_credentials("us-west-2", "stale-token", "123456789012", "Admin",
                                          &c, &err),
           err, DSQL_EEXPIRED, "SSO GetRoleCredentials", "HTTP 401",
           "Session token not found or invalid", "run `aws sso login`");
    fault("sso", "\"status\":403,\"body\":\"{\\\"message\\\":\\\"No access\\\"}\"");
    EXPECT(dsql__sso_get_role_credentials("us-west-2", "sso-access-token", "123456789012",
                                          "Admin", &c, &err),
           err, DSQL_ECREDENTIALS, "HTTP 403 (No access)", "run `aws sso login`");
    EXPECT(dsql__sso_get_role_credentials("us-west-2", "", "123456789012", "Admin", &c, &err),
           err, DSQL_ECREDENTIALS, "aws sso login");
}
END_TEST

START_TEST(test_sso_faults)
{
    setenv("AWS_ENDPOINT_URL_SSO", aws_server_url, 1);
    dsql__http_set_timeout_cap_ms(300);
    fault("sso", "\"body\":\"{\\\"roleCredentials\\\":{\"");
    EXPECT_SSO(DSQL_EPARSE, "SSO GetRoleCredentials: the response from 127.0.0.1",
               "not valid JSON");
    fault("sso", "\"body\":\"{}\"");
    EXPECT_SSO(DSQL_EPARSE, "no roleCredentials");
    fault("sso", "\"expires_in\":-5");
    EXPECT_SSO(DSQL_EEXPIRED);
    fault("sso", "\"status\":500");
    EXPECT_SSO(DSQL_ESERVER, "HTTP 500 (injected failure)");
    ck_assert_int_eq(aws_server_count("sso"), 3);
    fault("sso", "\"delay\":1,\"times\":3");
    EXPECT_SSO(DSQL_ETIMEOUT, "SSO GetRoleCredentials: GET 127.0.0.1");
}
END_TEST

/* ---- TLS (a second server instance with a throwaway certificate) -------- */

static pid_t tls_pid = -1, v6_pid = -1;
static int tls_port, v6_port;
static char tls_dir[] = "/tmp/dsql-tls-XXXXXX";
static char tls_cert[128];

static void start_extra_servers(void)
{
    if (mkdtemp(tls_dir)) {
        char cmd[1024];
        snprintf(tls_cert, sizeof tls_cert, "%s/cert.pem", tls_dir);
        snprintf(cmd, sizeof cmd,
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-keyout %s/key.pem -out %s -days 2 -subj /CN=dsqlauth-test "
                 "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
                 tls_dir, tls_cert);
        if (system(cmd) == 0) {
            char key[128];
            snprintf(key, sizeof key, "%s/key.pem", tls_dir);
            const char *args[] = {"--tls-cert", tls_cert, "--tls-key", key, NULL};
            if (aws_server_spawn(args, &tls_pid, &tls_port) != 0)
                tls_pid = -1;
        }
    }
    const char *v6[] = {"--host", "::1", NULL};
    if (aws_server_spawn(v6, &v6_pid, &v6_port) != 0)
        v6_pid = -1;
}

static void stop_extra_servers(void)
{
    pid_t pids[] = {tls_pid, v6_pid};
    for (size_t i = 0; i < 2; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tls_dir);
    if (tls_dir[strlen(tls_dir) - 1] != 'X' && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tls_dir);
}

START_TEST(test_tls_untrusted_certificate)
{
    if (tls_pid < 0) {
        fprintf(stderr, "skipped: no TLS test server (openssl(1) missing?)\n");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", tls_port);
    setenv("AWS_ENDPOINT_URL_SSO", url, 1);
    dsql__http_set_timeout_cap_ms(2000);
    dsql_error err = {0};
    EXPECT_SSO(DSQL_ETLS, "SSO GetRoleCredentials: TLS with 127.0.0.1 failed", "certificate");
    assert_no_secrets(&err);
}
END_TEST

START_TEST(test_tls_trusted_certificate)
{
    if (tls_pid < 0) {
        fprintf(stderr, "skipped: no TLS test server (openssl(1) missing?)\n");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", tls_port);
    setenv("AWS_ENDPOINT_URL_SSO", url, 1);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    dsql__http_set_test_ca_file(tls_cert);
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql__sso_get_role_credentials("us-west-2", "sso-access-token", "1", "r",
                                                    &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s", err.message);
    assert_test_creds(&c, 3600);
    dsql_credentials_clear(&c);
    dsql__assume_role_params p = {.role_arn = ROLE_R};
    st = dsql__sts_assume_role(&source_creds, &p, &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s", err.message);
    dsql_credentials_clear(&c);
    /* the certificate names 127.0.0.1 only: another name for the same
     * server must fail host verification */
    snprintf(url, sizeof url, "https://localhost:%d", tls_port);
    setenv("AWS_ENDPOINT_URL_SSO", url, 1);
    st = dsql__sso_get_role_credentials("us-west-2", "sso-access-token", "1", "r", &c, &err);
    ck_assert_int_eq(st, DSQL_ETLS);
    ASSERT_MSG_HAS(err, "TLS with localhost failed");
    dsql__http_set_test_ca_file(NULL);
}
END_TEST

/* ---- IPv6 loopback -------------------------------------------------------- */

START_TEST(test_ipv6_loopback)
{
    if (v6_pid < 0) {
        fprintf(stderr, "skipped: no IPv6 loopback on this host\n");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "http://[::1]:%d", v6_port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "0.5", 1);
    EXPECT_GET(dsql_credentials_provider_imds, DSQL_OK);
    snprintf(url, sizeof url, "http://[::1]:%d/ecs/creds", v6_port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_OK);
    /* a non-loopback IPv6 address over http is refused */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[fd00:ec2::24]/creds", 1);
    EXPECT_GET(dsql_credentials_provider_container, DSQL_ECONFIG, "[fd00:ec2::24]");
}
END_TEST

/* ---- concurrency ------------------------------------------------------------ */

static void *fetch_many(void *arg)
{
    (void)arg;
    dsql_credentials_provider *p = dsql_credentials_provider_container(NULL);
    long ok = 0;
    for (int i = 0; i < 10; i++) {
        dsql_credentials c;
        if (dsql_credentials_provider_get(p, &c, NULL) == DSQL_OK &&
            strcmp(c.access_key_id, AKID) == 0)
            ok++;
        dsql_credentials_clear(&c);
    }
    dsql_credentials_provider_free(p);
    return (void *)ok;
}

START_TEST(test_concurrent_fetches)
{
    container_env();
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "5", 1);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fetch_many, NULL), 0);
    long total = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    ck_assert_int_eq(total, 80);
    ck_assert_int_eq(aws_server_count("ecs"), 80);
}
END_TEST

/* ---- allocation failures ------------------------------------------------- */

static long alloc_budget = -1;
static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}
static void *failing_realloc(void *p, size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return realloc(p, n);
}

/* Fails the n-th allocation for n = 0, 1, ... until the call succeeds;
 * every failure must be DSQL_ENOMEM and leave out empty. */
static void alloc_loop(dsql_status (*call)(dsql_credentials *, dsql_error *))
{
    dsql_set_allocator(failing_malloc, failing_realloc, free);
    for (long n = 0; n < 2000; n++) {
        dsql_credentials c;
        memset(&c, 0x5a, sizeof c); /* the call must clear it */
        dsql_error err = {0};
        alloc_budget = n;
        dsql_status st = call(&c, &err);
        alloc_budget = -1;
        if (st == DSQL_OK) {
            dsql_credentials_clear(&c);
            dsql_set_allocator(NULL, NULL, NULL);
            return;
        }
        ck_assert_msg(st == DSQL_ENOMEM, "allocation %ld: %s: %s", n, dsql_status_name(st),
                      err.message);
        ck_assert_ptr_null(c.access_key_id);
    }
    ck_abort_msg("never succeeded");
}

/* One get() from a provider made by make; a failing make is a status too. */
static dsql_status get_once(dsql_credentials_provider *(*make)(dsql_error *), dsql_credentials *c,
                            dsql_error *err)
{
    memset(c, 0, sizeof *c);
    dsql_credentials_provider *p = make(err);
    if (!p)
        return err->status;
    dsql_status st = dsql_credentials_provider_get(p, c, err);
    dsql_credentials_provider_free(p);
    return st;
}
static dsql_status call_container(dsql_credentials *c, dsql_error *err)
{
    return get_once(dsql_credentials_provider_container, c, err);
}
static dsql_status call_imds(dsql_credentials *c, dsql_error *err)
{
    return get_once(dsql_credentials_provider_imds, c, err);
}
static dsql_status call_sts(dsql_credentials *c, dsql_error *err)
{
    dsql__assume_role_params p = {.role_arn = ROLE_R,
                                  .external_id = "x"};
    return dsql__sts_assume_role(&source_creds, &p, c, err);
}
static dsql_status call_sso(dsql_credentials *c, dsql_error *err)
{
    return dsql__sso_get_role_credentials("us-west-2", "sso-access-token", "1", "r", c, err);
}
static dsql_status call_web_identity(dsql_credentials *c, dsql_error *err)
{
    return get_once(dsql_credentials_provider_web_identity, c, err);
}

START_TEST(test_alloc_failures)
{
    container_env();
    imds_env();
    sts_env();
    setenv("AWS_ENDPOINT_URL_SSO", aws_server_url, 1);
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1", 1);
    alloc_loop(call_container);
    alloc_loop(call_imds);
    alloc_loop(call_sts);
    alloc_loop(call_sso);
    char path[] = "/tmp/dsql-web-token-XXXXXX";
    web_identity_env(path);
    alloc_loop(call_web_identity);
    unlink(path);
}
END_TEST

static Suite *http_creds_suite(void)
{
    Suite *s = suite_create("http_creds");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_url_parts);
    tcase_add_test(tc, test_http_https_to_plain_server_fails_tls);
    tcase_add_test(tc, test_http_body_cap);
    tcase_add_test(tc, test_http_header_injection_refused);
    tcase_add_test(tc, test_container_ok);
    tcase_add_test(tc, test_container_relative_uri_wins);
    tcase_add_test(tc, test_container_not_configured);
    tcase_add_test(tc, test_container_full_uri_host_rules);
    tcase_add_test(tc, test_container_auth_token);
    tcase_add_test(tc, test_container_500_retried_then_fails);
    tcase_add_test(tc, test_container_500_once_recovers);
    tcase_add_test(tc, test_container_404);
    tcase_add_test(tc, test_container_timeout);
    tcase_add_test(tc, test_container_slow_body);
    tcase_add_test(tc, test_container_truncated);
    tcase_add_test(tc, test_container_malformed_json);
    tcase_add_test(tc, test_container_wrong_content_type);
    tcase_add_test(tc, test_container_missing_field);
    tcase_add_test(tc, test_container_expired);
    tcase_add_test(tc, test_container_oversized);
    tcase_add_test(tc, test_imds_ok);
    tcase_add_test(tc, test_imds_disabled);
    tcase_add_test(tc, test_imds_no_role);
    tcase_add_test(tc, test_imds_unknown_role);
    tcase_add_test(tc, test_imds_token_500_once_recovers);
    tcase_add_test(tc, test_imds_creds_500_bounded);
    tcase_add_test(tc, test_imds_unreachable_not_retried);
    tcase_add_test(tc, test_imds_slow_creds);
    tcase_add_test(tc, test_imds_malformed_and_truncated);
    tcase_add_test(tc, test_imds_code_not_success);
    tcase_add_test(tc, test_imds_expired);
    tcase_add_test(tc, test_imds_v1_disabled);
    tcase_add_test(tc, test_imds_connection_refused);
    tcase_add_test(tc, test_sts_assume_role_signed);
    tcase_add_test(tc, test_sts_assume_role_with_session_token);
    tcase_add_test(tc, test_sts_generic_endpoint_env);
    tcase_add_test(tc, test_sts_bad_signature);
    tcase_add_test(tc, test_sts_500_retried);
    tcase_add_test(tc, test_sts_expired_token_code);
    tcase_add_test(tc, test_sts_malformed_xml);
    tcase_add_test(tc, test_sts_missing_credentials_element);
    tcase_add_test(tc, test_sts_doctype_refused);
    tcase_add_test(tc, test_sts_html_error_page);
    tcase_add_test(tc, test_sts_expired_credentials);
    tcase_add_test(tc, test_sts_timeout);
    tcase_add_test(tc, test_sts_invalid_input);
    tcase_add_test(tc, test_web_identity_provider);
    tcase_add_test(tc, test_web_identity_not_configured);
    tcase_add_test(tc, test_sso_ok);
    tcase_add_test(tc, test_sso_rejected_token);
    tcase_add_test(tc, test_sso_faults);
    tcase_add_test(tc, test_tls_untrusted_certificate);
    tcase_add_test(tc, test_tls_trusted_certificate);
    tcase_add_test(tc, test_ipv6_loopback);
    tcase_add_test(tc, test_concurrent_fetches);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (aws_server_start_clean() != 0)
        return EXIT_FAILURE;
    start_extra_servers();
    int failed = test_run_suite(http_creds_suite());
    aws_server_stop();
    stop_extra_servers();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
