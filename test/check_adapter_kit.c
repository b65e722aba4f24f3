/* The adapter kit (dsqlauth/adapter.h): errors, a resolved view of a const
 * configuration, the token request and the token for one resolved host,
 * the system CA bundle. */
#include <unistd.h>

#include "testutil.h"
#include "dsqlauth/adapter.h"

#define EP "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

/* A provider that records the request and answers "tok:<host>". */
static dsql_token_request seen;
static char seen_host[256], seen_user[64], seen_region[64];

static dsql_status record_token(void *self, const dsql_token_request *req, char *buf,
                                size_t cap, size_t *len, dsql_error *err)
{
    (void)self;
    (void)err;
    seen = *req;
    snprintf(seen_host, sizeof seen_host, "%s", req->hostname ? req->hostname : "");
    snprintf(seen_user, sizeof seen_user, "%s", req->user ? req->user : "");
    snprintf(seen_region, sizeof seen_region, "%s", req->region ? req->region : "");
    int n = snprintf(buf, cap, "tok:%s", req->hostname);
    *len = (size_t)n;
    if ((size_t)n >= cap) {
        buf[0] = '\0';
        return DSQL_EBUFSIZE;
    }
    return DSQL_OK;
}
static const dsql_token_provider_vtable RECORD_VT = {DSQL_STRUCT_VERSION, record_token, NULL};

static dsql_config *resolved(const char *conninfo)
{
    dsql_error err;
    dsql_config *cfg = dsql_config_new(NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_msg(dsql_config_parse(cfg, conninfo, &err) == DSQL_OK, "%s", err.message);
    ck_assert_msg(dsql_config_resolve(cfg, &err) == DSQL_OK, "%s", err.message);
    return cfg;
}

START_TEST(error_set_fills_and_returns_the_status)
{
    dsql_error err = {DSQL_OK, "40001", "old"};
    ck_assert_int_eq(dsql_error_set(&err, DSQL_ECONFIG, "bad %s %d", "port", 7), DSQL_ECONFIG);
    ck_assert_int_eq(err.status, DSQL_ECONFIG);
    ck_assert_str_eq(err.sqlstate, "");
    ck_assert_str_eq(err.message, "bad port 7");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dsql_error_set(&err, DSQL_EINVAL, "%s", big); /* cut to fit, NUL-terminated */
    ck_assert_uint_eq(strlen(err.message), sizeof err.message - 1);
    ck_assert_int_eq(dsql_error_set(NULL, DSQL_ENOMEM, "ignored"), DSQL_ENOMEM);
}
END_TEST

START_TEST(resolve_view_never_writes_to_the_callers_configuration)
{
    dsql_error err;
    const dsql_config *view;
    dsql_config *own;
    /* resolved: the caller's own, nothing to free */
    dsql_config *cfg = resolved("host=" EP " user=app");
    ck_assert_int_eq(dsql_config_resolve_view(cfg, &view, &own, &err), DSQL_OK);
    ck_assert_ptr_eq(view, cfg);
    ck_assert_ptr_null(own);
    dsql_config_free(cfg);
    /* not resolved: a resolved copy, the caller's left unresolved */
    cfg = dsql_config_new(NULL);
    ck_assert_int_eq(dsql_config_parse(cfg, "host=" EP " user=app", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_resolve_view(cfg, &view, &own, &err), DSQL_OK);
    ck_assert_ptr_eq(view, own);
    ck_assert_ptr_ne(view, cfg);
    ck_assert_uint_eq(dsql_config_host_count(view), 1);
    ck_assert_uint_eq(dsql_config_host_count(cfg), 0);
    dsql_config_free(own);
    /* the copy meets dsql_config_resolve's rules, the TLS rule included */
    ck_assert_int_eq(dsql_config_set(cfg, "sslmode", "require", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_resolve_view(cfg, &view, &own, &err), DSQL_ECONFIG);
    ck_assert_ptr_null(view);
    ck_assert_ptr_null(own);
    ck_assert_msg(strstr(err.message, "weaker than verify-full"), "%s", err.message);
    ck_assert_int_eq(dsql_config_resolve_view(NULL, &view, &own, &err), DSQL_EINVAL);
    ck_assert_int_eq(dsql_config_resolve_view(cfg, NULL, &own, &err), DSQL_EINVAL);
    dsql_config_free(cfg);
}
END_TEST

START_TEST(request_for_host_takes_the_hosts_name_and_the_configuration)
{
    dsql_config *cfg = resolved("host=" EP ",h2.example hostaddr=127.0.0.1,127.0.0.2 "
                                "signing_host=" EP ",other.dsql.eu-west-1.on.aws "
                                "user=app token_duration_secs=300");
    dsql_token_request req;
    dsql_error err;
    ck_assert_int_eq(dsql_token_request_for_host(cfg, 1, &req, &err), DSQL_OK);
    ck_assert_int_eq(req.version, DSQL_STRUCT_VERSION);
    ck_assert_str_eq(req.hostname, "other.dsql.eu-west-1.on.aws");
    ck_assert_str_eq(req.user, "app");
    ck_assert_str_eq(req.region, "eu-west-1");
    ck_assert_uint_eq(req.expires_in, 300);
    ck_assert_int_eq(req.now, 0);
    ck_assert_int_eq(dsql_token_request_for_host(cfg, 2, &req, &err), DSQL_EINVAL);
    ck_assert_int_eq(dsql_token_request_for_host(cfg, 0, NULL, &err), DSQL_EINVAL);
    dsql_config_free(cfg);
}
END_TEST

START_TEST(token_for_host_is_the_providers_answer_for_that_host)
{
    dsql_config *cfg = resolved("host=" EP " user=reader");
    dsql_token_provider *tp = dsql_token_provider_new(&RECORD_VT, NULL, NULL);
    char *token = (char *)"not touched";
    size_t len = 99;
    dsql_error err;
    ck_assert_int_eq(dsql_token_get_for_host(tp, cfg, 0, &token, &len, &err), DSQL_OK);
    ck_assert_str_eq(token, "tok:" EP);
    ck_assert_uint_eq(len, strlen("tok:" EP));
    ck_assert_str_eq(seen_host, EP);
    ck_assert_str_eq(seen_user, "reader");
    ck_assert_str_eq(seen_region, "us-east-1");
    ck_assert_uint_eq(seen.expires_in, 900); /* the configuration's default */
    dsql_token_free(token);
    /* out of range: no token, nothing asked */
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(dsql_token_get_for_host(tp, cfg, 1, &token, &len, &err), DSQL_EINVAL);
    ck_assert_ptr_null(token);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(seen.version, 0);
    /* an unresolved configuration is refused */
    dsql_config *raw = dsql_config_new(NULL);
    ck_assert_int_eq(dsql_config_parse(raw, EP, &err), DSQL_OK);
    ck_assert_int_eq(dsql_token_get_for_host(tp, raw, 0, &token, NULL, &err), DSQL_EINVAL);
    ck_assert_ptr_null(token);
    ck_assert_int_eq(dsql_token_get_for_host(tp, cfg, 0, NULL, NULL, &err), DSQL_EINVAL);
    dsql_config_free(raw);
    dsql_token_provider_free(tp);
    dsql_config_free(cfg);
}
END_TEST

START_TEST(ca_bundle_prefers_a_readable_ssl_cert_file)
{
    char dir[] = "/tmp/dsql-kit-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a real bundle\n", f);
    fclose(f);
    setenv("SSL_CERT_FILE", path, 1);
    ck_assert_str_eq(dsql_ca_bundle_find(), path);
    /* unreadable or missing: the system locations instead */
    setenv("SSL_CERT_FILE", "/nonexistent/ca.pem", 1);
    const char *found = dsql_ca_bundle_find();
    ck_assert(found == NULL || strcmp(found, "/nonexistent/ca.pem") != 0);
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        ck_assert_str_eq(found, "/etc/ssl/certs/ca-certificates.crt");
    unsetenv("SSL_CERT_FILE");
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *kit_suite(void)
{
    Suite *s = suite_create("adapter kit");
    TCase *t = tcase_create("kit");
    tcase_add_test(t, error_set_fills_and_returns_the_status);
    tcase_add_test(t, resolve_view_never_writes_to_the_callers_configuration);
    tcase_add_test(t, request_for_host_takes_the_hosts_name_and_the_configuration);
    tcase_add_test(t, token_for_host_is_the_providers_answer_for_that_host);
    tcase_add_test(t, ca_bundle_prefers_a_readable_ssl_cert_file);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
