/* Credential files readable by group or others: loading them still works,
 * but a warning naming the file and its mode goes to the log callback
 * (never the secret itself); private files, files without secrets and
 * absent files stay silent. The same for the SSO token cache
 * (~/.aws/sso/cache/<sha1>.json), exercised end to end against the loopback
 * AWS test server (test/aws_test_server.py); web identity token files are
 * deliberately not checked (doc/SECURITY.md says why). */
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "aws_server.h"

#define SECRET "PeRmSsEcReTwJalrXUtnFEMIK7MDENGbPxRfiCY"
#define SESSION "PeRmSsEsSiOnToKeN//////////wEaCXVzLWVhc3Qt"
#define SSO_ACCESS "PeRmSsSoAcCeSsToKeN-aoa1Zk9Xq2R7uVw3YbC"
#define SSO_REFRESH "PeRmSsSoReFrEsHtOkEn-Aorf8Hj2Lm4Np6Qs8T"
#define WEB_TOKEN "PeRmSwEbIdEnTiTyJwT.eyJzdWIiOiJzeXN0ZW0ifQ.c2ln"

static char tmpdir[256];
static char logbuf[8192];

static void capture_log(dsql_log_level level, const char *message, void *userdata)
{
    (void)userdata;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%d:%s\n", (int)level, message);
}

static void setup(void)
{
    test_make_home(tmpdir, sizeof tmpdir, "dsql-perms");
    test_clear_profile_env();
    aws_server_clean_env();
    logbuf[0] = '\0';
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
}

static void teardown(void)
{
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    test_remove_tree(tmpdir);
}

/* Writes tmpdir/rel with the given mode (chmod, so the umask does not
 * matter); returns the path (static). */
static const char *put(const char *rel, const char *text, mode_t mode)
{
    return test_write_file_in(tmpdir, rel, text, mode);
}

/* Loads profile `name` through the public API; returns the status. */
static dsql_status load(const char *name)
{
    dsql_error err = {0};
    dsql_credentials c;
    dsql_credentials_provider *p = dsql_credentials_provider_profile(name, &err);
    ck_assert_ptr_nonnull(p);
    dsql_status st = dsql_credentials_provider_get(p, &c, &err);
    if (st == DSQL_OK) {
        ck_assert_str_eq(c.secret_access_key, SECRET);
        dsql_credentials_clear(&c);
    }
    dsql_credentials_provider_free(p);
    return st;
}

static void assert_no_secret_logged(void)
{
    static const char *const secrets[] = {SECRET, SESSION, SSO_ACCESS, SSO_REFRESH, WEB_TOKEN};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        ck_assert_msg(!strstr(logbuf, secrets[i]), "secret %zu logged:\n%s", i, logbuf);
}

/* How many times `needle` occurs in the captured log. */
static int log_count(const char *needle)
{
    int n = 0;
    for (const char *p = logbuf; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static const char creds_text[] = "[default]\naws_access_key_id = AKIAPERMS\n"
                                 "aws_secret_access_key = " SECRET "\n"
                                 "aws_session_token = " SESSION "\n";

START_TEST(test_world_readable_credentials_warn)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0666, 0606};
    const char *path = put(".aws/credentials", creds_text, modes[_i]);
    char want[600];
    ck_assert_int_eq(load("default"), DSQL_OK);
    snprintf(want, sizeof want, "%d:profile file %s holds credentials but is accessible to group or others (mode %04o)",
             (int)DSQL_LOG_WARN, path, (unsigned)modes[_i]);
    ck_assert_msg(strstr(logbuf, want), "want \"%s\" in log:\n%s", want, logbuf);
    assert_no_secret_logged();
}
END_TEST

START_TEST(test_private_credentials_silent)
{
    static const mode_t modes[] = {0600, 0400, 0700};
    put(".aws/credentials", creds_text, modes[_i]);
    ck_assert_int_eq(load("default"), DSQL_OK);
    ck_assert_msg(!strstr(logbuf, "accessible to group or others"), "%s", logbuf);
}
END_TEST

/* A readable config file with only settings is normal (the AWS CLI's
 * config is often 0644): no warning. With keys in it: a warning. */
START_TEST(test_config_file)
{
    put(".aws/credentials", creds_text, 0600);
    put(".aws/config", "[default]\nregion = us-east-1\noutput = json\n", 0644);
    ck_assert_int_eq(load("default"), DSQL_OK);
    ck_assert_msg(!strstr(logbuf, "accessible to group or others"), "%s", logbuf);

    unlink(put(".aws/credentials", "", 0600));
    const char *path = put(".aws/config",
                           "[profile k]\naws_access_key_id = AKIAPERMS\n"
                           "AWS_Secret_Access_Key = " SECRET "\n",
                           0644);
    logbuf[0] = '\0';
    ck_assert_int_eq(load("k"), DSQL_OK);
    ck_assert_msg(strstr(logbuf, path) && strstr(logbuf, "(mode 0644)"), "%s", logbuf);
    assert_no_secret_logged();
}
END_TEST

/* AWS_SHARED_CREDENTIALS_FILE names the file the warning is about. */
START_TEST(test_env_named_file)
{
    const char *path = put("shared-creds", creds_text, 0644);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    ck_assert_int_eq(load("default"), DSQL_OK);
    ck_assert_msg(strstr(logbuf, path) && strstr(logbuf, "chmod 600"), "%s", logbuf);
    assert_no_secret_logged();
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}
END_TEST

/* The warning goes to the log callback only: the error/status path is
 * unchanged, and with logging at ERROR level nothing is delivered. */
START_TEST(test_warning_level)
{
    put(".aws/credentials", creds_text, 0644);
    dsql_set_log_handler(capture_log, DSQL_LOG_ERROR, NULL);
    ck_assert_int_eq(load("default"), DSQL_OK);
    ck_assert_str_eq(logbuf, "");
}
END_TEST

/* ---- SSO token cache -------------------------------------------------- */

/* An SSO profile (sso-session "corp") in a 0644 config that holds no
 * secret, a cache file for it with the given mode and JSON, and the test
 * server set to accept SSO_ACCESS and to return SECRET / SESSION. Returns
 * the cache file's path (static). */
static const char *sso_setup(const char *cache_json, mode_t mode)
{
    setenv("AWS_ENDPOINT_URL_SSO", aws_server_url, 1);
    ck_assert_int_eq(aws_server_config("{\"sso_token\": \"" SSO_ACCESS "\", "
                                       "\"secret_access_key\": \"" SECRET "\", "
                                       "\"session_token\": \"" SESSION "\"}"),
                     0);
    put(".aws/config",
        "[profile s]\nsso_session = corp\nsso_account_id = 123456789012\n"
        "sso_role_name = Dev\n[sso-session corp]\nsso_region = us-east-1\n"
        "sso_start_url = https://corp.awsapps.com/start\n",
        0644);
    unsigned char md[20];
    unsigned int n = 0;
    ck_assert(EVP_Digest("corp", 4, md, &n, EVP_sha1(), NULL) && n == 20);
    char rel[128] = ".aws/sso/cache/";
    for (int i = 0; i < 20; i++)
        sprintf(rel + strlen(rel), "%02x", md[i]);
    strcat(rel, ".json");
    const char *path = put(rel, cache_json, mode);
    logbuf[0] = '\0';
    return path;
}

static const char sso_cache_json[] =
    "{\"startUrl\": \"https://corp.awsapps.com/start\", \"region\": \"us-east-1\", "
    "\"accessToken\": \"" SSO_ACCESS "\", \"expiresAt\": \"2999-01-01T00:00:00Z\", "
    "\"clientId\": \"cid\", \"clientSecret\": \"csec\", "
    "\"refreshToken\": \"" SSO_REFRESH "\"}";

static void want_sso_warning(const char *path, mode_t mode)
{
    char want[700];
    snprintf(want, sizeof want,
             "%d:SSO token cache file %s holds an SSO token but is accessible to group or "
             "others (mode %04o); restrict it with chmod 600\n",
             (int)DSQL_LOG_WARN, path, (unsigned)mode);
    ck_assert_msg(log_count(want) == 1, "want \"%s\" once in log:\n%s", want, logbuf);
}

/* A group/world-readable cache file: credentials still come (the SSO call
 * is made with the cached token), one warning naming the file and mode, and
 * no log line, at DEBUG, carries the access or refresh token. */
START_TEST(test_sso_cache_exposed_warns)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0666};
    const char *path = sso_setup(sso_cache_json, modes[_i]);
    ck_assert_int_eq(load("s"), DSQL_OK);
    ck_assert_int_eq(aws_server_count("sso"), 1);
    want_sso_warning(path, modes[_i]);
    ck_assert_int_eq(log_count("accessible to group or others"), 1); /* the config: silent */
    assert_no_secret_logged();
}
END_TEST

START_TEST(test_sso_cache_private_silent)
{
    static const mode_t modes[] = {0600, 0400};
    sso_setup(sso_cache_json, modes[_i]);
    ck_assert_int_eq(load("s"), DSQL_OK);
    ck_assert_int_eq(aws_server_count("sso"), 1);
    ck_assert_msg(!strstr(logbuf, "accessible to group or others"), "%s", logbuf);
    assert_no_secret_logged();
}
END_TEST

/* The warning is about the file, not about the token being usable: an
 * expired access token next to a refresh token is still a secret on disk
 * (no SSO call is made; the error says to log in again). */
START_TEST(test_sso_cache_expired_still_warns)
{
    const char *path = sso_setup("{\"accessToken\": \"" SSO_ACCESS "\", \"expiresAt\": "
                                 "\"2000-01-01T00:00:00Z\", \"refreshToken\": \"" SSO_REFRESH
                                 "\"}",
                                 0644);
    ck_assert_int_eq(load("s"), DSQL_EEXPIRED);
    ck_assert_int_eq(aws_server_count("sso"), 0);
    want_sso_warning(path, 0644);
    assert_no_secret_logged();
}
END_TEST

/* Once per read of the file, as for the profile files: each resolution by
 * the profile provider reads the cache (one warning each); behind the
 * credential cache, tokens minted while the credentials are fresh read
 * nothing and warn no more. */
START_TEST(test_sso_cache_warning_per_read)
{
    const char *path = sso_setup(sso_cache_json, 0644);
    dsql_error err = {0};
    dsql_credentials c;
    dsql_credentials_provider *p = dsql_credentials_provider_profile("s", &err);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_OK);
        dsql_credentials_clear(&c);
    }
    dsql_credentials_provider_free(p);
    ck_assert_int_eq(log_count("accessible to group or others"), 2);

    logbuf[0] = '\0';
    p = dsql_credentials_provider_profile("s", &err);
    ck_assert_ptr_nonnull(p);
    dsql_credentials_provider *cached = dsql_credentials_provider_cached(p, &err);
    ck_assert_ptr_nonnull(cached);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(dsql_credentials_provider_get(cached, &c, &err), DSQL_OK);
        dsql_credentials_clear(&c);
    }
    dsql_credentials_provider_free(cached);
    want_sso_warning(path, 0644);
    assert_no_secret_logged();
}
END_TEST

/* The warning follows the log level like the profile-file one. */
START_TEST(test_sso_cache_warning_level)
{
    sso_setup(sso_cache_json, 0644);
    dsql_set_log_handler(capture_log, DSQL_LOG_ERROR, NULL);
    ck_assert_int_eq(load("s"), DSQL_OK);
    ck_assert_str_eq(logbuf, "");
}
END_TEST

/* ---- web identity: not checked (by design) ----------------------------- */

/* Kubernetes projects service-account tokens 0644 on a read-only volume:
 * no warning (the AWS SDKs give none either), and the token is not logged. */
START_TEST(test_web_identity_token_file_silent)
{
    setenv("AWS_ENDPOINT_URL_STS", aws_server_url, 1);
    ck_assert_int_eq(aws_server_config("{\"web_identity_token\": \"" WEB_TOKEN "\", "
                                       "\"secret_access_key\": \"" SECRET "\", "
                                       "\"session_token\": \"" SESSION "\"}"),
                     0);
    const char *path = put("token", WEB_TOKEN "\n", 0644);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Pod", 1);
    logbuf[0] = '\0';
    dsql_error err = {0};
    dsql_credentials c;
    dsql_credentials_provider *p = dsql_credentials_provider_web_identity(&err);
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(dsql_credentials_provider_get(p, &c, &err) == DSQL_OK, "%s", err.message);
    ck_assert_str_eq(c.secret_access_key, SECRET);
    dsql_credentials_clear(&c);
    dsql_credentials_provider_free(p);
    ck_assert_int_eq(aws_server_count("sts_web_identity"), 1);
    ck_assert_msg(!strstr(logbuf, "accessible to group or others"), "%s", logbuf);
    assert_no_secret_logged();
}
END_TEST

static Suite *perms_suite(void)
{
    Suite *s = suite_create("file_perms");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_world_readable_credentials_warn, 0, 6);
    tcase_add_loop_test(tc, test_private_credentials_silent, 0, 3);
    tcase_add_test(tc, test_config_file);
    tcase_add_test(tc, test_env_named_file);
    tcase_add_test(tc, test_warning_level);
    suite_add_tcase(s, tc);
    TCase *sso = tcase_create("sso_cache");
    tcase_set_timeout(sso, 60);
    tcase_add_checked_fixture(sso, setup, teardown);
    tcase_add_loop_test(sso, test_sso_cache_exposed_warns, 0, 5);
    tcase_add_loop_test(sso, test_sso_cache_private_silent, 0, 2);
    tcase_add_test(sso, test_sso_cache_expired_still_warns);
    tcase_add_test(sso, test_sso_cache_warning_per_read);
    tcase_add_test(sso, test_sso_cache_warning_level);
    tcase_add_test(sso, test_web_identity_token_file_silent);
    suite_add_tcase(s, sso);
    return s;
}

AWS_SERVER_TEST_MAIN(perms_suite)
