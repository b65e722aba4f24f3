/* The default chain (smithy-rs's network-free chain cases plus botocore's
 * rules: an explicit profile skips the environment, a missing requested
 * profile is an error, a key id without a secret is an error), the public
 * chain provider, and a secrets audit of every log line and error message. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "internal.h"

static char tmpdir[256];

static void clean_env(void)
{
    test_clear_profile_env();
    static const char *const vars[] = {
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ACCOUNT_ID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void make_tmpdir(void)
{
    clean_env();
    test_make_home(tmpdir, sizeof tmpdir, "dsql-chain");
}

static void teardown(void)
{
    test_remove_tree(tmpdir);
}

static void write_file(const char *rel, const char *text)
{
    test_write_file_in(tmpdir, rel, text, 0755);
}

static dsql_status chain_get(const char *profile, dsql_credentials *c, dsql_error *err)
{
    dsql_credentials_provider *p = dsql_credentials_provider_default(profile, err);
    ck_assert_ptr_nonnull(p);
    dsql_status st = dsql_credentials_provider_get(p, c, err);
    dsql_credentials_provider_free(p);
    return st;
}

/* The default chain for profile (NULL: none named) must fail with status
 * want and a message holding each of the NULL-terminated strings. */
static void expect_chain_fails(const char *profile, dsql_status want, ...)
{
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = chain_get(profile, &c, &err);
    ck_assert_msg(st == want, "profile %s: %s, want %s: %s", profile ? profile : "(none)",
                  dsql_status_name(st), dsql_status_name(want), err.message);
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err.message, s), "profile %s: message \"%s\" lacks \"%s\"",
                      profile ? profile : "(none)", err.message, s);
    va_end(ap);
}

START_TEST(test_smithy_chain_cases)
{
    static const char *const cases[] = {"environment_variables", "environment_variables_blank",
                                        "prefer_environment", "profile_name",
                                        "profile_static_keys",
                                        "profile_static_keys_case_insensitive"};
    const char *data = getenv("DSQL_TEST_DATA");
    char base[PATH_MAX];
    data = data ? data : "test/data";
    if (data[0] == '/') {
        snprintf(base, sizeof base, "%s", data);
    } else {
        char cwd[PATH_MAX / 2];
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
        snprintf(base, sizeof base, "%s/%s", cwd, data);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clean_env();
        char rel[200];
        snprintf(rel, sizeof rel, "profiles/credential-chain/default-credential-provider-chain/%s/",
                 cases[i]);
        char path[256];
        snprintf(path, sizeof path, "%s%s", rel, "env.json");
        char *text = test_read_file(path, NULL);
        ck_assert_ptr_nonnull(text);
        cJSON *env = cJSON_Parse(text);
        free(text);
        cJSON *kv;
        cJSON_ArrayForEach(kv, env)
        {
            if (strcmp(kv->string, "HOME") == 0) {
                char home[PATH_MAX + 600];
                snprintf(home, sizeof home, "%s/%sfs/home", base, rel);
                setenv("HOME", home, 1);
            } else {
                setenv(kv->string, kv->valuestring, 1);
            }
        }
        cJSON_Delete(env);
        snprintf(path, sizeof path, "%s%s", rel, "test-case.json");
        text = test_read_file(path, NULL);
        cJSON *tc = cJSON_Parse(text);
        free(text);
        const cJSON *ok = cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "result"), "Ok");
        ck_assert_ptr_nonnull(ok);
        dsql_credentials c;
        dsql_error err = {0};
        dsql_status st = chain_get(NULL, &c, &err);
        ck_assert_msg(st == DSQL_OK, "%s: %s", cases[i], err.message);
        ck_assert_str_eq(c.access_key_id, cJSON_GetObjectItem(ok, "access_key_id")->valuestring);
        ck_assert_str_eq(c.secret_access_key,
                         cJSON_GetObjectItem(ok, "secret_access_key")->valuestring);
        dsql_credentials_clear(&c);
        cJSON_Delete(tc);
    }
}
END_TEST

START_TEST(test_explicit_profile_skips_env)
{
    make_tmpdir();
    write_file(".aws/credentials", "[default]\naws_access_key_id = FILEDEF\n"
                                   "aws_secret_access_key = filedefsecret\n"
                                   "[work]\naws_access_key_id = FILEWORK\n"
                                   "aws_secret_access_key = fileworksecret\n");
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    dsql_credentials c;
    dsql_error err = {0};
    ck_assert_int_eq(chain_get(NULL, &c, &err), DSQL_OK);
    ck_assert_str_eq(c.access_key_id, "ENVKEY");
    dsql_credentials_clear(&c);
    ck_assert_int_eq(chain_get("work", &c, &err), DSQL_OK);
    ck_assert_str_eq(c.access_key_id, "FILEWORK");
    dsql_credentials_clear(&c);
    /* AWS_PROFILE does not skip the environment */
    setenv("AWS_PROFILE", "work", 1);
    ck_assert_int_eq(chain_get(NULL, &c, &err), DSQL_OK);
    ck_assert_str_eq(c.access_key_id, "ENVKEY");
    dsql_credentials_clear(&c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    ck_assert_int_eq(chain_get(NULL, &c, &err), DSQL_OK);
    ck_assert_str_eq(c.access_key_id, "FILEWORK");
    dsql_credentials_clear(&c);
}
END_TEST

START_TEST(test_chain_errors_do_not_fall_through)
{
    make_tmpdir();
    write_file(".aws/config", "[default]\nregion = us-east-1\n"
                              "[profile regiononly]\nregion = us-west-2\n");
    write_file(".aws/credentials", "[half]\naws_access_key_id = HALFKEY\n");
    /* key id without secret in the environment */
    setenv("AWS_ACCESS_KEY_ID", "ENVONLY", 1);
    expect_chain_fails(NULL, DSQL_ECREDENTIALS, "AWS_SECRET_ACCESS_KEY is not", NULL);
    unsetenv("AWS_ACCESS_KEY_ID");
    /* requested profile missing: explicit and via AWS_PROFILE */
    expect_chain_fails("nosuch", DSQL_ECONFIG, "`nosuch` not found", NULL);
    setenv("AWS_PROFILE", "nosuch2", 1);
    expect_chain_fails(NULL, DSQL_ECONFIG, "`nosuch2` not found", NULL);
    unsetenv("AWS_PROFILE");
    /* key id without secret in a file */
    expect_chain_fails("half", DSQL_ECREDENTIALS, "aws_secret_access_key is not", NULL);
    /* a profile without credentials falls through to IMDS (disabled here) */
    expect_chain_fails("regiononly", DSQL_ECREDENTIALS, "no credentials found", "IMDS", NULL);
    expect_chain_fails(NULL, DSQL_ECREDENTIALS, "no credentials found", NULL);
}
END_TEST

START_TEST(test_chain_container_after_profile)
{
    make_tmpdir();
    write_file(".aws/config", "[default]\nregion = us-east-1\n");
    /* container configured, nothing listening on that port: its error ends
     * the chain (it is configured), it is not swallowed */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds", 1);
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1", 1);
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = chain_get(NULL, &c, &err);
    ck_assert_int_ne(st, DSQL_OK);
    ck_assert_msg(strstr(err.message, "ontainer"), "%s", err.message);
}
END_TEST

/* a provider that fails with a given status */
typedef struct fake {
    dsql_status st;
    const char *akid;
} fake;
static dsql_status fake_get(void *self, dsql_credentials *out, dsql_error *err)
{
    fake *f = self;
    if (f->st != DSQL_OK)
        return dsql__error(err, f->st, "fake %s failed", f->akid);
    dsql_credentials v = {(char *)f->akid, "s", NULL, 0};
    return dsql_credentials_copy(out, &v, err);
}

static const dsql_credentials_provider_vtable FAKE_VT = {DSQL_STRUCT_VERSION, fake_get, NULL};

START_TEST(test_public_chain)
{
    static fake a = {DSQL_ECREDENTIALS, "A"}, b = {DSQL_OK, "B"}, x = {DSQL_ENETWORK, "X"};
    dsql_error err = {0};
    dsql_credentials_provider *ps[3] = {dsql_credentials_provider_new(&FAKE_VT, &a, &err),
                                        dsql_credentials_provider_new(&FAKE_VT, &b, &err),
                                        dsql_credentials_provider_new(&FAKE_VT, &x, &err)};
    dsql_credentials_provider *chain = dsql_credentials_provider_chain(ps, 3, &err);
    ck_assert_ptr_nonnull(chain);
    dsql_credentials c;
    ck_assert_int_eq(dsql_credentials_provider_get(chain, &c, &err), DSQL_OK);
    ck_assert_str_eq(c.access_key_id, "B");
    dsql_credentials_clear(&c);
    dsql_credentials_provider_free(chain);

    dsql_credentials_provider *qs[3] = {dsql_credentials_provider_new(&FAKE_VT, &a, &err),
                                        dsql_credentials_provider_new(&FAKE_VT, &x, &err),
                                        dsql_credentials_provider_new(&FAKE_VT, &b, &err)};
    chain = dsql_credentials_provider_chain(qs, 3, &err);
    ck_assert_int_eq(dsql_credentials_provider_get(chain, &c, &err), DSQL_ENETWORK);
    ck_assert_str_eq(err.message, "fake X failed");
    dsql_credentials_provider_free(chain);

    dsql_credentials_provider *rs[2] = {dsql_credentials_provider_new(&FAKE_VT, &a, &err),
                                        dsql_credentials_provider_new(&FAKE_VT, &a, &err)};
    chain = dsql_credentials_provider_chain(rs, 2, &err);
    ck_assert_int_eq(dsql_credentials_provider_get(chain, &c, &err), DSQL_ECREDENTIALS);
    ck_assert_str_eq(err.message, "no credentials in the chain: fake A failed; fake A failed");
    dsql_credentials_provider_free(chain);

    chain = dsql_credentials_provider_chain(NULL, 0, &err);
    ck_assert_int_eq(dsql_credentials_provider_get(chain, &c, &err), DSQL_ECREDENTIALS);
    dsql_credentials_provider_free(chain);
    ck_assert_ptr_null(dsql_credentials_provider_chain(NULL, 2, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
}
END_TEST

/* ---- no secret in any log line or error message ----------------------- */

static char logbuf[1 << 20];
static void capture_log(dsql_log_level level, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s\n", msg);
}

static char errbuf[1 << 16];
static void note_error(const dsql_error *err)
{
    size_t n = strlen(errbuf);
    snprintf(errbuf + n, sizeof errbuf - n, "%s\n", err->message);
}

static void run_provider(dsql_credentials_provider *p)
{
    dsql_credentials c;
    dsql_error err = {0};
    if (dsql_credentials_provider_get(p, &c, &err) != DSQL_OK)
        note_error(&err);
    dsql_credentials_clear(&c);
    dsql_credentials_provider_free(p);
}

START_TEST(test_no_secrets_in_logs_or_errors)
{
    make_tmpdir();
    logbuf[0] = errbuf[0] = '\0';
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    static const char *const secrets[] = {"SECRETenv0001", "SECRETtok0002", "SECRETfile0003",
                                          "SECRETftok0004", "SECRETproc0005", "SECRETptok0006",
                                          "SECRETsso0007", "SECREThalf0008", "SECRETbad0009",
                                          "SECRETrole0010"};
    char text[4096];
    snprintf(text, sizeof text,
             "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = %s\n"
             "aws_session_token = %s\n[half]\naws_secret_access_key = %s\n"
             "[broken]\naws_access_key_id = AKIDB\naws_secret_access_key = %s\n  cont = x\n",
             secrets[2], secrets[3], secrets[7], secrets[8]);
    write_file(".aws/credentials", text);
    snprintf(text, sizeof text,
             "[profile proc]\ncredential_process = %s/proc.sh\n"
             "[profile badproc]\ncredential_process = %s/badproc.sh %s\n"
             "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/R\n"
             "source_profile = default\n"
             "[profile sso]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n"
             "sso_account_id = 1\nsso_role_name = R\n",
             tmpdir, tmpdir, secrets[9]);
    write_file(".aws/config", text);
    snprintf(text, sizeof text,
             "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
             "\"SecretAccessKey\": \"%s\", \"SessionToken\": \"%s\"}'\n",
             secrets[4], secrets[5]);
    write_file("proc.sh", text);
    snprintf(text, sizeof text,
             "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
             "\"SecretAccessKey\": \"%s\"' \nexit 0\n",
             secrets[4]);
    write_file("badproc.sh", text);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9", 1);
    setenv("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:9", 1);

    dsql_error err = {0};
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", secrets[0], 1);
    setenv("AWS_SESSION_TOKEN", secrets[1], 1);
    /* tokens through the default provider (environment) and a profile */
    const char *profiles[] = {NULL, "default", "proc"};
    for (int i = 0; i < 3; i++) {
        dsql_token_provider *tp =
            dsql_token_provider_signing(dsql_credentials_provider_default(profiles[i], &err),
                                        NULL, &err);
        ck_assert_ptr_nonnull(tp);
        dsql_token_request req = {DSQL_STRUCT_VERSION,
                                  "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "admin",
                                  NULL, 0, 0};
        char tok[200000];
        size_t len;
        ck_assert_msg(dsql_token_provider_get(tp, &req, tok, sizeof tok, &len, &err) ==
                          DSQL_OK,
                      "%s", err.message);
        char sig[100];
        ck_assert(test_query_param(tok, "X-Amz-Signature", sig, sizeof sig));
        ck_assert_msg(!strstr(logbuf, sig), "signature in the log");
        dsql_token_provider_free(tp);
    }
    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", secrets[0], 1);
    run_provider(dsql_credentials_provider_env(&err));
    run_provider(dsql_credentials_provider_default(NULL, &err));
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    const char *names[] = {"default", "half", "broken", "proc", "badproc", "role", "sso",
                           "missing"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        run_provider(dsql_credentials_provider_profile(names[i], &err));
        run_provider(dsql_credentials_provider_default(names[i], &err));
    }
    char region[64];
    if (dsql_region_resolve(NULL, "default", region, sizeof region, &err) != DSQL_OK)
        note_error(&err);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    ck_assert_msg(strlen(errbuf) > 100, "expected some errors: %s", errbuf);
    ck_assert_msg(strstr(errbuf, "half"), "%s", errbuf);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        ck_assert_msg(!strstr(logbuf, secrets[i]), "secret %s in the log:\n%s", secrets[i],
                      logbuf);
        ck_assert_msg(!strstr(errbuf, secrets[i]), "secret %s in an error:\n%s", secrets[i],
                      errbuf);
    }
    if (getenv("DSQL_TEST_VERBOSE"))
        fprintf(stderr, "%s\n---\n%s", logbuf, errbuf);
}
END_TEST

static Suite *chain_suite(void)
{
    Suite *s = suite_create("creds_chain");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_smithy_chain_cases);
    tcase_add_test(tc, test_explicit_profile_skips_env);
    tcase_add_test(tc, test_chain_errors_do_not_fall_through);
    tcase_add_test(tc, test_chain_container_after_profile);
    tcase_add_test(tc, test_public_chain);
    tcase_add_test(tc, test_no_secrets_in_logs_or_errors);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(chain_suite)
