/* The libpq adapter's secure defaults for every libpq generation: the
 * adapter is compiled in here with PQlibVersion() replaced, so the choice
 * libpq 15 / 16 / 17 would see is checked on any machine. */
#include <libpq-fe.h>

static int fake_version;
static int fake_libversion(void) { return fake_version; }
#define PQlibVersion fake_libversion
#include "../adapters/libpq/pq.c"
#undef PQlibVersion

#include "testutil.h"

static dsql_status tok(void *self, const dsql_token_request *req, char *buf, size_t cap,
                       size_t *len, dsql_error *err)
{
    (void)self;
    (void)err;
    *len = (size_t)snprintf(buf, cap, "token-for-%s", req->hostname);
    return DSQL_OK;
}
static const dsql_token_provider_vtable VT = {DSQL_STRUCT_VERSION, tok, NULL};

/* params for `extra` under libpq `version`; returns the value of key */
static char got[256];
static const char *param_for(int version, const char *extra, const char *key)
{
    fake_version = version;
    dsql_error err;
    dsql_config *cfg = dsql_config_new(NULL);
    char ci[512];
    snprintf(ci, sizeof ci, "host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws %s", extra);
    ck_assert_int_eq(dsql_config_parse(cfg, ci, &err), DSQL_OK);
    dsql_token_provider *tp = dsql_token_provider_new(&VT, NULL, NULL);
    const char *const *k, *const *v;
    ck_assert_msg(dsql_pq_params(cfg, tp, 0, &k, &v, &err) == DSQL_OK, "%s", err.message);
    const char *r = NULL;
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], key) == 0) {
            snprintf(got, sizeof got, "%s", v[i]);
            r = got;
        }
    dsql_pq_params_free(k, v);
    dsql_token_provider_free(tp);
    dsql_config_free(cfg);
    return r;
}

#define EXPECT(version, extra, key, want)                                                  \
    do {                                                                                   \
        const char *g_ = param_for(version, extra, key);                                   \
        const char *w_ = (want);                                                           \
        if (!w_)                                                                           \
            ck_assert_msg(g_ == NULL, "libpq %d [%s]: %s=%s, want unset", version, extra,  \
                          key, g_);                                                        \
        else                                                                               \
            ck_assert_msg(g_ && strcmp(g_, w_) == 0, "libpq %d [%s]: %s=%s, want %s",      \
                          version, extra, key, g_ ? g_ : "(unset)", w_);                   \
    } while (0)

START_TEST(libpq15_bundle_file)
{
    unsetenv("PGSSLROOTCERT");
    setenv("SSL_CERT_FILE", "test/check_pq_defaults.c", 1); /* any readable file */
    EXPECT(150007, "", "sslmode", "verify-full");
    EXPECT(150007, "", "sslrootcert", "test/check_pq_defaults.c");
    EXPECT(150007, "", "sslnegotiation", NULL);
    EXPECT(150007, "sslmode=verify-ca allow_insecure_tls=1", "sslrootcert", "test/check_pq_defaults.c");
    EXPECT(150007, "sslmode=require allow_insecure_tls=1", "sslrootcert", NULL);
    EXPECT(140000, "", "sslrootcert", "test/check_pq_defaults.c");
    unsetenv("SSL_CERT_FILE");
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        EXPECT(150007, "", "sslrootcert", "/etc/ssl/certs/ca-certificates.crt");
}
END_TEST

START_TEST(libpq16_system)
{
    unsetenv("PGSSLROOTCERT");
    setenv("SSL_CERT_FILE", "test/check_pq_defaults.c", 1);
    EXPECT(160000, "", "sslrootcert", "system");
    EXPECT(160004, "", "sslnegotiation", NULL);
    /* sslrootcert=system is allowed with verify-full only: verify-ca gets the file */
    EXPECT(160004, "sslmode=verify-ca allow_insecure_tls=1", "sslrootcert", "test/check_pq_defaults.c");
    EXPECT(160004, "sslmode=require allow_insecure_tls=1", "sslrootcert", NULL);
    EXPECT(160004, "sslrootcert=/my/ca.pem", "sslrootcert", "/my/ca.pem");
    unsetenv("SSL_CERT_FILE");
}
END_TEST

START_TEST(libpq17_direct)
{
    unsetenv("PGSSLROOTCERT");
    EXPECT(170000, "", "sslrootcert", "system");
    EXPECT(170000, "", "sslnegotiation", "direct");
    EXPECT(170002, "sslmode=require allow_insecure_tls=1", "sslnegotiation", "direct");
    EXPECT(170002, "sslmode=prefer allow_insecure_tls=1", "sslnegotiation", NULL);
    EXPECT(170002, "sslmode=disable allow_insecure_tls=1", "sslnegotiation", NULL);
    EXPECT(170002, "sslnegotiation=postgres", "sslnegotiation", "postgres");
    EXPECT(180000, "", "sslnegotiation", "direct");
}
END_TEST

START_TEST(environment_root_cert_left_to_libpq)
{
    setenv("PGSSLROOTCERT", "/from/env.pem", 1);
    EXPECT(150007, "", "sslrootcert", NULL);
    EXPECT(170000, "", "sslrootcert", NULL);
    EXPECT(170000, "sslrootcert=/explicit.pem", "sslrootcert", "/explicit.pem");
    unsetenv("PGSSLROOTCERT");
}
END_TEST

static Suite *defaults_suite(void)
{
    Suite *s = suite_create("libpq defaults by version");
    TCase *t = tcase_create("versions");
    tcase_add_test(t, libpq15_bundle_file);
    tcase_add_test(t, libpq16_system);
    tcase_add_test(t, libpq17_direct);
    tcase_add_test(t, environment_root_cert_left_to_libpq);
    suite_add_tcase(s, t);
    return s;
}

TEST_MAIN(defaults_suite)
