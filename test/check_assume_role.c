/* dsql_credentials_provider_assume_role over the loopback AWS test server
 * (test/aws_test_server.py), whose STS double checks every AssumeRole
 * request's SigV4 signature against the source credentials: the request's
 * fields, caching per role, refresh ahead of expiry, and option checks. */
#include "testutil.h"
#include "aws_server.h"
#include "internal.h"

#define ROLE_A "arn:aws:iam::123456789012:role/TenantA"
#define ROLE_B "arn:aws:iam::123456789012:role/TenantB"

static dsql_credentials_provider *source;

static void setup(void)
{
    aws_server_clean_env();
    setenv("AWS_ENDPOINT_URL_STS", aws_server_url, 1);
    ck_assert_int_eq(aws_server_config("{}"), 0);
    /* what the STS double expects AssumeRole to be signed with */
    dsql_credentials src = {"AKIDSOURCE", "source-secret", NULL, 0};
    source = dsql_credentials_provider_static(&src, NULL);
    ck_assert_ptr_nonnull(source);
}

static void teardown(void)
{
    dsql_credentials_provider_free(source);
    source = NULL;
}

static void assert_last_contains(const char *field, const char *want)
{
    char *v = aws_server_last("sts_assume_role", field);
    ck_assert_msg(v && strstr(v, want), "%s: want %s in %s", field, want, v ? v : "(none)");
    free(v);
}

static dsql_credentials_provider *role(const char *arn, dsql_credentials_provider *src)
{
    dsql_assume_role_options o;
    dsql_assume_role_options_init(&o);
    o.role_arn = arn;
    dsql_error err = {0};
    dsql_credentials_provider *p = dsql_credentials_provider_assume_role(src, &o, &err);
    ck_assert_msg(p != NULL, "%s", err.message);
    return p;
}

static void get_ok(dsql_credentials_provider *p)
{
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql_credentials_provider_get(p, &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s: %s", dsql_status_name(st), err.message);
    ck_assert_str_eq(c.access_key_id, "ASIATESTACCESSKEY");
    ck_assert_str_eq(c.session_token, "test-session-token");
    ck_assert(c.expiration > dsql__now());
    dsql_credentials_clear(&c);
}

START_TEST(test_signed_request_carries_every_option)
{
    const char *policies[] = {"arn:aws:iam::aws:policy/ReadOnlyAccess",
                              "arn:aws:iam::123456789012:policy/dsql-connect"};
    dsql_assume_role_options o;
    dsql_assume_role_options_init(&o);
    o.role_arn = ROLE_A;
    o.role_session_name = "tenant-a@lambda";
    o.external_id = "ext-42";
    o.duration_seconds = 1800;
    o.policy_arns = policies;
    o.policy_arn_count = 2;
    o.region = "eu-west-1";
    dsql_error err = {0};
    dsql_credentials_provider *p = dsql_credentials_provider_assume_role(source, &o, &err);
    ck_assert_msg(p != NULL, "%s", err.message);
    get_ok(p);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1);
    assert_last_contains("body", "Action=AssumeRole&");
    assert_last_contains("body", "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FTenantA");
    assert_last_contains("body", "RoleSessionName=tenant-a%40lambda");
    assert_last_contains("body", "ExternalId=ext-42");
    assert_last_contains("body", "DurationSeconds=1800");
    assert_last_contains("body", "PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy"
                                 "%2FReadOnlyAccess");
    assert_last_contains("body", "PolicyArns.member.2.arn=arn%3Aaws%3Aiam%3A%3A123456789012"
                                 "%3Apolicy%2Fdsql-connect");
    assert_last_contains("headers.Authorization", "/eu-west-1/sts/aws4_request");
    dsql_credentials_provider_free(p);
}
END_TEST

START_TEST(test_region_from_the_environment_and_default)
{
    setenv("AWS_REGION", "ap-southeast-2", 1);
    dsql_credentials_provider *p = role(ROLE_A, source);
    get_ok(p);
    assert_last_contains("headers.Authorization", "/ap-southeast-2/sts/aws4_request");
    dsql_credentials_provider_free(p);
    unsetenv("AWS_REGION");
    p = role(ROLE_A, source);
    get_ok(p);
    assert_last_contains("headers.Authorization", "/us-east-1/sts/aws4_request");
    assert_last_contains("body", "RoleSessionName=dsqlauth-"); /* generated */
    dsql_credentials_provider_free(p);
}
END_TEST

START_TEST(test_each_role_cached_separately)
{
    dsql_credentials_provider *a = role(ROLE_A, source), *b = role(ROLE_B, source);
    for (int i = 0; i < 5; i++) {
        get_ok(a);
        get_ok(b);
    }
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 2); /* one per role */
    dsql_credentials_provider_free(a);
    dsql_credentials_provider_free(b);
}
END_TEST

START_TEST(test_refreshed_before_expiry)
{
    /* credentials that expire within the cache's mandatory window (60 s)
       are fetched again on every get, as the chain's are */
    ck_assert_int_eq(aws_server_config("{\"expires_in\": 30}"), 0);
    dsql_credentials_provider *a = role(ROLE_A, source);
    get_ok(a);
    get_ok(a);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 2);
    ck_assert_int_eq(aws_server_config("{\"expires_in\": 3600}"), 0);
    get_ok(a);
    get_ok(a);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1); /* counts reset by config */
    dsql_credentials_provider_free(a);
}
END_TEST

START_TEST(test_wrong_source_is_refused_without_leaking_it)
{
    dsql_credentials bad = {"AKIDSOURCE", "not-the-source-secret", NULL, 0};
    dsql_credentials_provider *src = dsql_credentials_provider_static(&bad, NULL);
    dsql_credentials_provider *p = role(ROLE_A, src);
    dsql_credentials c;
    dsql_error err = {0};
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_ECREDENTIALS);
    ck_assert_msg(strstr(err.message, "SignatureDoesNotMatch") &&
                      !strstr(err.message, "not-the-source-secret"),
                  "%s", err.message);
    dsql_credentials_provider_free(p);
    dsql_credentials_provider_free(src);
}
END_TEST

START_TEST(test_bad_options_name_the_field)
{
    const char *eleven[11];
    for (int i = 0; i < 11; i++)
        eleven[i] = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    const char *not_arn[] = {"ReadOnlyAccess"};
    struct {
        const char *field;
        dsql_status st;
        dsql_assume_role_options o;
    } cases[] = {
        {"role_arn", DSQL_EINVAL, {.version = DSQL_STRUCT_VERSION}},
        {"role_arn", DSQL_EINVAL, {.version = DSQL_STRUCT_VERSION, .role_arn = "TenantA"}},
        {"version", DSQL_EINVAL, {.version = 0, .role_arn = ROLE_A}},
        {"role_session_name", DSQL_ECONFIG,
         {.version = DSQL_STRUCT_VERSION, .role_arn = ROLE_A, .role_session_name = "a b"}},
        {"duration_seconds", DSQL_ECONFIG,
         {.version = DSQL_STRUCT_VERSION, .role_arn = ROLE_A, .duration_seconds = 100}},
        {"policy_arn_count", DSQL_EINVAL,
         {.version = DSQL_STRUCT_VERSION, .role_arn = ROLE_A, .policy_arns = eleven,
          .policy_arn_count = 11}},
        {"policy_arns[0]", DSQL_EINVAL,
         {.version = DSQL_STRUCT_VERSION, .role_arn = ROLE_A, .policy_arns = not_arn,
          .policy_arn_count = 1}},
        {"region", DSQL_ECONFIG,
         {.version = DSQL_STRUCT_VERSION, .role_arn = ROLE_A, .region = "not a region"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsql_error err = {0};
        ck_assert_ptr_null(dsql_credentials_provider_assume_role(source, &cases[i].o, &err));
        ck_assert_msg(err.status == cases[i].st && strstr(err.message, cases[i].field),
                      "case %zu: want %s naming %s, got %s: %s", i,
                      dsql_status_name(cases[i].st), cases[i].field,
                      dsql_status_name(err.status), err.message);
    }
    dsql_error err = {0};
    ck_assert_ptr_null(dsql_credentials_provider_assume_role(source, NULL, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 0);
}
END_TEST

/* Every allocation of making the provider, assuming the role (request,
 * signature, XML) and caching fails in turn: DSQL_ENOMEM, nothing leaked. */
START_TEST(test_allocation_failures)
{
    const char *policies[] = {"arn:aws:iam::aws:policy/ReadOnlyAccess"};
    dsql_status st = DSQL_ENOMEM;
    long n;
    test_use_failing_allocator();
    for (n = 1; st != DSQL_OK && n < 5000; n++) {
        dsql_assume_role_options o;
        dsql_assume_role_options_init(&o);
        o.role_arn = ROLE_A;
        o.external_id = "ext";
        o.policy_arns = policies;
        o.policy_arn_count = 1;
        dsql_credentials src = {"AKIDSOURCE", "source-secret", NULL, 0}, c;
        dsql_error err = {0};
        test_alloc_fail_nth(n);
        dsql_credentials_provider *s = dsql_credentials_provider_static(&src, &err);
        dsql_credentials_provider *p = s ? dsql_credentials_provider_assume_role(s, &o, &err)
                                         : NULL;
        st = p ? dsql_credentials_provider_get(p, &c, &err) : err.status;
        dsql_credentials_provider_free(p);
        dsql_credentials_provider_free(s);
        if (st == DSQL_OK)
            dsql_credentials_clear(&c);
        ck_assert_msg(st == DSQL_OK || st == DSQL_ENOMEM, "allocation %ld: %s: %s", n,
                      dsql_status_name(st), err.message);
        ck_assert_msg(test_alloc_live() == 0, "leak after failing allocation %ld", n);
    }
    dsql_set_allocator(NULL, NULL, NULL);
    ck_assert_int_eq(st, DSQL_OK);
    ck_assert_msg(n > 12, "only %ld allocations", n - 2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("assume_role");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_signed_request_carries_every_option);
    tcase_add_test(tc, test_region_from_the_environment_and_default);
    tcase_add_test(tc, test_each_role_cached_separately);
    tcase_add_test(tc, test_refreshed_before_expiry);
    tcase_add_test(tc, test_wrong_source_is_refused_without_leaking_it);
    tcase_add_test(tc, test_bad_options_name_the_field);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

AWS_SERVER_TEST_MAIN(suite)
