/* Shared config / credentials files: the SDKs' profile-parser suite, the
 * assume-role resolution suite, file locations, 64 KiB values, the profile
 * provider with static keys, credential_process, SSO cache errors, and
 * region resolution. Real files in temp dirs, real processes. */
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "testutil.h"
#include "creds/profile.h"

/* ---- helpers ---------------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    test_make_home(tmpdir, sizeof tmpdir, "dsql-profile");
    test_clear_profile_env();
}

static void teardown(void)
{
    test_remove_tree(tmpdir);
}

/* Writes tmpdir/rel (creating parent dirs), returns the path (static). */
static const char *write_file(const char *rel, const char *text, int mode)
{
    return test_write_file_in(tmpdir, rel, text, (mode_t)mode);
}

static char logbuf[1 << 16];
static void capture_log(dsql_log_level level, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s\n", msg);
}

static cJSON *load_json(const char *rel)
{
    char *text = test_read_file(rel, NULL);
    ck_assert_msg(text != NULL, "missing test data %s", rel);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* ---- profile-parser-tests.json --------------------------------------- */

static int compare_sections(const dsql__profiles *set, dsql__section_kind kind,
                            const cJSON *want, const char *name)
{
    size_t nwant = 0, nhave = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, want)
    {
        nwant++;
        const dsql__section *s = dsql__profiles_find(set, kind, p->string);
        if (!s) {
            fprintf(stderr, "%s: missing section %s\n", name, p->string);
            return 0;
        }
        size_t nprops = 0;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, p)
        {
            nprops++;
            const char *v = dsql__section_get(s, kv->string);
            if (!v || strcmp(v, kv->valuestring) != 0) {
                fprintf(stderr, "%s: [%s] %s = '%s', want '%s'\n", name, p->string, kv->string,
                        v ? v : "(absent)", kv->valuestring);
                return 0;
            }
        }
        if (nprops != s->n) {
            fprintf(stderr, "%s: [%s] has %zu properties, want %zu\n", name, p->string, s->n,
                    nprops);
            return 0;
        }
    }
    for (size_t i = 0; i < set->n; i++)
        nhave += set->secs[i].kind == kind;
    if (nhave != nwant) {
        fprintf(stderr, "%s: %zu sections of kind %d, want %zu\n", name, nhave, (int)kind,
                nwant);
        return 0;
    }
    return 1;
}

START_TEST(test_parser_vectors)
{
    cJSON *doc = load_json("profiles/profile-parser-tests.json");
    const cJSON *t;
    int n = 0, failed = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(doc, "tests"))
    {
        n++;
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const cJSON *in = cJSON_GetObjectItem(t, "input"), *out = cJSON_GetObjectItem(t, "output");
        const cJSON *cfg = cJSON_GetObjectItem(in, "configFile");
        const cJSON *cred = cJSON_GetObjectItem(in, "credentialsFile");
        dsql__profiles set = {0};
        dsql_error err = {0};
        dsql_status st = DSQL_OK;
        if (cfg)
            st = dsql__profiles_parse(&set, cfg->valuestring, strlen(cfg->valuestring),
                                      DSQL__FILE_CONFIG, "config", &err);
        if (st == DSQL_OK && cred)
            st = dsql__profiles_parse(&set, cred->valuestring, strlen(cred->valuestring),
                                      DSQL__FILE_CREDENTIALS, "credentials", &err);
        const cJSON *want_err = cJSON_GetObjectItem(out, "errorContaining");
        int ok;
        if (want_err) {
            ok = st == DSQL_ECONFIG && strstr(err.message, want_err->valuestring) != NULL;
            if (!ok)
                fprintf(stderr, "%s: want error '%s', got %d '%s'\n", name,
                        want_err->valuestring, st, err.message);
        } else {
            const cJSON *c = cJSON_GetObjectItem(out, "config");
            ok = st == DSQL_OK;
            if (!ok)
                fprintf(stderr, "%s: unexpected error %s\n", name, err.message);
            ok = ok && compare_sections(&set, DSQL__SECTION_PROFILE,
                                        cJSON_GetObjectItem(c, "profiles"), name);
            const cJSON *ss = cJSON_GetObjectItem(c, "sso_sessions");
            cJSON *empty = cJSON_CreateObject();
            ok = ok && compare_sections(&set, DSQL__SECTION_SSO_SESSION, ss ? ss : empty, name);
            cJSON_Delete(empty);
        }
        failed += !ok;
        dsql__profiles_free(&set);
    }
    cJSON_Delete(doc);
    ck_assert_int_eq(n, 65);
    ck_assert_int_eq(failed, 0);
}
END_TEST

/* ---- assume-role-tests.json ------------------------------------------ */

static int eq_opt(const char *got, const cJSON *want_obj, const char *key)
{
    const cJSON *w = cJSON_GetObjectItem(want_obj, key);
    if (!w)
        return got == NULL;
    return got && strcmp(got, w->valuestring) == 0;
}

START_TEST(test_assume_role_vectors)
{
    cJSON *doc = load_json("profiles/assume-role-tests.json");
    const cJSON *t;
    int n = 0, failed = 0;
    cJSON_ArrayForEach(t, doc)
    {
        n++;
        const char *docs = cJSON_GetObjectItem(t, "docs")->valuestring;
        const cJSON *in = cJSON_GetObjectItem(t, "input"), *out = cJSON_GetObjectItem(t, "output");
        char text[8192] = "";
        const cJSON *p, *kv;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(in, "profiles"))
        {
            snprintf(text + strlen(text), sizeof text - strlen(text), "[profile %s]\n",
                     p->string);
            cJSON_ArrayForEach(kv, p) snprintf(text + strlen(text), sizeof text - strlen(text),
                                               "%s = %s\n", kv->string, kv->valuestring);
        }
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(in, "sso_sessions"))
        {
            snprintf(text + strlen(text), sizeof text - strlen(text), "[sso-session %s]\n",
                     p->string);
            cJSON_ArrayForEach(kv, p) snprintf(text + strlen(text), sizeof text - strlen(text),
                                               "%s = %s\n", kv->string, kv->valuestring);
        }
        dsql__profiles set = {0};
        dsql_error err = {0};
        ck_assert_int_eq(dsql__profiles_parse(&set, text, strlen(text), DSQL__FILE_CONFIG,
                                              "config", &err),
                         DSQL_OK);
        dsql__profile_plan plan;
        dsql_status st = dsql__profile_plan_build(
            &set, cJSON_GetObjectItem(in, "selected_profile")->valuestring, &plan, NULL, &err);
        const cJSON *want_err = cJSON_GetObjectItem(out, "Error");
        int ok = 1;
        if (want_err) {
            ok = st != DSQL_OK;
            if (!ok)
                fprintf(stderr, "%s: want error '%s'\n", docs, want_err->valuestring);
        } else if (st != DSQL_OK) {
            fprintf(stderr, "%s: unexpected error %s\n", docs, err.message);
            ok = 0;
        } else {
            const cJSON *chain = cJSON_GetObjectItem(out, "ProfileChain");
            const cJSON *base = cJSON_GetArrayItem(chain, 0);
            const dsql__section *b = plan.base_profile;
            const cJSON *x;
            if ((x = cJSON_GetObjectItem(base, "AccessKey")))
                ok = plan.base == DSQL__BASE_STATIC &&
                     eq_opt(dsql__section_get(b, "aws_access_key_id"), x, "access_key_id") &&
                     eq_opt(dsql__section_get(b, "aws_secret_access_key"), x,
                            "secret_access_key");
            else if ((x = cJSON_GetObjectItem(base, "NamedSource")))
                ok = plan.base == DSQL__BASE_NAMED &&
                     strcmp(plan.named_source, x->valuestring) == 0;
            else if ((x = cJSON_GetObjectItem(base, "WebIdentityToken")))
                ok = plan.base == DSQL__BASE_WEB_IDENTITY &&
                     eq_opt(dsql__section_get(b, "role_arn"), x, "role_arn") &&
                     eq_opt(dsql__section_get(b, "web_identity_token_file"), x,
                            "web_identity_token_file") &&
                     eq_opt(dsql__section_get(b, "role_session_name"), x, "role_session_name");
            else if ((x = cJSON_GetObjectItem(base, "Sso")))
                ok = plan.base == DSQL__BASE_SSO &&
                     eq_opt(dsql__section_get(b, "sso_account_id"), x, "sso_account_id") &&
                     eq_opt(dsql__section_get(b, "sso_session"), x, "sso_session");
            else
                ok = 0;
            int hops = cJSON_GetArraySize(chain) - 1;
            ok = ok && (size_t)hops == plan.n_hops;
            for (int i = 0; ok && i < hops; i++) {
                const cJSON *h = cJSON_GetObjectItem(cJSON_GetArrayItem(chain, i + 1),
                                                     "AssumeRole");
                const dsql__section *s = plan.hops[plan.n_hops - 1 - (size_t)i];
                ok = h && eq_opt(dsql__section_get(s, "role_arn"), h, "role_arn") &&
                     eq_opt(dsql__section_get(s, "external_id"), h, "external_id") &&
                     eq_opt(dsql__section_get(s, "role_session_name"), h, "role_session_name");
            }
            if (!ok)
                fprintf(stderr, "%s: wrong plan\n", docs);
            dsql__profile_plan_free(&plan);
        }
        failed += !ok;
        dsql__profiles_free(&set);
    }
    cJSON_Delete(doc);
    ck_assert_int_eq(n, 28);
    ck_assert_int_eq(failed, 0);
}
END_TEST

START_TEST(test_cycle_named)
{
    const char *text = "[profile a]\nrole_arn = arn:a\nsource_profile = b\n"
                       "[profile b]\nrole_arn = arn:b\nsource_profile = c\n"
                       "[profile c]\nrole_arn = arn:c\nsource_profile = b\n";
    dsql__profiles set = {0};
    dsql_error err = {0};
    ck_assert_int_eq(dsql__profiles_parse(&set, text, strlen(text), DSQL__FILE_CONFIG, "c", &err),
                     DSQL_OK);
    dsql__profile_plan plan;
    ck_assert_int_eq(dsql__profile_plan_build(&set, "a", &plan, NULL, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "b -> c -> b"), "%s", err.message);
    dsql__profiles_free(&set);
}
END_TEST

/* ---- file locations, BOM, CRLF, long values --------------------------- */

START_TEST(test_file_locations)
{
    make_tmpdir();
    setenv("HOME", "/home/user", 1);
    char *p = dsql__profiles_path(DSQL__FILE_CONFIG);
    ck_assert_str_eq(p, "/home/user/.aws/config");
    dsql__free(p);
    p = dsql__profiles_path(DSQL__FILE_CREDENTIALS);
    ck_assert_str_eq(p, "/home/user/.aws/credentials");
    dsql__free(p);
    setenv("AWS_CONFIG_FILE", "/other/path/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/creds", 1);
    p = dsql__profiles_path(DSQL__FILE_CONFIG);
    ck_assert_str_eq(p, "/other/path/config");
    dsql__free(p);
    p = dsql__profiles_path(DSQL__FILE_CREDENTIALS);
    ck_assert_str_eq(p, "/home/user/creds");
    dsql__free(p);
    ck_assert_str_eq(dsql__profile_name(NULL), "default");
    setenv("AWS_PROFILE", "other", 1);
    ck_assert_str_eq(dsql__profile_name(NULL), "other");
    ck_assert_str_eq(dsql__profile_name("mine"), "mine");
    setenv("HOME", tmpdir, 1);
}
END_TEST

static void expect_creds(const char *profile, const char *akid, const char *secret,
                         const char *token)
{
    dsql_error err = {0};
    dsql_credentials_provider *p = dsql_credentials_provider_profile(profile, &err);
    ck_assert_ptr_nonnull(p);
    dsql_credentials c;
    dsql_status st = dsql_credentials_provider_get(p, &c, &err);
    ck_assert_msg(st == DSQL_OK, "%s", err.message);
    ck_assert_str_eq(c.access_key_id, akid);
    ck_assert_str_eq(c.secret_access_key, secret);
    if (token)
        ck_assert_str_eq(c.session_token, token);
    else
        ck_assert_ptr_null(c.session_token);
    dsql_credentials_clear(&c);
    dsql_credentials_provider_free(p);
}

static dsql_status get_error(const char *profile, dsql_error *err)
{
    dsql_credentials_provider *p = dsql_credentials_provider_profile(profile, err);
    ck_assert_ptr_nonnull(p);
    dsql_credentials c;
    dsql_status st = dsql_credentials_provider_get(p, &c, err);
    ck_assert_int_ne(st, DSQL_OK);
    ck_assert_ptr_null(c.access_key_id);
    dsql_credentials_provider_free(p);
    return st;
}

START_TEST(test_static_keys_files)
{
    make_tmpdir();
    write_file(".aws/config",
               "\xEF\xBB\xBF[default]\r\nregion = us-east-1\r\naws_access_key_id = CFGKEY\r\n"
               "aws_secret_access_key = cfgsecret\r\n"
               "[profile dev] ; comment\r\naws_access_key_id = DEVKEY\r\n"
               "aws_secret_access_key = devsecret\r\naws_session_token = devtoken\r\n"
               "[dev]\naws_access_key_id = IGNORED\n",
               0600);
    write_file(".aws/credentials", "[default]\naws_access_key_id = CREDKEY\n"
                                   "aws_secret_access_key = credsecret # comment\n"
                                   "[profile x]\naws_access_key_id = IGNORED\n"
                                   "[half]\naws_access_key_id = HALF\n",
               0600);
    expect_creds(NULL, "CREDKEY", "credsecret", NULL);  /* credentials file wins */
    expect_creds("dev", "DEVKEY", "devsecret", "devtoken");
    setenv("AWS_PROFILE", "dev", 1);
    expect_creds(NULL, "DEVKEY", "devsecret", "devtoken");
    dsql_error err = {0};
    ck_assert_int_eq(get_error("missing", &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "`missing` not found"), "%s", err.message);
    ck_assert_int_eq(get_error("x", &err), DSQL_ECONFIG);
    ck_assert_int_eq(get_error("half", &err), DSQL_ECREDENTIALS);
    ck_assert_msg(strstr(err.message, "aws_secret_access_key is not"), "%s", err.message);
    ck_assert(!strstr(err.message, "HALF"));
}
END_TEST

START_TEST(test_64k_session_token)
{
    make_tmpdir();
    size_t n = 64 * 1024;
    char *tok = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        tok[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
    tok[n] = '\0';
    char *text = malloc(n + 200);
    snprintf(text, n + 200,
             "[big]\naws_access_key_id = AKIDBIG\naws_secret_access_key = s3cr3t\n"
             "aws_session_token = %s\n[after]\nx = y\n",
             tok);
    write_file(".aws/credentials", text, 0600);
    expect_creds("big", "AKIDBIG", "s3cr3t", tok);
    free(tok);
    free(text);
}
END_TEST

START_TEST(test_tilde_and_long_names)
{
    make_tmpdir();
    char name[400];
    memset(name, 'p', 300);
    name[300] = '\0';
    char text[1000];
    snprintf(text, sizeof text,
             "[profile %s]\naws_access_key_id = LONGKEY\naws_secret_access_key = longsecret\n",
             name);
    write_file("my cfg", text, 0600);
    setenv("AWS_CONFIG_FILE", "~/my cfg", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/does-not-exist", 1);
    expect_creds(name, "LONGKEY", "longsecret", NULL);
    /* no HOME: the ~ files and the defaults are simply absent */
    unsetenv("HOME");
    dsql_error err = {0};
    ck_assert_int_eq(get_error(name, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "not found"), "%s", err.message);
    setenv("HOME", tmpdir, 1);
}
END_TEST


START_TEST(test_syntax_error_names_file_and_line)
{
    make_tmpdir();
    const char *path = write_file("cfg", "[profile a]\nx = 1\nnot a property\n", 0600);
    setenv("AWS_CONFIG_FILE", path, 1);
    dsql_error err = {0};
    ck_assert_int_eq(get_error("a", &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "line 3") && strstr(err.message, "cfg"), "%s",
                  err.message);
}
END_TEST

/* ---- credential_process ---------------------------------------------- */

START_TEST(test_split_command)
{
    char **argv;
    dsql_error err = {0};
    ck_assert_int_eq(dsql__split_command("  \"/a b/c d\" 'x  y' z\\ w \"q\\\"q\" e''f ", &argv,
                                         &err),
                     DSQL_OK);
    ck_assert_str_eq(argv[0], "/a b/c d");
    ck_assert_str_eq(argv[1], "x  y");
    ck_assert_str_eq(argv[2], "z w");
    ck_assert_str_eq(argv[3], "q\"q");
    ck_assert_str_eq(argv[4], "ef");
    ck_assert_ptr_null(argv[5]);
    dsql__argv_free(argv);
    ck_assert_int_eq(dsql__split_command("a 'b", &argv, &err), DSQL_EINVAL);
    ck_assert_int_eq(dsql__split_command("a \"b", &argv, &err), DSQL_EINVAL);
    ck_assert_int_eq(dsql__split_command("   ", &argv, &err), DSQL_EINVAL);
}
END_TEST

START_TEST(test_credential_process)
{
    make_tmpdir();
    const char *script =
        write_file("bin dir/cred proc.sh",
                   "#!/bin/sh\n"
                   "echo \"starting $1 [$2]\" >&2\n"
                   "echo 'second line' >&2\n"
                   "[ \"$2\" = 'two words' ] || exit 3\n"
                   "printf '{\"Version\": 1, \"AccessKeyId\": \"PROCKEY\", \"SecretAccessKey\": "
                   "\"procsecret\", \"SessionToken\": \"proctoken\", \"Expiration\": "
                   "\"2999-01-01T00:00:00Z\"}'\n",
                   0755);
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "[profile p]\ncredential_process = \"%s\" one 'two words'\n",
             script);
    write_file(".aws/config", cfg, 0600);
    logbuf[0] = '\0';
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    dsql_error err = {0};
    dsql_credentials_provider *p = dsql_credentials_provider_profile("p", &err);
    dsql_credentials c;
    ck_assert_msg(dsql_credentials_provider_get(p, &c, &err) == DSQL_OK, "%s", err.message);
    ck_assert_str_eq(c.access_key_id, "PROCKEY");
    ck_assert_str_eq(c.secret_access_key, "procsecret");
    ck_assert_str_eq(c.session_token, "proctoken");
    int64_t want;
    dsql__utc_parse_iso8601("2999-01-01T00:00:00Z", &want);
    ck_assert(c.expiration == want);
    dsql_credentials_clear(&c);
    dsql_credentials_provider_free(p);
    ck_assert_msg(strstr(logbuf, "stderr (37 bytes): starting one [two words]\\nsecond line\\n"),
                  "%s", logbuf);
    ck_assert(!strstr(logbuf, "procsecret") && !strstr(logbuf, "proctoken"));
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
}
END_TEST

static dsql_status run_script(const char *body, int timeout_ms, dsql_error *err)
{
    char text[1024];
    snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
    const char *path = write_file("p.sh", text, 0755);
    dsql_credentials c;
    dsql_status st = dsql__credential_process_run(path, timeout_ms, &c, err);
    if (st == DSQL_OK)
        dsql_credentials_clear(&c);
    return st;
}

START_TEST(test_credential_process_failures)
{
    make_tmpdir();
    dsql_error err = {0};
    ck_assert_int_eq(run_script("exit 1", 5000, &err), DSQL_EIO);
    ck_assert_msg(strstr(err.message, "status 1"), "%s", err.message);
    ck_assert_int_eq(run_script("echo 'invalid json'", 5000, &err), DSQL_EPARSE);
    ck_assert_int_eq(run_script("echo '{\"Version\": 2, \"AccessKeyId\": \"A\", "
                                "\"SecretAccessKey\": \"topsecret\"}'",
                                5000, &err),
                     DSQL_EPARSE);
    ck_assert(!strstr(err.message, "topsecret"));
    ck_assert_int_eq(run_script("echo '{\"Version\": 1, \"AccessKeyId\": \"A\"}'", 5000, &err),
                     DSQL_EPARSE);
    ck_assert_msg(strstr(err.message, "SecretAccessKey"), "%s", err.message);
    ck_assert_int_eq(run_script("echo '{\"Version\": 1, \"AccessKeyId\": \"A\", "
                                "\"SecretAccessKey\": \"B\", \"Expiration\": "
                                "\"2001-01-01T00:00:00Z\"}'",
                                5000, &err),
                     DSQL_EEXPIRED);
    ck_assert_int_eq(run_script("echo '{\"Version\": 1, \"AccessKeyId\": \"A\", "
                                "\"SecretAccessKey\": \"B\", \"Expiration\": \"soon\"}'",
                                5000, &err),
                     DSQL_EPARSE);
    int64_t t0 = dsql__now();
    ck_assert_int_eq(run_script("exec sleep 30", 300, &err), DSQL_ETIMEOUT);
    ck_assert(dsql__now() - t0 < 5);
    dsql_credentials c;
    ck_assert_int_eq(dsql__credential_process_run("/nonexistent/prog arg", 1000, &c, &err),
                     DSQL_EIO);
    ck_assert_msg(strstr(err.message, "/nonexistent/prog"), "%s", err.message);
    /* no shell: metacharacters are plain arguments */
    const char *path = write_file("args.sh",
                                  "#!/bin/sh\n[ \"$1\" = '|' ] && [ \"$2\" = '$HOME' ] && "
                                  "echo '{\"Version\":1,\"AccessKeyId\":\"A\","
                                  "\"SecretAccessKey\":\"B\"}'\n",
                                  0755);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s '|' '$HOME'", path);
    ck_assert_msg(dsql__credential_process_run(cmd, 5000, &c, &err) == DSQL_OK, "%s",
                  err.message);
    ck_assert_int_eq(c.expiration, 0);
    dsql_credentials_clear(&c);
}
END_TEST

/* ---- SSO cached token ------------------------------------------------- */

START_TEST(test_sso_token_errors)
{
    make_tmpdir();
    write_file(".aws/config", "[profile s]\nsso_session = corp\nsso_account_id = 123456789012\n"
                              "sso_role_name = Dev\n"
                              "[sso-session corp]\nsso_region = us-east-1\n"
                              "sso_start_url = https://corp.awsapps.com/start\n"
                              "[profile legacy]\nsso_start_url = https://x.awsapps.com/start\n"
                              "sso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n",
               0600);
    dsql_error err = {0};
    ck_assert_int_eq(get_error("s", &err), DSQL_ECREDENTIALS);
    ck_assert_msg(strstr(err.message, "run `aws sso login`"), "%s", err.message);
    /* sha1("corp") = 2ea8f4b7c2a7b1c17cd34e0f3a6b4ba9f1f0b8f0? computed below */
    unsigned char md[20];
    unsigned int mdn;
    EVP_Digest("corp", 4, md, &mdn, EVP_sha1(), NULL);
    char name[64];
    for (int i = 0; i < 20; i++)
        sprintf(name + 2 * i, "%02x", md[i]);
    char rel[128];
    snprintf(rel, sizeof rel, ".aws/sso/cache/%s.json", name);
    write_file(rel, "{\"accessToken\": \"ssosecrettoken\", \"expiresAt\": "
                    "\"2020-01-01T00:00:00Z\", \"region\": \"us-east-1\"}",
               0600);
    ck_assert_int_eq(get_error("s", &err), DSQL_EEXPIRED);
    ck_assert_msg(strstr(err.message, "run `aws sso login`"), "%s", err.message);
    ck_assert(!strstr(err.message, "ssosecrettoken"));
    ck_assert_int_eq(get_error("legacy", &err), DSQL_ECREDENTIALS);
    ck_assert_msg(strstr(err.message, "run `aws sso login`"), "%s", err.message);
}
END_TEST

/* ---- region ----------------------------------------------------------- */

START_TEST(test_region)
{
    make_tmpdir();
    write_file(".aws/config", "[default]\nregion = eu-west-1\n[profile p]\nregion = ap-south-1\n",
               0600);
    char buf[64];
    dsql_error err = {0};
    logbuf[0] = '\0';
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    ck_assert_int_eq(dsql_region_resolve(NULL, NULL, buf, sizeof buf, &err), DSQL_OK);
    ck_assert_str_eq(buf, "eu-west-1");
    ck_assert_msg(strstr(logbuf, "region: using eu-west-1 from profile `default`"), "%s", logbuf);
    ck_assert_int_eq(dsql_region_resolve("", "p", buf, sizeof buf, &err), DSQL_OK);
    ck_assert_str_eq(buf, "ap-south-1");
    setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
    ck_assert_int_eq(dsql_region_resolve(NULL, "p", buf, sizeof buf, &err), DSQL_OK);
    ck_assert_str_eq(buf, "us-west-1");
    setenv("AWS_REGION", "us-west-2", 1);
    ck_assert_int_eq(dsql_region_resolve(NULL, "p", buf, sizeof buf, &err), DSQL_OK);
    ck_assert_str_eq(buf, "us-west-2");
    ck_assert(strstr(logbuf, "from AWS_REGION"));
    ck_assert_int_eq(dsql_region_resolve("us-east-2", "p", buf, sizeof buf, &err), DSQL_OK);
    ck_assert_str_eq(buf, "us-east-2");
    ck_assert_int_eq(dsql_region_resolve("us-east-2", NULL, buf, 3, &err), DSQL_EBUFSIZE);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    ck_assert_int_eq(dsql_region_resolve(NULL, "nope", buf, sizeof buf, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "`nope` does not exist"), "%s", err.message);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
}
END_TEST

/* ---- allocation-failure loop ----------------------------------------- */

static long alloc_live, alloc_count, alloc_fail_at = -1;
static int alloc_failed;
static void *fail_malloc(size_t n)
{
    if (alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at) {
        alloc_failed = 1;
        return NULL;
    }
    void *p = malloc(n);
    if (p)
        alloc_live++;
    return p;
}
static void *fail_realloc(void *old, size_t n)
{
    if (alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at) {
        alloc_failed = 1;
        return NULL;
    }
    void *p = realloc(old, n);
    if (p && !old)
        alloc_live++;
    return p;
}
static void fail_free(void *p)
{
    if (p)
        alloc_live--;
    free(p);
}

typedef dsql_status (*alloc_op)(void);

static void alloc_loop(const char *name, alloc_op op)
{
    for (long n = 0;; n++) {
        ck_assert_msg(n < 100000, "%s: no end", name);
        alloc_live = alloc_count = 0;
        alloc_failed = 0;
        alloc_fail_at = n;
        dsql_set_allocator(fail_malloc, fail_realloc, fail_free);
        dsql_status st = op();
        dsql_set_allocator(NULL, NULL, NULL);
        ck_assert_msg(alloc_live == 0, "%s: %ld blocks leaked when allocation %ld failed", name,
                      alloc_live, n);
        if (!alloc_failed) {
            ck_assert_msg(st == DSQL_OK, "%s: status %d without a failure", name, st);
            break;
        }
        ck_assert_msg(st == DSQL_ENOMEM, "%s: allocation %ld failed but status is %s", name, n,
                      dsql_status_name(st));
    }
}

static const char *alloc_text =
    "\xEF\xBB\xBF# comment\n[default]\nregion = us-east-1\naws_access_key_id = AK\n"
    "aws_secret_access_key = SK\n[profile a]\nrole_arn = arn:a\nsource_profile = b\n"
    "s3 =\n  max = 1\n  min = 2\n[profile b]\nrole_arn = arn:b\nsource_profile = default\n"
    "x = 1\n -cont\n[sso-session s]\nsso_region = us-east-1\n[profile b]\ny = 2\n"
    "[profile c]\nsso_session = s\n"
    /* 8 keys or more are indexed; a repeated key; continuation lines grow a value */
    "[profile many]\nk1 = 1\nk2 = 2\nk3 = 3\nk4 = 4\nk5 = 5\nk6 = 6\nk7 = 7\nk8 = 8\n"
    "k9 = 9\nK3 = 33\nk10 = x\n -cont\n -more continuation\n";

static dsql_status op_parse(void)
{
    dsql__profiles set = {0};
    dsql_error err;
    dsql_status st = dsql__profiles_parse(&set, alloc_text, strlen(alloc_text),
                                          DSQL__FILE_CONFIG, "x", &err);
    if (st == DSQL_OK)
        st = dsql__profiles_parse(&set, alloc_text, strlen(alloc_text),
                                  DSQL__FILE_CREDENTIALS, "y", &err);
    dsql__profile_plan plan;
    if (st == DSQL_OK && (st = dsql__profile_plan_build(&set, "a", &plan, NULL, &err)) == DSQL_OK)
        dsql__profile_plan_free(&plan);
    if (st == DSQL_OK) {
        /* a loop error allocates its message */
        const char *loop = "[profile p]\nrole_arn = r\nsource_profile = q\n"
                           "[profile q]\nrole_arn = r\nsource_profile = p\n";
        dsql__profiles l = {0};
        st = dsql__profiles_parse(&l, loop, strlen(loop), DSQL__FILE_CONFIG, "l", &err);
        if (st == DSQL_OK) {
            st = dsql__profile_plan_build(&l, "p", &plan, NULL, &err);
            st = st == DSQL_ECONFIG ? DSQL_OK : st;
        }
        dsql__profiles_free(&l);
    }
    dsql__profiles_free(&set);
    return st;
}

/* One get() from p, which is then freed; a NULL p (its constructor
 * failed) gives err's status. The credentials are dropped. */
static dsql_status get_from(dsql_credentials_provider *p, dsql_error *err)
{
    if (!p)
        return err->status;
    dsql_credentials cr;
    dsql_status st = dsql_credentials_provider_get(p, &cr, err);
    dsql_credentials_clear(&cr);
    dsql_credentials_provider_free(p);
    return st;
}

static dsql_status op_provider(void)
{
    dsql_error err;
    dsql_credentials_provider *p = dsql_credentials_provider_profile("default", &err);
    if (!p)
        return err.status;
    return get_from(dsql_credentials_provider_cached(p, &err), &err);
}

static dsql_status op_chain(void)
{
    dsql_error err;
    dsql_credentials_provider *ps[2] = {dsql_credentials_provider_env(&err), NULL};
    if (!ps[0])
        return err.status;
    ps[1] = dsql_credentials_provider_profile(NULL, &err);
    if (!ps[1]) {
        dsql_credentials_provider_free(ps[0]);
        return err.status;
    }
    return get_from(dsql_credentials_provider_chain(ps, 2, &err), &err);
}

static dsql_status op_default(void)
{
    dsql_error err;
    return get_from(dsql_credentials_provider_default(NULL, &err), &err);
}

static dsql_status op_region(void)
{
    char buf[64];
    dsql_error err;
    return dsql_region_resolve(NULL, NULL, buf, sizeof buf, &err);
}

static const char *alloc_proc;
static dsql_status op_process(void)
{
    dsql_credentials c;
    dsql_error err;
    dsql_status st = dsql__credential_process_run(alloc_proc, 5000, &c, &err);
    dsql_credentials_clear(&c);
    return st;
}

START_TEST(test_allocation_failures)
{
    make_tmpdir();
    write_file(".aws/config", alloc_text, 0600);
    alloc_loop("parse", op_parse);
    alloc_loop("profile provider", op_provider);
    alloc_loop("chain", op_chain);
    alloc_loop("region", op_region);
    alloc_loop("default chain", op_default);
    static char cmd[600];
    snprintf(cmd, sizeof cmd, "%s 'an arg'",
             write_file("p.sh",
                        "#!/bin/sh\necho 'oops' >&2\necho '{\"Version\": 1, \"AccessKeyId\": "
                        "\"A\", \"SecretAccessKey\": \"B\", \"SessionToken\": \"C\"}'\n",
                        0755));
    alloc_proc = cmd;
    alloc_loop("credential_process", op_process);
}
END_TEST

static Suite *profile_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_parser_vectors);
    tcase_add_test(tc, test_assume_role_vectors);
    tcase_add_test(tc, test_cycle_named);
    tcase_add_test(tc, test_file_locations);
    tcase_add_test(tc, test_static_keys_files);
    tcase_add_test(tc, test_64k_session_token);
    tcase_add_test(tc, test_tilde_and_long_names);
    tcase_add_test(tc, test_syntax_error_names_file_and_line);
    tcase_add_test(tc, test_split_command);
    tcase_add_test(tc, test_credential_process);
    tcase_add_test(tc, test_credential_process_failures);
    tcase_add_test(tc, test_sso_token_errors);
    tcase_add_test(tc, test_region);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(profile_suite)
