/* The profile provider and the default chain end to end over the loopback
 * AWS test server (test/aws_test_server.py): multi-hop AssumeRole chains
 * signed hop by hop, credential_source, web_identity_token_file and SSO
 * profiles, and the cached default chain making no network call per token
 * after the first fetch (counted by the server). */
#include <openssl/evp.h>
#include <sys/stat.h>

#include "testutil.h"
#include "aws_server.h"
#include "internal.h"

static char tmpdir[256];

static void setup(void)
{
    aws_server_clean_env();
    test_clear_profile_env();
    setenv("AWS_ENDPOINT_URL_STS", aws_server_url, 1);
    setenv("AWS_ENDPOINT_URL_SSO", aws_server_url, 1);
    test_make_home(tmpdir, sizeof tmpdir, "dsql-profile-http");
    ck_assert_int_eq(aws_server_config("{}"), 0);
}

static void teardown(void)
{
    test_remove_tree(tmpdir);
}

static const char *write_file(const char *rel, const char *text)
{
    return test_write_file_in(tmpdir, rel, text, 0755);
}

static dsql_status profile_get(const char *name, dsql_credentials *c, dsql_error *err)
{
    dsql_credentials_provider *p = dsql_credentials_provider_profile(name, err);
    ck_assert_ptr_nonnull(p);
    dsql_status st = dsql_credentials_provider_get(p, c, err);
    dsql_credentials_provider_free(p);
    return st;
}

static void assert_server_creds(const dsql_credentials *c)
{
    ck_assert_str_eq(c->access_key_id, "ASIATESTACCESSKEY");
    ck_assert_str_eq(c->secret_access_key, "test/secret+access/key");
    ck_assert_str_eq(c->session_token, "test-session-token");
    int64_t left = c->expiration - dsql__now();
    ck_assert(left > 3500 && left <= 3601);
}

/* Loads profile `name`, which must succeed; with SERVER_CREDS, what it
 * gets must be the test server's credentials. */
#define SERVER_CREDS 1
#define ANY_CREDS 0
static void load_ok(const char *name, int server_creds)
{
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = profile_get(name, &c, &err);
    ck_assert_msg(st == DSQL_OK, "profile %s: %s: %s", name, dsql_status_name(st), err.message);
    if (server_creds)
        assert_server_creds(&c);
    dsql_credentials_clear(&c);
}

/* From now on the STS double accepts only requests signed with the
 * credentials it hands out itself (what a second hop signs with). */
static void sts_source_is_server(void)
{
    ck_assert_int_eq(aws_server_config("{\"sts_source_access_key_id\": \"ASIATESTACCESSKEY\", "
                                       "\"sts_source_secret_access_key\": "
                                       "\"test/secret+access/key\", "
                                       "\"sts_source_session_token\": \"test-session-token\"}"),
                     0);
}

static void assert_last_contains(const char *route, const char *field, const char *want)
{
    char *v = aws_server_last(route, field);
    ck_assert_msg(v && strstr(v, want), "%s %s: want %s in %s", route, field, want,
                  v ? v : "(none)");
    free(v);
}

START_TEST(test_role_chain_two_hops)
{
    /* every hop signs with the previous hop's credentials: the base keys are
     * the ones STS hands out, and the server checks each signature */
    sts_source_is_server();
    write_file(".aws/config",
               "[profile top]\nrole_arn = arn:aws:iam::123456789012:role/Top\n"
               "source_profile = mid\nexternal_id = ext-123\nrole_session_name = my-session\n"
               "duration_seconds = 1800\n"
               "[profile mid]\nrole_arn = arn:aws:iam::123456789012:role/Mid\n"
               "source_profile = base\n");
    write_file(".aws/credentials", "[base]\naws_access_key_id = ASIATESTACCESSKEY\n"
                                   "aws_secret_access_key = test/secret+access/key\n"
                                   "aws_session_token = test-session-token\n");
    load_ok("top", SERVER_CREDS);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 2);
    assert_last_contains("sts_assume_role", "body",
                         "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FTop");
    assert_last_contains("sts_assume_role", "body", "ExternalId=ext-123");
    assert_last_contains("sts_assume_role", "body", "RoleSessionName=my-session");
    assert_last_contains("sts_assume_role", "body", "DurationSeconds=1800");
}
END_TEST

START_TEST(test_role_one_hop_and_bad_source)
{
    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::123456789012:role/R\n"
                              "source_profile = src\n"
                              "[profile bad]\nrole_arn = arn:aws:iam::123456789012:role/R\n"
                              "source_profile = wrong\n"
                              "[profile envrole]\nrole_arn = arn:aws:iam::123456789012:role/E\n"
                              "credential_source = Environment\n");
    write_file(".aws/credentials", "[src]\naws_access_key_id = AKIDSOURCE\n"
                                   "aws_secret_access_key = source-secret\n"
                                   "[wrong]\naws_access_key_id = AKIDSOURCE\n"
                                   "aws_secret_access_key = not-the-secret\n");
    dsql_credentials c;
    dsql_error err = {0};
    load_ok("r", SERVER_CREDS);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1);
    dsql_status st = profile_get("bad", &c, &err);
    ck_assert_int_ne(st, DSQL_OK);
    ck_assert_msg(strstr(err.message, "STS") && !strstr(err.message, "not-the-secret"), "%s",
                  err.message);
    setenv("AWS_ACCESS_KEY_ID", "AKIDSOURCE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "source-secret", 1);
    load_ok("envrole", SERVER_CREDS);
    assert_last_contains("sts_assume_role", "body", "role%2FE");
}
END_TEST

START_TEST(test_credential_source_container_and_imds)
{
    /* the container / IMDS credentials are the server's own, so the
     * AssumeRole must be signed with those */
    sts_source_is_server();
    write_file(".aws/config", "[profile ecs]\nrole_arn = arn:aws:iam::123456789012:role/FromEcs\n"
                              "credential_source = EcsContainer\n"
                              "[profile ec2]\nrole_arn = arn:aws:iam::123456789012:role/FromEc2\n"
                              "credential_source = Ec2InstanceMetadata\n"
                              "[profile odd]\nrole_arn = arn:aws:iam::123456789012:role/X\n"
                              "credential_source = Somewhere\n");
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/creds", aws_server_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    dsql_credentials c;
    dsql_error err = {0};
    load_ok("ecs", SERVER_CREDS);
    ck_assert_int_eq(aws_server_count("ecs"), 1);
    assert_last_contains("sts_assume_role", "body", "role%2FFromEcs");
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws_server_url, 1);
    load_ok("ec2", ANY_CREDS);
    ck_assert_int_eq(aws_server_count("imds_creds"), 1);
    assert_last_contains("sts_assume_role", "body", "role%2FFromEc2");
    ck_assert_int_eq(profile_get("odd", &c, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "Somewhere"), "%s", err.message);
}
END_TEST


START_TEST(test_web_identity_profile)
{
    const char *tok = write_file("token.jwt", "web-identity-jwt");
    char cfg[1200];
    snprintf(cfg, sizeof cfg,
             "[profile w]\nrole_arn = arn:aws:iam::123456789012:role/W\n"
             "web_identity_token_file = %s\nrole_session_name = wsess\n"
             "[profile chained]\nrole_arn = arn:aws:iam::123456789012:role/C\n"
             "source_profile = w\n",
             tok);
    write_file(".aws/config", cfg);
    load_ok("w", SERVER_CREDS);
    ck_assert_int_eq(aws_server_count("sts_web_identity"), 1);
    assert_last_contains("sts_web_identity", "body", "RoleSessionName=wsess");
    /* web identity as the source of a role */
    sts_source_is_server();
    load_ok("chained", ANY_CREDS);
    ck_assert_int_eq(aws_server_count("sts_web_identity"), 1);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1);
}
END_TEST

static void write_sso_cache(const char *key, const char *json)
{
    unsigned char md[20];
    unsigned int n;
    EVP_Digest(key, strlen(key), md, &n, EVP_sha1(), NULL);
    char rel[128] = ".aws/sso/cache/";
    for (int i = 0; i < 20; i++)
        sprintf(rel + strlen(rel), "%02x", md[i]);
    strcat(rel, ".json");
    write_file(rel, json);
}

START_TEST(test_sso_profiles)
{
    write_file(".aws/config", "[profile s]\nsso_session = corp\nsso_account_id = 123456789012\n"
                              "sso_role_name = Dev\n"
                              "[sso-session corp]\nsso_region = us-east-1\n"
                              "sso_start_url = https://corp.awsapps.com/start\n"
                              "[profile legacy]\nsso_start_url = https://old.awsapps.com/start\n"
                              "sso_region = us-east-1\nsso_account_id = 210987654321\n"
                              "sso_role_name = Old\n");
    write_sso_cache("corp", "{\"accessToken\": \"sso-access-token\", \"expiresAt\": "
                            "\"2999-01-01T00:00:00Z\"}");
    write_sso_cache("https://old.awsapps.com/start",
                    "{\"accessToken\": \"sso-access-token\", \"expiresAt\": "
                    "\"2999-01-01T00:00:00Z\", \"startUrl\": \"https://old.awsapps.com/start\"}");
    dsql_credentials c;
    dsql_error err = {0};
    load_ok("s", SERVER_CREDS);
    assert_last_contains("sso", "path", "account_id=123456789012");
    assert_last_contains("sso", "path", "role_name=Dev");
    load_ok("legacy", ANY_CREDS);
    assert_last_contains("sso", "path", "role_name=Old");
    ck_assert_int_eq(aws_server_count("sso"), 2);
    /* a token the portal rejects */
    write_sso_cache("corp", "{\"accessToken\": \"stale\", \"expiresAt\": "
                            "\"2999-01-01T00:00:00Z\"}");
    ck_assert_int_ne(profile_get("s", &c, &err), DSQL_OK);
    ck_assert(!strstr(err.message, "stale"));
}
END_TEST

/* Fails the n-th allocation for every n until profile `name` loads: each
 * failure is DSQL_ENOMEM with nothing left allocated. Returns how many
 * allocations failed in turn. */
static long alloc_loop_profile(const char *name)
{
    dsql_status st = DSQL_ENOMEM;
    long n;
    test_use_failing_allocator();
    for (n = 1; st != DSQL_OK && n < 5000; n++) {
        dsql_credentials c;
        dsql_error err = {0};
        test_alloc_fail_nth(n);
        dsql_credentials_provider *p = dsql_credentials_provider_profile(name, &err);
        st = p ? dsql_credentials_provider_get(p, &c, &err) : err.status;
        dsql_credentials_provider_free(p);
        if (st == DSQL_OK)
            dsql_credentials_clear(&c);
        ck_assert_msg(st == DSQL_OK || st == DSQL_ENOMEM, "profile %s, allocation %ld: %s: %s",
                      name, n, dsql_status_name(st), err.message);
        ck_assert_msg(test_alloc_live() == 0, "profile %s: leak after failing allocation %ld",
                      name, n);
    }
    dsql_set_allocator(NULL, NULL, NULL);
    ck_assert_int_eq(st, DSQL_OK);
    return n - 2;
}

START_TEST(test_profile_allocation_failures)
{
    /* the profile paths end to end: a two-hop role chain, a web identity
     * profile as a role's source, an SSO profile (its token cache file) */
    sts_source_is_server();
    const char *tok = write_file("token.jwt", "web-identity-jwt");
    char cfg[1500];
    snprintf(cfg, sizeof cfg,
             "[profile top]\nrole_arn = arn:aws:iam::123456789012:role/Top\n"
             "source_profile = mid\n"
             "[profile mid]\nrole_arn = arn:aws:iam::123456789012:role/Mid\n"
             "source_profile = base\n"
             "[profile w]\nrole_arn = arn:aws:iam::123456789012:role/W\n"
             "web_identity_token_file = %s\n"
             "[profile chained]\nrole_arn = arn:aws:iam::123456789012:role/C\n"
             "source_profile = w\n"
             "[profile s]\nsso_session = corp\nsso_account_id = 123456789012\n"
             "sso_role_name = Dev\n"
             "[sso-session corp]\nsso_region = us-east-1\n"
             "sso_start_url = https://corp.awsapps.com/start\n",
             tok);
    write_file(".aws/config", cfg);
    write_file(".aws/credentials", "[base]\naws_access_key_id = ASIATESTACCESSKEY\n"
                                   "aws_secret_access_key = test/secret+access/key\n"
                                   "aws_session_token = test-session-token\n");
    write_sso_cache("corp", "{\"accessToken\": \"sso-access-token\", \"expiresAt\": "
                            "\"2999-01-01T00:00:00Z\"}");
    const char *names[] = {"top", "chained", "s"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        long failed = alloc_loop_profile(names[i]);
        ck_assert_msg(failed > 10, "profile %s: only %ld allocations", names[i], failed);
    }
}
END_TEST

static void tokens_through_default(const char *profile, int n)
{
    dsql_error err = {0};
    dsql_token_provider *tp =
        dsql_token_provider_signing(dsql_credentials_provider_default(profile, &err), NULL, &err);
    ck_assert_ptr_nonnull(tp);
    dsql_token_request req = {DSQL_STRUCT_VERSION,
                              "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "admin", NULL,
                              0, 0};
    char buf[8192];
    for (int i = 0; i < n; i++) {
        size_t len;
        ck_assert_msg(dsql_token_provider_get(tp, &req, buf, sizeof buf, &len, &err) ==
                          DSQL_OK,
                      "%s", err.message);
    }
    dsql_token_provider_free(tp);
}

START_TEST(test_default_chain_no_network_per_token)
{
    /* container */
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/creds", aws_server_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    tokens_through_default(NULL, 1000);
    ck_assert_int_eq(aws_server_count("ecs"), 1);
    ck_assert_int_eq(aws_server_total(), 1);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    /* IMDS */
    ck_assert_int_eq(aws_server_config("{}"), 0);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws_server_url, 1);
    tokens_through_default(NULL, 1000);
    ck_assert_int_eq(aws_server_count("imds_creds"), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    /* an explicit profile with a role: one AssumeRole */
    ck_assert_int_eq(aws_server_config("{}"), 0);
    write_file(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::123456789012:role/R\n"
                              "source_profile = src\n");
    write_file(".aws/credentials", "[src]\naws_access_key_id = AKIDSOURCE\n"
                                   "aws_secret_access_key = source-secret\n");
    setenv("AWS_ACCESS_KEY_ID", "AKIDIGNORED", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ignored", 1);
    tokens_through_default("r", 1000);
    ck_assert_int_eq(aws_server_count("sts_assume_role"), 1);
    ck_assert_int_eq(aws_server_total(), 1);
}
END_TEST

START_TEST(test_process_runs_once_for_many_tokens)
{
    char script[1024];
    snprintf(script, sizeof script,
             "#!/bin/sh\necho run >> '%s/runs'\n"
             "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDP\", \"SecretAccessKey\": \"s\", "
             "\"Expiration\": \"2999-01-01T00:00:00Z\"}'\n",
             tmpdir);
    const char *path = write_file("proc.sh", script);
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "[default]\ncredential_process = %s\n", path);
    write_file(".aws/config", cfg);
    tokens_through_default(NULL, 1000);
    char runs[300];
    snprintf(runs, sizeof runs, "%s/runs", tmpdir);
    size_t n = 0;
    FILE *f = fopen(runs, "r");
    ck_assert_ptr_nonnull(f);
    for (int ch; (ch = fgetc(f)) != EOF;)
        n += ch == '\n';
    fclose(f);
    ck_assert_uint_eq(n, 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("creds_profile_http");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_role_chain_two_hops);
    tcase_add_test(tc, test_role_one_hop_and_bad_source);
    tcase_add_test(tc, test_credential_source_container_and_imds);
    tcase_add_test(tc, test_web_identity_profile);
    tcase_add_test(tc, test_sso_profiles);
    tcase_add_test(tc, test_profile_allocation_failures);
    tcase_add_test(tc, test_default_chain_no_network_per_token);
    tcase_add_test(tc, test_process_runs_once_for_many_tokens);
    suite_add_tcase(s, tc);
    return s;
}

AWS_SERVER_TEST_MAIN(suite)
