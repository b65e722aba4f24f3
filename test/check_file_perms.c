/* Credential files readable by group or others: loading them still works,
 * but a warning naming the file and its mode goes to the log callback
 * (never the secret itself); private files, files without secrets and
 * absent files stay silent. */
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define SECRET "PeRmSsEcReTwJalrXUtnFEMIK7MDENGbPxRfiCY"
#define SESSION "PeRmSsEsSiOnToKeN//////////wEaCXVzLWVhc3Qt"

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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dsql-perms-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    setenv("HOME", tmpdir, 1);
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    logbuf[0] = '\0';
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
}

static void teardown(void)
{
    char cmd[400];
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes tmpdir/rel with the given mode (chmod, so the umask does not
 * matter); returns the path (static). */
static const char *put(const char *rel, const char *text, mode_t mode)
{
    static char path[512];
    char dir[512];
    snprintf(dir, sizeof dir, "%s/.aws", tmpdir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
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
    ck_assert_msg(!strstr(logbuf, SECRET) && !strstr(logbuf, SESSION), "%s", logbuf);
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
    return s;
}

TEST_MAIN(perms_suite)
