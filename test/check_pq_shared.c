/* What a NULL provider means for the adapters: one cached default chain
 * per profile, shared process-wide (dsql_token_provider_shared), so many
 * connections make one credentials fetch; and a profile from AWS_PROFILE
 * is not an explicit request (environment keys still win, as in botocore).
 * Tokens are read from dsql_pq_params' password; credentials come from the
 * loopback container endpoint (test/aws_test_server.py) or from profile
 * files in a throwaway HOME. Every test runs in its own process: the
 * shared providers live as long as the process. */
#include <pthread.h>

#include "aws_server.h"
#include "dsqlauth/libpq.h"

#define EP "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

static char home[256];

static void setup(void)
{
    test_clear_profile_env();
    aws_server_clean_env();
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    test_make_home(home, sizeof home, "dsql-pq-shared");
    ck_assert_int_eq(aws_server_config(NULL), 0);
}

static void teardown(void) { test_remove_tree(home); }

static void container_env(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/creds", aws_server_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
}

/* A resolved configuration for EP; profile: set explicitly unless NULL;
 * from_env: dsql_config_load_env first. */
static dsql_config *config(const char *profile, int from_env)
{
    dsql_error err;
    dsql_config *cfg = dsql_config_new(NULL);
    ck_assert_ptr_nonnull(cfg);
    if (from_env)
        ck_assert_int_eq(dsql_config_load_env(cfg, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_parse(cfg, EP, &err), DSQL_OK);
    if (profile)
        ck_assert_int_eq(dsql_config_set(cfg, "profile", profile, &err), DSQL_OK);
    ck_assert_msg(dsql_config_resolve(cfg, &err) == DSQL_OK, "%s", err.message);
    return cfg;
}

/* The access key id the NULL provider signs cfg's token with, into akid;
 * 0 when dsql_pq_params fails. */
static int signing_key_id(dsql_config *cfg, char *akid, size_t cap)
{
    const char *const *k, *const *v;
    dsql_error err;
    if (dsql_pq_params(cfg, NULL, 0, &k, &v, &err) != DSQL_OK) {
        fprintf(stderr, "dsql_pq_params: %s\n", err.message);
        snprintf(akid, cap, "(failed)");
        return 0;
    }
    const char *password = NULL;
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], "password") == 0)
            password = v[i];
    char cred[256] = "";
    int found = password && test_query_param(password, "X-Amz-Credential", cred, sizeof cred);
    dsql_pq_params_free(k, v);
    char *slash = strstr(cred, "%2F");
    if (slash)
        *slash = '\0';
    snprintf(akid, cap, "%s", cred);
    return found;
}

typedef struct worker {
    dsql_config *cfg;
    int ok;
} worker;

static void *sign_five(void *arg)
{
    worker *w = arg;
    char akid[64];
    for (int i = 0; i < 5; i++)
        w->ok += signing_key_id(w->cfg, akid, sizeof akid) &&
                 strcmp(akid, "ASIATESTACCESSKEY") == 0;
    return NULL;
}

START_TEST(null_provider_fetches_once_for_many_connections)
{
    container_env();
    dsql_config *cfg = config(NULL, 0);
    pthread_t th[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){cfg, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, sign_five, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].ok, 5);
    }
    ck_assert_int_eq(aws_server_count("ecs"), 1); /* 40 tokens, one fetch */
    /* another configuration without a profile shares it */
    dsql_config *other = config(NULL, 0);
    dsql_error err;
    dsql_token_provider *shared = dsql_token_provider_shared(cfg, &err);
    ck_assert_ptr_nonnull(shared);
    ck_assert_ptr_eq(dsql_token_provider_shared(other, &err), shared);
    ck_assert_ptr_eq(dsql_token_provider_shared(NULL, &err), shared);
    dsql_token_provider_free(shared); /* ignored: it is the process's */
    char akid[64];
    ck_assert(signing_key_id(other, akid, sizeof akid));
    ck_assert_str_eq(akid, "ASIATESTACCESSKEY");
    ck_assert_int_eq(aws_server_count("ecs"), 1);
    dsql_config_free(other);
    dsql_config_free(cfg);
}
END_TEST

static void write_profiles(void)
{
    test_write_file_in(home, ".aws/credentials",
                       "[a]\naws_access_key_id = AKIDPROFILEA\naws_secret_access_key = sa\n"
                       "[b]\naws_access_key_id = AKIDPROFILEB\naws_secret_access_key = sb\n",
                       0600);
}

START_TEST(each_profile_has_its_own_shared_chain)
{
    write_profiles();
    dsql_config *a = config("a", 0), *b = config("b", 0), *a2 = config("a", 0);
    char akid[64];
    ck_assert(signing_key_id(a, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDPROFILEA");
    ck_assert(signing_key_id(b, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDPROFILEB");
    dsql_error err;
    dsql_token_provider *pa = dsql_token_provider_shared(a, &err);
    ck_assert_ptr_nonnull(pa);
    ck_assert_ptr_ne(pa, dsql_token_provider_shared(b, &err));
    ck_assert_ptr_eq(pa, dsql_token_provider_shared(a2, &err));
    /* cached: the file changing does not change what profile a signs with */
    test_write_file_in(home, ".aws/credentials",
                       "[a]\naws_access_key_id = AKIDCHANGED\naws_secret_access_key = sc\n",
                       0600);
    ck_assert(signing_key_id(a2, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDPROFILEA");
    dsql_config_free(a);
    dsql_config_free(b);
    dsql_config_free(a2);
}
END_TEST

/* botocore: only an explicitly requested profile skips the environment
 * keys; AWS_PROFILE does not. dsql_config_load_env copies AWS_PROFILE into
 * "profile", which must stay a report, not a request. */
START_TEST(aws_profile_from_environment_keeps_environment_keys)
{
    write_profiles();
    setenv("AWS_PROFILE", "a", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    dsql_config *from_env = config(NULL, 1);
    ck_assert_str_eq(dsql_config_get(from_env, "profile"), "a"); /* reported */
    char akid[64];
    ck_assert(signing_key_id(from_env, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDFROMENV");
    /* the same name requested explicitly (in code, or in the connection
     * string) skips them */
    dsql_config *in_code = config("a", 1);
    ck_assert(signing_key_id(in_code, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDPROFILEA");
    dsql_config *in_uri = dsql_config_new(NULL);
    dsql_error err;
    ck_assert_int_eq(dsql_config_load_env(in_uri, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_parse(in_uri, "postgresql://" EP "/postgres?profile=b", &err),
                     DSQL_OK);
    ck_assert_int_eq(dsql_config_resolve(in_uri, &err), DSQL_OK);
    ck_assert(signing_key_id(in_uri, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDPROFILEB");
    /* the pool connects with a copy (dsql_config_dup): the copy keeps
     * where the profile came from */
    dsql_config *env_copy = dsql_config_dup(from_env, &err);
    dsql_config *code_copy = dsql_config_dup(in_code, &err);
    ck_assert_ptr_nonnull(env_copy);
    ck_assert_ptr_nonnull(code_copy);
    ck_assert(signing_key_id(env_copy, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDFROMENV");
    ck_assert(signing_key_id(code_copy, akid, sizeof akid));
    ck_assert_str_eq(akid, "AKIDPROFILEA");
    dsql_config_free(env_copy);
    dsql_config_free(code_copy);
    dsql_config_free(from_env);
    dsql_config_free(in_code);
    dsql_config_free(in_uri);
}
END_TEST

static Suite *shared_suite(void)
{
    Suite *s = suite_create("libpq NULL provider");
    TCase *t = tcase_create("shared default chain");
    tcase_set_timeout(t, 30);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, null_provider_fetches_once_for_many_connections);
    tcase_add_test(t, each_profile_has_its_own_shared_chain);
    tcase_add_test(t, aws_profile_from_environment_keeps_environment_keys);
    suite_add_tcase(s, t);
    return s;
}

/* Each test in its own process, whatever CK_FORK says: the shared
 * providers are per process. */
int main(void)
{
    if (aws_server_start_clean() != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(shared_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    aws_server_stop();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
