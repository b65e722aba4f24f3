/* DSQL tokens: every published known-answer token, the caching signer,
 * edge cases and input validation, tokens in heap buffers. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "testutil.h"
#include "internal.h"
#include "sigv4.h"

#define TOKEN_CAP 200000

static cJSON *vectors;

static void load_vectors(void)
{
    char *text = test_read_file("dsql_tokens.json", NULL);
    vectors = text ? cJSON_Parse(text) : NULL;
    free(text);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Every parameter of `want` appears in `got` with the same value and both
 * have the same number of parameters and the same host part. */
static void assert_same_params(const char *got, const char *want)
{
    const char *gq = strchr(got, '?'), *wq = strchr(want, '?');
    ck_assert(gq && wq);
    ck_assert_int_eq((int)(gq - got), (int)(wq - want));
    ck_assert(strncmp(got, want, (size_t)(gq - got)) == 0);
    int n_got = 1, n_want = 1;
    for (const char *c = gq; *c; c++)
        n_got += *c == '&';
    for (const char *c = wq; *c; c++)
        n_want += *c == '&';
    ck_assert_int_eq(n_got, n_want);
    char *copy = strdup(wq + 1);
    for (char *tok = strtok(copy, "&"); tok; tok = strtok(NULL, "&")) {
        char *eq = strchr(tok, '=');
        ck_assert(eq);
        *eq = '\0';
        static char value[100000];
        ck_assert_msg(test_query_param(got, tok, value, sizeof value), "missing %s", tok);
        ck_assert_str_eq(value, eq + 1);
    }
    free(copy);
}

static int usable_count(void)
{
    int n = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, vectors) n += cJSON_IsTrue(cJSON_GetObjectItem(v, "usable_as_kat"));
    return n;
}

START_TEST(test_published_tokens)
{
    ck_assert_ptr_nonnull(vectors);
    ck_assert_int_eq(usable_count(), 14);
    cJSON *v;
    int checked = 0;
    char *buf = malloc(TOKEN_CAP);
    dsql_signer *signer = dsql__signer_new(NULL);
    cJSON_ArrayForEach(v, vectors)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItem(v, "usable_as_kat")))
            continue;
        int admin = strcmp(jstr(v, "action"), "DbConnectAdmin") == 0;
        dsql_token_request p = {DSQL_STRUCT_VERSION, jstr(v, "hostname"), admin ? "admin" : "app_user",
                               jstr(v, "region"),
                               (uint32_t)cJSON_GetObjectItem(v, "expires_in")->valuedouble,
                               (int64_t)cJSON_GetObjectItem(v, "signing_time_unix")->valuedouble};
        dsql_credentials c = {(char *)jstr(v, "access_key_id"),
                              (char *)jstr(v, "secret_access_key"),
                              (char *)jstr(v, "session_token"), 0};
        size_t len;
        dsql_error err;
        ck_assert_msg(dsql_token_generate(&p, &c, buf, TOKEN_CAP, &len, &err) == DSQL_OK, "%s: %s",
                      jstr(v, "id"), err.message);
        ck_assert_uint_eq(len, strlen(buf));
        char sig[65];
        ck_assert(test_query_param(buf, "X-Amz-Signature", sig, sizeof sig));
        ck_assert_msg(strcmp(sig, jstr(v, "x_amz_signature")) == 0, "%s: signature", jstr(v, "id"));
        assert_same_params(buf, jstr(v, "expected_token"));
        if (strncmp(jstr(v, "id"), "botocore", 8) == 0) /* botocore's order is ours */
            ck_assert_str_eq(buf, jstr(v, "expected_token"));
        /* the caching signer gives the same bytes */
        static char again[TOKEN_CAP];
        ck_assert_int_eq(dsql__signer_token(signer, &p, &c, again, sizeof again, &len, NULL), DSQL_OK);
        ck_assert_str_eq(again, buf);
        checked++;
    }
    ck_assert_int_eq(checked, 14);
    dsql__signer_free(signer);
    free(buf);
}
END_TEST

/* The fast token path and the generic presigner are separate code; for
 * any input their signatures must agree. */
static void assert_matches_generic(const char *host, const char *region, const char *user,
                                   uint32_t expires, int64_t now, const dsql_credentials *c)
{
    static char buf[TOKEN_CAP];
    dsql_token_request p = {DSQL_STRUCT_VERSION, host, user, region, expires, now};
    dsql_error err;
    ck_assert_msg(dsql_token_generate(&p, c, buf, sizeof buf, NULL, &err) == DSQL_OK, "%s",
                  err.message);
    char lower[256];
    size_t i;
    for (i = 0; host[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
    lower[i] = '\0';
    dsql_sigv4_pair q[] = {{"Action", strcmp(user, "admin") ? "DbConnect" : "DbConnectAdmin"}};
    dsql_sigv4_pair h[] = {{"host", lower}};
    dsql_sigv4_request r = {.version = DSQL_STRUCT_VERSION, .mode = DSQL_SIGV4_QUERY,
                            .method = "GET", .path = "/", .query = q, .query_count = 1,
                            .headers = h, .header_count = 1, .region = region,
                            .service = "dsql", .time = now, .expires = expires};
    dsql_sigv4_result res;
    ck_assert_int_eq(dsql__sigv4_sign(&r, c, &res, NULL), DSQL_OK);
    char sig[65];
    ck_assert(test_query_param(buf, "X-Amz-Signature", sig, sizeof sig));
    ck_assert_str_eq(sig, res.signature);
    dsql__sigv4_result_clear(&res);
}

START_TEST(test_large_session_token_encoded)
{
    size_t n = 64 * 1024;
    char *tok = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        tok[i] = "AB+/=z9"[i % 7];
    tok[n] = '\0';
    dsql_credentials c = {"AKIDEXAMPLE", "secret/with+slash", tok, 0};
    assert_matches_generic("abc.dsql.us-east-1.on.aws", "us-east-1", "admin", 900, 1731001173, &c);
    static char buf[TOKEN_CAP];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "abc.dsql.us-east-1.on.aws", NULL, NULL, 0,
                           1731001173};
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    static char value[TOKEN_CAP];
    ck_assert(test_query_param(buf, "X-Amz-Security-Token", value, sizeof value));
    size_t want_len = 0;
    for (size_t i = 0; i < n; i++)
        want_len += strchr("+/=", tok[i]) ? 3 : 1;
    ck_assert_uint_eq(strlen(value), want_len);
    ck_assert(strncmp(value, "AB%2B%2F%3Dz9AB", 15) == 0);
    free(tok);
}
END_TEST

START_TEST(test_secrets_with_slash_and_plus)
{
    dsql_credentials c = {"AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, 0};
    assert_matches_generic("x.dsql.eu-west-1.on.aws", "eu-west-1", "app", 900, 1700000000, &c);
    /* a secret longer than one SHA-256 block takes the hashed-key path */
    char long_secret[300];
    memset(long_secret, 'k', sizeof long_secret - 1);
    long_secret[sizeof long_secret - 1] = '\0';
    c.secret_access_key = long_secret;
    assert_matches_generic("x.dsql.eu-west-1.on.aws", "eu-west-1", "app", 900, 1700000000, &c);
}
END_TEST

static void assert_date(int64_t now, const char *want)
{
    dsql_credentials c = {"AKID", "SECRET", NULL, 0};
    char buf[1024], date[32], credential[128];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, now};
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(test_query_param(buf, "X-Amz-Date", date, sizeof date));
    ck_assert_str_eq(date, want);
    ck_assert(test_query_param(buf, "X-Amz-Credential", credential, sizeof credential));
    char scope[64];
    snprintf(scope, sizeof scope, "AKID%%2F%.8s%%2Fus-east-1%%2Fdsql%%2Faws4_request", want);
    ck_assert_str_eq(credential, scope);
    assert_matches_generic("a.dsql.us-east-1.on.aws", "us-east-1", "admin", 900, now, &c);
}

START_TEST(test_calendar_edges)
{
    assert_date(1, "19700101T000001Z"); /* 0 means "now" */
    assert_date(951782400, "20000229T000000Z");   /* leap day of a 400-year */
    assert_date(1709164800, "20240229T000000Z");  /* leap day */
    assert_date(1709251199, "20240229T235959Z");
    assert_date(1735689599, "20241231T235959Z");  /* year rollover */
    assert_date(1735689600, "20250101T000000Z");
    assert_date(4107542399, "21000228T235959Z");  /* 2100 is not a leap year */
    assert_date(4107542400, "21000301T000000Z");
    assert_date(253402300799, "99991231T235959Z");
}
END_TEST

START_TEST(test_expiry_bounds)
{
    dsql_credentials c = {"AKID", "SECRET", NULL, 0};
    char buf[1024], exp[16];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", "u", NULL, 1, 1700000000};
    dsql_error err;
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(test_query_param(buf, "X-Amz-Expires", exp, sizeof exp));
    ck_assert_str_eq(exp, "1");
    p.expires_in = 604800;
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(test_query_param(buf, "X-Amz-Expires", exp, sizeof exp));
    ck_assert_str_eq(exp, "604800");
    assert_matches_generic("a.dsql.us-east-1.on.aws", "us-east-1", "u", 604800, 1700000000, &c);
    p.expires_in = 0;
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(test_query_param(buf, "X-Amz-Expires", exp, sizeof exp));
    ck_assert_str_eq(exp, "900");
    p.expires_in = 604801;
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, &err), DSQL_EINVAL);
    ck_assert_str_eq(err.message, "expires_in 604801 is outside 1..604800");
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_uppercase_hostname)
{
    dsql_credentials c = {"AKID", "SECRET", "TOKEN", 0};
    char upper[1024], lower[1024];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "ABC.DSQL.US-EAST-1.ON.AWS", NULL, NULL, 0, 1700000000};
    ck_assert_int_eq(dsql_token_generate(&p, &c, upper, sizeof upper, NULL, NULL), DSQL_OK);
    ck_assert(strncmp(upper, "ABC.DSQL.US-EAST-1.ON.AWS/?Action=DbConnectAdmin&", 49) == 0);
    p.hostname = "abc.dsql.us-east-1.on.aws";
    ck_assert_int_eq(dsql_token_generate(&p, &c, lower, sizeof lower, NULL, NULL), DSQL_OK);
    /* same region discovered (lowercased) and the same signature */
    ck_assert_str_eq(strchr(upper, '?'), strchr(lower, '?'));
    assert_matches_generic("ABC.DSQL.US-EAST-1.ON.AWS", "us-east-1", "admin", 900, 1700000000, &c);
}
END_TEST

START_TEST(test_scheme_stripped)
{
    dsql_credentials c = {"AKID", "SECRET", NULL, 0};
    char a[1024], b[1024];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "https://abc.dsql.us-east-1.on.aws/", NULL, NULL, 0,
                           1700000000};
    ck_assert_int_eq(dsql_token_generate(&p, &c, a, sizeof a, NULL, NULL), DSQL_OK);
    p.hostname = "abc.dsql.us-east-1.on.aws";
    ck_assert_int_eq(dsql_token_generate(&p, &c, b, sizeof b, NULL, NULL), DSQL_OK);
    ck_assert_str_eq(a, b);
    ck_assert(strncmp(a, "abc.dsql.us-east-1.on.aws/?", 27) == 0);
}
END_TEST

static void assert_rejected(const char *host, const char *region, const char *user,
                            const dsql_credentials *c, dsql_status want, const char *fragment)
{
    char buf[2048];
    strcpy(buf, "sentinel");
    dsql_token_request p = {DSQL_STRUCT_VERSION, host, user, region, 0, 1700000000};
    dsql_error err;
    ck_assert_int_eq(dsql_token_generate(&p, c, buf, sizeof buf, NULL, &err), want);
    ck_assert_int_eq(err.status, want);
    ck_assert_msg(strstr(err.message, fragment) != NULL, "'%s' not in '%s'", fragment, err.message);
    ck_assert_str_eq(buf, "");
}

START_TEST(test_bad_input)
{
    dsql_credentials c = {"AKID", "SECRET", NULL, 0};
    char long_host[300];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    assert_rejected(NULL, "r", NULL, &c, DSQL_EINVAL, "hostname is empty");
    assert_rejected("", "r", NULL, &c, DSQL_EINVAL, "hostname is empty");
    assert_rejected("https://", "r", NULL, &c, DSQL_EINVAL, "hostname is empty");
    assert_rejected(long_host, "r", NULL, &c, DSQL_EINVAL, "limit is 253");
    assert_rejected("a..b", "r", NULL, &c, DSQL_EINVAL, "empty label");
    assert_rejected(".a", "r", NULL, &c, DSQL_EINVAL, "empty label at position 1");
    char long_label[80];
    memset(long_label, 'b', 64);
    strcpy(long_label + 64, ".example.com");
    assert_rejected(long_label, "r", NULL, &c, DSQL_EINVAL, "label longer than 63");
    strcpy(long_label + 63, ".example.com"); /* 63 is allowed */
    char buf63[1024];
    dsql_token_request p63 = {DSQL_STRUCT_VERSION, long_label, NULL, "r", 0, 1700000000};
    ck_assert_int_eq(dsql_token_generate(&p63, &c, buf63, sizeof buf63, NULL, NULL), DSQL_OK);
    assert_rejected("a.b~c", "r", NULL, &c, DSQL_EINVAL, "invalid character (byte 0x7e) at position 4");
    assert_rejected("a.b.", "r", NULL, &c, DSQL_EINVAL, "ends with '.'");
    assert_rejected("host:5432", "r", NULL, &c, DSQL_EINVAL, "contains ':'");
    assert_rejected("bad host", "r", NULL, &c, DSQL_EINVAL, "invalid character (byte 0x20)");
    assert_rejected("localhost", NULL, NULL, &c, DSQL_EINVAL, "region is not set");
    assert_rejected("localhost", "US EAST", NULL, &c, DSQL_EINVAL, "region contains");
    assert_rejected("localhost", "r", "", &c, DSQL_EINVAL, "user is empty");
    dsql_credentials no_key = {NULL, "SECRET", NULL, 0};
    assert_rejected("localhost", "r", NULL, &no_key, DSQL_ECREDENTIALS, "no access key id");
    dsql_credentials no_secret = {"AKID", "", NULL, 0};
    assert_rejected("localhost", "r", NULL, &no_secret, DSQL_ECREDENTIALS, "no secret access key");
    assert_rejected("localhost", "r", NULL, NULL, DSQL_ECREDENTIALS, "no access key id");
    dsql_credentials expired = {"AKID", "SECRET", NULL, 1699999999};
    assert_rejected("localhost", "r", NULL, &expired, DSQL_EEXPIRED, "expired 1 s ago");
}
END_TEST

START_TEST(test_buffer_too_small)
{
    dsql_credentials c = {"AKID", "SECRET", "TOK", 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, 1700000000};
    char big[1024];
    size_t need;
    ck_assert_int_eq(dsql_token_generate(&p, &c, big, sizeof big, &need, NULL), DSQL_OK);
    ck_assert_uint_eq(need, strlen(big));
    char small[1024];
    memset(small, 'x', sizeof small);
    size_t reported = 0;
    dsql_error err;
    ck_assert_int_eq(dsql_token_generate(&p, &c, small, need, &reported, &err), DSQL_EBUFSIZE);
    ck_assert_uint_eq(reported, need);
    ck_assert_str_eq(small, "");
    ck_assert_uint_eq((unsigned char)small[1], 'x'); /* nothing else written */
    ck_assert_int_eq(dsql_token_generate(&p, &c, NULL, 0, &reported, &err), DSQL_EBUFSIZE);
    ck_assert_uint_eq(reported, need);
    ck_assert_int_eq(dsql_token_generate(&p, &c, small, need + 1, &reported, NULL), DSQL_OK);
    ck_assert_str_eq(small, big);
}
END_TEST

START_TEST(test_expiry_clamped_to_credentials)
{
    dsql_credentials c = {"AKID", "SECRET", "TOK", 1700000000 + 300};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 900, 1700000000};
    char buf[1024], exp[16];
    ck_assert_int_eq(dsql_token_generate(&p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(test_query_param(buf, "X-Amz-Expires", exp, sizeof exp));
    ck_assert_str_eq(exp, "300");
}
END_TEST

START_TEST(test_region_discovery)
{
    static const struct { const char *host, *region; } ok[] = {
        {"abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "us-east-1"},
        {"x.dsql-fips.us-gov-west-1.on.aws", "us-gov-west-1"},
        {"x.DSQL.EU-WEST-2.ON.AWS", "eu-west-2"},
        {"https://x.dsql.ap-southeast-2.on.aws", "ap-southeast-2"},
    };
    static const char *bad[] = {"localhost", "x.dsql.on.aws", "dsql.us-east-1.on.aws",
                                "x.notdsql.us-east-1.on.aws", "x.dsql.us-east-1.on.aws.evil.com",
                                "127.0.0.1"};
    char buf[DSQL_REGION_MAX + 1];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_int_eq(dsql_region_from_hostname(ok[i].host, buf, sizeof buf, NULL), DSQL_OK);
        ck_assert_str_eq(buf, ok[i].region);
    }
    dsql_error err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(dsql_region_from_hostname(bad[i], buf, sizeof buf, &err), DSQL_EINVAL);
        ck_assert_msg(strstr(err.message, "not an Aurora DSQL endpoint"), "%s", bad[i]);
    }
    ck_assert_int_eq(dsql_region_from_hostname("x.dsql.us-east-1.on.aws", buf, 5, NULL),
                     DSQL_EBUFSIZE);
}
END_TEST

/* --- token providers ------------------------------------------------- */

static int fake_calls;
static dsql_status fake_get(void *self, dsql_credentials *out, dsql_error *err)
{
    (void)self;
    fake_calls++;
    dsql_credentials c = {"AKIDFAKE", "fake-secret", NULL, 0};
    return dsql_credentials_copy(out, &c, err);
}
static const dsql_credentials_provider_vtable FAKE = {DSQL_STRUCT_VERSION, fake_get, NULL};

START_TEST(test_signing_provider_with_custom_credentials)
{
    fake_calls = 0;
    dsql_credentials_provider *cp = dsql_credentials_provider_new(&FAKE, NULL, NULL);
    ck_assert_ptr_nonnull(cp);
    dsql_token_provider_options opt = {DSQL_STRUCT_VERSION, "eu-central-1", 60};
    dsql_token_provider *tp = dsql_token_provider_signing(cp, &opt, NULL);
    ck_assert_ptr_nonnull(tp);
    char buf[2048], v[128];
    size_t len;
    dsql_token_request req = {DSQL_STRUCT_VERSION, "localhost", "app", NULL, 0, 0};
    ck_assert_int_eq(dsql_token_provider_get(tp, &req, buf, sizeof buf, &len, NULL), DSQL_OK);
    ck_assert_int_eq(fake_calls, 1);
    ck_assert(test_query_param(buf, "X-Amz-Credential", v, sizeof v));
    ck_assert(strstr(v, "%2Feu-central-1%2Fdsql%2F") != NULL); /* provider region */
    ck_assert(test_query_param(buf, "X-Amz-Expires", v, sizeof v));
    ck_assert_str_eq(v, "60");
    ck_assert(test_query_param(buf, "Action", v, sizeof v));
    ck_assert_str_eq(v, "DbConnect");
    /* a DSQL hostname's own region wins over the provider default */
    req.hostname = "c.dsql.us-west-2.on.aws";
    req.expires_in = 120;
    ck_assert_int_eq(dsql_token_provider_get(tp, &req, buf, sizeof buf, &len, NULL), DSQL_OK);
    ck_assert(test_query_param(buf, "X-Amz-Credential", v, sizeof v));
    ck_assert(strstr(v, "%2Fus-west-2%2F") != NULL);
    ck_assert(test_query_param(buf, "X-Amz-Expires", v, sizeof v));
    ck_assert_str_eq(v, "120");
    dsql_token_provider_free(tp);
}
END_TEST

START_TEST(test_env_provider)
{
    dsql_credentials_provider *p = dsql_credentials_provider_env(NULL);
    dsql_credentials c;
    dsql_error err;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SESSION_TOKEN", "", 1);
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_ECREDENTIALS);
    ck_assert(strstr(err.message, "are not set"));
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_ECREDENTIALS);
    ck_assert(strstr(err.message, "AWS_SECRET_ACCESS_KEY is not"));
    setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t", 1);
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_OK);
    ck_assert_str_eq(c.access_key_id, "AKIDENV");
    ck_assert_ptr_null(c.session_token); /* empty counts as unset */
    dsql_credentials_clear(&c);
    ck_assert_ptr_null(c.secret_access_key);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    ck_assert_int_eq(dsql_credentials_provider_get(p, &c, &err), DSQL_OK);
    ck_assert_str_eq(c.session_token, "tok");
    dsql_credentials_clear(&c);
    dsql_credentials_provider_free(p);
}
END_TEST

/* --- the cached encodings of the session token ----------------------- */

/* A session token of n bytes (1..255, so every byte class: unreserved,
 * '+', '/', '=', '%', controls, high bytes) starting at byte `first`. */
static char *every_byte_token(size_t n, unsigned first)
{
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        t[i] = (char)((first + i) % 255 + 1);
    t[n] = '\0';
    return t;
}

/* Static credentials behind the caching provider, as the default chain
 * hands them to the signing provider (which signs from the snapshot's
 * encoding). */
static dsql_token_provider *snapshot_provider(const dsql_credentials *c)
{
    dsql_credentials_provider *cp =
        dsql_credentials_provider_cached(dsql_credentials_provider_static(c, NULL), NULL);
    ck_assert_ptr_nonnull(cp);
    dsql_token_provider *tp = dsql_token_provider_signing(cp, NULL, NULL);
    ck_assert_ptr_nonnull(tp);
    return tp;
}

/* RFC 3986 as SigV4 wants it, written out here independently of the
 * library's encoder. */
static void reference_encode(char *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            *out++ = (char)c;
        else
            out += sprintf(out, "%%%02X", c);
    }
    *out = '\0';
}

/* The three paths: encoded in place (one-shot), the signer's cached
 * encoding (signed twice: filled, then reused) and the credentials
 * snapshot's encoding give the same token. */
static void assert_paths_agree(dsql_signer *signer, const dsql_credentials *c, uint32_t len)
{
    static char want[TOKEN_CAP], got[TOKEN_CAP];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", "app", NULL, 900, 0};
    p.now = (int64_t)time(NULL); /* the provider signs at the current time */
    ck_assert_int_eq(dsql_token_generate(&p, c, want, sizeof want, NULL, NULL), DSQL_OK);
    static char value[TOKEN_CAP], expected[TOKEN_CAP];
    ck_assert(test_query_param(want, "X-Amz-Security-Token", value, sizeof value));
    reference_encode(expected, c->session_token);
    ck_assert_msg(strcmp(value, expected) == 0, "encoding of a %u-byte session token", len);
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(dsql__signer_token(signer, &p, c, got, sizeof got, NULL, NULL), DSQL_OK);
        ck_assert_msg(strcmp(got, want) == 0, "signer, %u-byte session token, round %d", len,
                      round + 1);
    }
    dsql_token_provider *tp = snapshot_provider(c);
    dsql_token_request req = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", "app", NULL, 900, 0};
    for (int tries = 0; tries < 3; tries++) { /* a second may pass between the two */
        ck_assert_int_eq(dsql_token_provider_get(tp, &req, got, sizeof got, NULL, NULL),
                         DSQL_OK);
        p.now = (int64_t)time(NULL);
        ck_assert_int_eq(dsql_token_generate(&p, c, want, sizeof want, NULL, NULL), DSQL_OK);
        if (strcmp(got, want) == 0)
            break;
    }
    ck_assert_msg(strcmp(got, want) == 0, "snapshot, %u-byte session token", len);
    dsql_token_provider_free(tp);
}

START_TEST(test_session_token_every_byte_class)
{
    dsql_signer *signer = dsql__signer_new(NULL);
    /* every length around the encoder's 16-byte steps, then STS sizes */
    static const uint32_t lens[] = {1,  2,  3,  4,  5,   15,  16,  17,   31,   32,  33,
                                    47, 48, 49, 64, 255, 900, 1200, 2048, 4000, 9000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (unsigned first = 0; first < 255; first += 37) {
            char *tok = every_byte_token(lens[i], first);
            dsql_credentials c = {"ASIAEXAMPLE", "secret/with+slash", tok, 0};
            assert_paths_agree(signer, &c, lens[i]);
            if (lens[i] == 1200 && first == 0) /* and the generic presigner agrees */
                assert_matches_generic("a.dsql.us-east-1.on.aws", "us-east-1", "app", 900,
                                       1700000000, &c);
            free(tok);
        }
    dsql__signer_free(signer);
}
END_TEST

/* The signer keeps one session token's encoding per slot: a different
 * token of the same length (one byte changed, first or last) is noticed. */
START_TEST(test_signer_notices_changed_session_token)
{
    dsql_signer *signer = dsql__signer_new(NULL);
    static char a[1201], b[1201];
    memset(a, 'A', 1200);
    memcpy(b, a, sizeof b);
    static char want[4096], got[4096];
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", "admin", NULL, 900,
                           1700000000};
    for (int pos = 0; pos < 1200; pos += 1199)
        for (int round = 0; round < 4; round++) {
            b[pos] = round % 2 ? '/' : 'B'; /* alternates a's and b's */
            dsql_credentials c = {"ASIAEXAMPLE", "secret", round % 2 ? b : a, 0};
            ck_assert_int_eq(dsql_token_generate(&p, &c, want, sizeof want, NULL, NULL), DSQL_OK);
            ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, NULL),
                             DSQL_OK);
            ck_assert_msg(strcmp(got, want) == 0, "byte %d changed, round %d", pos, round);
        }
    /* no session token after one: none signed */
    dsql_credentials plain = {"ASIAEXAMPLE", "secret", NULL, 0};
    ck_assert_int_eq(dsql__signer_token(signer, &p, &plain, got, sizeof got, NULL, NULL), DSQL_OK);
    ck_assert_ptr_null(strstr(got, "X-Amz-Security-Token"));
    dsql__signer_free(signer);
}
END_TEST

/* The signer keeps hash state per action and for one signing second:
 * tokens in the same second (other hosts, both actions), the next second, back again and the
 * next day all match the one-shot path. */
START_TEST(test_signer_across_seconds)
{
    static const int64_t offsets[] = {0, 0, 0, 1, 1, 0, 59, 86400, 86400, 1};
    static const char *const hosts[] = {"a.dsql.us-east-1.on.aws", "B.dsql.us-east-1.on.aws",
                                        "c.dsql.us-east-1.on.aws"};
    dsql_signer *signer = dsql__signer_new(NULL);
    dsql_credentials c = {"ASIAEXAMPLE", "secret", "session/token+", 0};
    char want[2048], got[2048];
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
        for (size_t h = 0; h < 3; h++) {
            /* both actions, each with its own cached prefix */
            dsql_token_request p = {DSQL_STRUCT_VERSION, hosts[h], h == 1 ? "admin" : "app", NULL,
                                   900, 1700000000 + offsets[i]};
            ck_assert_int_eq(dsql_token_generate(&p, &c, want, sizeof want, NULL, NULL), DSQL_OK);
            ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, NULL),
                             DSQL_OK);
            ck_assert_msg(strcmp(got, want) == 0, "step %zu, host %s", i, hosts[h]);
        }
    /* another key id with the same secret: a new prefix for each action */
    c.access_key_id = "ASIAOTHERKEYID";
    for (size_t h = 0; h < 3; h++) {
        dsql_token_request p = {DSQL_STRUCT_VERSION, hosts[h], h == 1 ? "admin" : "app", NULL,
                               900, 1700000000};
        ck_assert_int_eq(dsql_token_generate(&p, &c, want, sizeof want, NULL, NULL), DSQL_OK);
        ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, NULL), DSQL_OK);
        ck_assert_msg(strcmp(got, want) == 0, "new key id, host %s", hosts[h]);
    }
    dsql__signer_free(signer);
}
END_TEST

/* The signer checks a hostname once and keeps what a token takes from it
 * (host, region, lowercased canonical tail), keyed by the hostname's
 * bytes, never by its address: the same buffer rewritten with another
 * host (one character, only its case, another region, a scheme or a
 * trailing '/'), an invalid host in that buffer, and more hosts than the
 * signer keeps all behave as the one-shot path. */
START_TEST(test_signer_host_memo_keyed_by_bytes)
{
    static const char *const hosts[] = {
        "abc.dsql.us-east-1.on.aws",         "abd.dsql.us-east-1.on.aws",
        "ABC.dsql.us-east-1.on.aws",         "abc.dsql.eu-west-1.on.aws",
        "https://abc.dsql.us-east-1.on.aws", "abc.dsql.us-east-1.on.aws/",
        "abc.DSQL.US-EAST-1.ON.AWS",         "abc.dsql.us-east-1.on.aws",
        "a.dsql.us-east-1.on.aws",           "b.dsql.us-east-1.on.aws",
        "c.dsql.us-east-1.on.aws",           "d.dsql.us-east-1.on.aws",
        "e.dsql.us-east-1.on.aws",           "abd.dsql.us-east-1.on.aws"};
    dsql_signer *signer = dsql__signer_new(NULL);
    dsql_credentials c = {"ASIAEXAMPLE", "secret", "session/token+", 0};
    char host[64], want[2048], got[2048];
    dsql_token_request p = {DSQL_STRUCT_VERSION, host, "app", NULL, 900, 1700000000};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
            strcpy(host, hosts[i]);
            ck_assert_int_eq(dsql_token_generate(&p, &c, want, sizeof want, NULL, NULL), DSQL_OK);
            ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, NULL),
                             DSQL_OK);
            ck_assert_msg(strcmp(got, want) == 0, "round %d, host %s:\n got %s\nwant %s", round,
                          host, got, want);
        }
    /* an invalid host in the buffer a valid one was signed from */
    static const char *const bad[] = {"abc.dsql.us-east-1.on.aw~", "abc.dsql.us-east-1.on.aws:1",
                                      "abc.dsql.us-east-1.on.aws.", "abc",
                                      "abc.dsql.us_east-1.on.aws"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(host, "abc.dsql.us-east-1.on.aws");
        ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, NULL), DSQL_OK);
        strcpy(host, bad[i]);
        dsql_error want_err, got_err;
        ck_assert_int_ne(dsql_token_generate(&p, &c, want, sizeof want, NULL, &want_err), DSQL_OK);
        ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, &got_err),
                         want_err.status);
        ck_assert_str_eq(got_err.message, want_err.message);
        ck_assert_str_eq(got, "");
    }
    dsql__signer_free(signer);
}
END_TEST

/* Within one second the signer keeps the canonical-request hash one block
 * past the prefix, keyed by the bytes that complete that block: other
 * lifetimes (1 to 6 digits) and a session token coming and going in the
 * same second all match the one-shot path. */
START_TEST(test_signer_same_second_other_lifetimes)
{
    static const uint32_t lifetimes[] = {900, 3600, 1, 604800, 900, 60, 900};
    static char tok[] = "session/token+", none[] = "";
    char *const sessions[] = {tok, NULL, tok, none};
    dsql_signer *signer = dsql__signer_new(NULL);
    char want[2048], got[2048];
    for (size_t i = 0; i < sizeof lifetimes / sizeof lifetimes[0]; i++)
        for (size_t k = 0; k < sizeof sessions / sizeof sessions[0]; k++) {
            dsql_credentials c = {"ASIAEXAMPLE", "secret", sessions[k], 0};
            dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws",
                                    k % 2 ? "admin" : "app", NULL, lifetimes[i], 1700000000};
            ck_assert_int_eq(dsql_token_generate(&p, &c, want, sizeof want, NULL, NULL), DSQL_OK);
            ck_assert_int_eq(dsql__signer_token(signer, &p, &c, got, sizeof got, NULL, NULL),
                             DSQL_OK);
            ck_assert_msg(strcmp(got, want) == 0, "lifetime %u, session %zu:\n got %s\nwant %s",
                          lifetimes[i], k, got, want);
        }
    dsql__signer_free(signer);
}
END_TEST

/* Freed blocks must not hold the session token, raw or encoded: the
 * signer's cached encoding is wiped when replaced and when freed. */
#define SESSION_MARK "SeSs/IoN+MaRk="
#define SESSION_MARK_ENC "SeSs%2FIoN%2BMaRk%3D"
static atomic_int session_dirty_frees;

static int holds(const char *b, size_t size, const char *mark)
{
    size_t k = strlen(mark);
    for (size_t i = 0; i + k <= size; i++)
        if (memcmp(b + i, mark, k) == 0)
            return 1;
    return 0;
}

static void mark_free(void *p)
{
    if (!p)
        return;
    size_t size = test_sized_size(p);
    if (holds(p, size, SESSION_MARK) || holds(p, size, SESSION_MARK_ENC))
        atomic_fetch_add(&session_dirty_frees, 1);
    test_sized_free(p);
}

/* filled, so the scan of a freed block never reads bytes nobody wrote */
static void *mark_malloc(size_t n)
{
    void *p = test_sized_malloc(n);
    if (p)
        memset(p, 0xa5, n);
    return p;
}

static void *mark_realloc(void *p, size_t n)
{
    return test_sized_realloc(p, n, mark_malloc, mark_free);
}

START_TEST(test_session_encodings_wiped)
{
    atomic_store(&session_dirty_frees, 0);
    dsql_set_allocator(mark_malloc, mark_realloc, mark_free);
    char tok[64], other[64], buf[4096];
    snprintf(tok, sizeof tok, "%s1", SESSION_MARK);
    snprintf(other, sizeof other, "%s2%s", SESSION_MARK, SESSION_MARK);
    dsql_credentials c = {"ASIAEXAMPLE", "secret", tok, 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, 0};
    dsql_signer *signer = dsql__signer_new(NULL);
    ck_assert_int_eq(dsql__signer_token(signer, &p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    c.session_token = other; /* a longer one: the cache block is replaced */
    ck_assert_int_eq(dsql__signer_token(signer, &p, &c, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(strstr(buf, SESSION_MARK_ENC "2"));
    dsql__signer_free(signer);
    /* the caching provider's snapshot and its encoding */
    dsql_token_provider *tp = snapshot_provider(&c);
    dsql_token_request req = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, 0};
    ck_assert_int_eq(dsql_token_provider_get(tp, &req, buf, sizeof buf, NULL, NULL), DSQL_OK);
    ck_assert(strstr(buf, SESSION_MARK_ENC "2"));
    dsql_token_provider_free(tp);
    dsql_set_allocator(NULL, NULL, NULL);
    ck_assert_int_eq(atomic_load(&session_dirty_frees), 0);
}
END_TEST

typedef struct thread_arg {
    dsql_signer *signer;
    const char *want;
    int mismatches;
} thread_arg;

static void *sign_many(void *arg)
{
    thread_arg *a = arg;
    dsql_credentials c = {"AKID", "SECRET", "TOK", 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, 1700000000};
    char buf[1024];
    for (int i = 0; i < 20000; i++) {
        if (dsql__signer_token(a->signer, &p, &c, buf, sizeof buf, NULL, NULL) != DSQL_OK ||
            strcmp(buf, a->want) != 0)
            a->mismatches++;
    }
    return NULL;
}

START_TEST(test_signer_shared_by_threads)
{
    dsql_credentials c = {"AKID", "SECRET", "TOK", 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, 1700000000};
    char want[1024];
    ck_assert_int_eq(dsql_token_generate(&p, &c, want, sizeof want, NULL, NULL), DSQL_OK);
    dsql_signer *s = dsql__signer_new(NULL);
    pthread_t th[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){s, want, 0};
        pthread_create(&th[i], NULL, sign_many, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].mismatches, 0);
    }
    /* a new day or secret re-derives the key instead of reusing it */
    char next_day[1024], again[1024];
    p.now += 86400;
    ck_assert_int_eq(dsql__signer_token(s, &p, &c, next_day, sizeof next_day, NULL, NULL), DSQL_OK);
    ck_assert_int_eq(dsql_token_generate(&p, &c, again, sizeof again, NULL, NULL), DSQL_OK);
    ck_assert_str_eq(next_day, again);
    c.secret_access_key = "OTHER";
    ck_assert_int_eq(dsql__signer_token(s, &p, &c, next_day, sizeof next_day, NULL, NULL), DSQL_OK);
    ck_assert_int_eq(dsql_token_generate(&p, &c, again, sizeof again, NULL, NULL), DSQL_OK);
    ck_assert_str_eq(next_day, again);
    dsql__signer_free(s);
}
END_TEST

/* --- dsql_token_provider_get_alloc / dsql_token_free --------------- */

/* An allocator that counts live blocks, can fail the n-th allocation and
 * inspects every token-sized block it frees: all of it must be zero. */
#define TOKEN_BLOCK_MIN 64 /* the only smaller block here is the provider handle */

static long live_blocks, fail_countdown, unwiped_frees;
static int inspect_frees; /* 0 while the signer frees its own blocks */

static void *insp_malloc(size_t n)
{
    if (fail_countdown > 0 && --fail_countdown == 0)
        return NULL;
    void *p = test_sized_malloc(n);
    if (p)
        live_blocks++;
    return p;
}

static void insp_free(void *p)
{
    if (!p)
        return;
    size_t size = test_sized_size(p);
    const unsigned char *b = p;
    if (inspect_frees && size >= TOKEN_BLOCK_MIN)
        for (size_t i = 0; i < size; i++)
            if (b[i]) {
                unwiped_frees++;
                break;
            }
    live_blocks--;
    test_sized_free(p);
}

static void *insp_realloc(void *p, size_t n)
{
    return test_sized_realloc(p, n, insp_malloc, insp_free);
}

static void alloc_setup(void)
{
    live_blocks = fail_countdown = unwiped_frees = 0;
    inspect_frees = 1;
    dsql_set_allocator(insp_malloc, insp_realloc, insp_free);
}

static void alloc_teardown(void) { dsql_set_allocator(NULL, NULL, NULL); }

/* A token provider double following the buffer contract with a token of
 * `size` bytes, plus the ways a provider can misbehave. */
typedef struct sized_provider {
    size_t size;
    int calls;
    size_t caps[4];       /* cap of each call */
    dsql_status fail_with; /* not DSQL_OK: write half a token, then fail */
    int always_more;      /* DSQL_EBUFSIZE every time, asking for twice the cap */
    size_t report_len;    /* not 0: DSQL_EBUFSIZE reporting this length */
    int no_nul;           /* DSQL_OK with the buffer full and no NUL */
} sized_provider;

static dsql_status sized_fail(dsql_error *err, dsql_status st, const char *msg)
{
    if (err) {
        err->status = st;
        snprintf(err->message, sizeof err->message, "%s", msg);
    }
    return st;
}

static dsql_status sized_token(void *self, const dsql_token_request *req, char *buf,
                               size_t cap, size_t *len, dsql_error *err)
{
    sized_provider *sp = self;
    (void)req;
    if (sp->calls < 4)
        sp->caps[sp->calls] = cap;
    sp->calls++;
    if (sp->fail_with != DSQL_OK) {
        memset(buf, 'T', cap / 2);
        return sized_fail(err, sp->fail_with, "sized provider: no credentials today");
    }
    if (sp->no_nul) {
        memset(buf, 'T', cap);
        return DSQL_OK;
    }
    if (sp->always_more || sp->report_len) {
        *len = sp->report_len ? sp->report_len : cap * 2;
        buf[0] = '\0';
        return sized_fail(err, DSQL_EBUFSIZE, "sized provider: buffer too small");
    }
    *len = sp->size;
    if (cap < sp->size + 1) {
        buf[0] = '\0';
        return sized_fail(err, DSQL_EBUFSIZE, "sized provider: buffer too small");
    }
    memset(buf, 'T', sp->size);
    buf[sp->size] = '\0';
    /* scratch behind the NUL, which the caller must not hand out unwiped */
    memset(buf + sp->size + 1, 'S', cap - sp->size - 1 < 32 ? cap - sp->size - 1 : 32);
    return DSQL_OK;
}

static const dsql_token_provider_vtable SIZED = {DSQL_STRUCT_VERSION, sized_token, NULL};

static const dsql_token_request ALLOC_REQ = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws",
                                             "admin", NULL, 0, 0};

static int all_t(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != 'T')
            return 0;
    return s[n] == '\0';
}

/* Frees tp; then every block must be back and no token block may have
 * been freed unwiped. */
static void free_and_check_blocks(dsql_token_provider *tp)
{
    dsql_token_provider_free(tp);
    ck_assert_msg(live_blocks == 0, "%ld blocks not freed", live_blocks);
    ck_assert_msg(unwiped_frees == 0, "%ld token blocks freed unwiped", unwiped_frees);
}

/* Asks tp for an allocated token (with or without len_out), which must
 * fail with want, in the return value and in *err, and leave the token
 * NULL and the length 0. `what` names the case in a failure. */
enum { NO_LEN_OUT, LEN_OUT };
static void expect_alloc_fails(const char *what, dsql_token_provider *tp, int len_out,
                               dsql_status want, dsql_error *err)
{
    char *token = (char *)"not touched";
    size_t len = 99;
    *err = (dsql_error){0};
    dsql_status st =
        dsql_token_provider_get_alloc(tp, &ALLOC_REQ, &token, len_out ? &len : NULL, err);
    ck_assert_msg(st == want && err->status == want, "%s: %s (err.status %s), want %s: %s", what,
                  dsql_status_name(st), dsql_status_name(err->status), dsql_status_name(want),
                  err->message);
    ck_assert_msg(token == NULL, "%s: the token was not set to NULL", what);
    ck_assert_msg(!len_out || len == 0, "%s: len %zu, want 0", what, len);
}

/* The inspection itself must be able to fail. */
START_TEST(test_alloc_inspector_detects_unwiped)
{
    char *p = insp_malloc(100);
    ck_assert_ptr_nonnull(p);
    memset(p, 0, 100);
    p[50] = 'x';
    insp_free(p);
    ck_assert_int_eq(unwiped_frees, 1);
    ck_assert_int_eq(live_blocks, 0);
}
END_TEST

START_TEST(test_alloc_token_signing_provider)
{
    dsql_credentials_provider *cp = dsql_credentials_provider_new(&FAKE, NULL, NULL);
    dsql_token_provider_options opt = {DSQL_STRUCT_VERSION, "eu-central-1", 60};
    dsql_token_provider *tp = dsql_token_provider_signing(cp, &opt, NULL);
    ck_assert_ptr_nonnull(tp);
    dsql_token_request req = {DSQL_STRUCT_VERSION, "localhost", "app", NULL, 0, 0};
    char *token = NULL, v[128];
    size_t len = 0;
    dsql_error err = {0};
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &req, &token, &len, &err), DSQL_OK);
    ck_assert_ptr_nonnull(token);
    ck_assert_uint_eq(len, strlen(token));
    ck_assert(strncmp(token, "localhost/?Action=DbConnect&", 28) == 0);
    ck_assert(test_query_param(token, "X-Amz-Credential", v, sizeof v));
    ck_assert(strstr(v, "AKIDFAKE%2F") && strstr(v, "%2Feu-central-1%2Fdsql%2F"));
    ck_assert(test_query_param(token, "X-Amz-Signature", v, sizeof v));
    ck_assert_uint_eq(strlen(v), 64);
    dsql_token_free(token);
    /* len_out may be NULL */
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &req, &token, NULL, NULL), DSQL_OK);
    ck_assert_ptr_nonnull(token);
    dsql_token_free(token);
    dsql_token_free(NULL);
    ck_assert_int_eq(unwiped_frees, 0);
    inspect_frees = 0; /* the signer's blocks are not tokens */
    dsql_token_provider_free(tp);
    ck_assert_int_eq(live_blocks, 0);
}
END_TEST

START_TEST(test_alloc_token_first_buffer_fits)
{
    sized_provider sp = {.size = 1500};
    dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
    char *token = NULL;
    size_t len = 0;
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &ALLOC_REQ, &token, &len, NULL),
                     DSQL_OK);
    ck_assert_int_eq(sp.calls, 1);
    ck_assert_uint_eq(len, 1500);
    ck_assert(all_t(token, 1500));
    /* the provider's scratch behind the NUL is gone already */
    ck_assert_int_eq(token[1501], '\0');
    dsql_token_free(token); /* wipes the whole block */
    free_and_check_blocks(tp);
}
END_TEST

/* A token longer than the first guess: one DSQL_EBUFSIZE, then a buffer of
 * exactly the reported length + 1. */
START_TEST(test_alloc_token_ebufsize_retry)
{
    sized_provider sp = {.size = 10000};
    dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
    char *token = NULL;
    size_t len = 0;
    dsql_error err = {0};
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &ALLOC_REQ, &token, &len, &err),
                     DSQL_OK);
    ck_assert_int_eq(sp.calls, 2);
    ck_assert_uint_lt(sp.caps[0], 10001);
    ck_assert_uint_eq(sp.caps[1], 10001);
    ck_assert_uint_eq(len, 10000);
    ck_assert(all_t(token, 10000));
    ck_assert_int_eq(err.status, DSQL_OK); /* no leftover of the first round */
    ck_assert_str_eq(err.message, "");
    ck_assert_int_eq(live_blocks, 2); /* the handle and the token */
    dsql_token_free(token);
    free_and_check_blocks(tp); /* the first buffer was wiped too */
}
END_TEST

START_TEST(test_alloc_token_provider_keeps_asking)
{
    sized_provider sp = {.always_more = 1};
    dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
    dsql_error err;
    expect_alloc_fails("always more", tp, LEN_OUT, DSQL_EINTERNAL, &err);
    ck_assert_msg(strstr(err.message, "asked for a larger buffer again"), "%s", err.message);
    ck_assert_int_eq(sp.calls, 2);
    free_and_check_blocks(tp);
}
END_TEST

/* DSQL_EBUFSIZE with a length that already fits (or SIZE_MAX, whose + 1
 * wraps to 0) would make the retry pointless or undersized. */
START_TEST(test_alloc_token_provider_bad_length)
{
    static const size_t lens[] = {10, 4095, SIZE_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        sized_provider sp = {.report_len = lens[i]};
        dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
        char what[64];
        snprintf(what, sizeof what, "reported length %zu", lens[i]);
        dsql_error err;
        expect_alloc_fails(what, tp, NO_LEN_OUT, DSQL_EINTERNAL, &err);
        ck_assert_msg(strstr(err.message, "returned DSQL_EBUFSIZE for a"), "%s: %s", what,
                      err.message);
        ck_assert_msg(sp.calls == 1, "%s: %d calls", what, sp.calls);
        dsql_token_provider_free(tp);
    }
    sized_provider sp = {.no_nul = 1};
    dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
    dsql_error err;
    expect_alloc_fails("no NUL", tp, NO_LEN_OUT, DSQL_EINTERNAL, &err);
    ck_assert_msg(strstr(err.message, "not NUL-terminated"), "%s", err.message);
    free_and_check_blocks(tp);
}
END_TEST

/* The provider's status and message come through unchanged; the half
 * token it wrote is wiped with the buffer. */
START_TEST(test_alloc_token_provider_error_passed_through)
{
    sized_provider sp = {.fail_with = DSQL_ECREDENTIALS};
    dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
    dsql_error err;
    expect_alloc_fails("provider error", tp, LEN_OUT, DSQL_ECREDENTIALS, &err);
    ck_assert_str_eq(err.message, "sized provider: no credentials today");
    ck_assert_int_eq(sp.calls, 1);
    free_and_check_blocks(tp);
}
END_TEST

START_TEST(test_alloc_token_bad_arguments)
{
    sized_provider sp = {.size = 10};
    dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
    dsql_error err = {0};
    char *token = (char *)"not touched";
    size_t len = 99;
    ck_assert_int_eq(dsql_token_provider_get_alloc(NULL, &ALLOC_REQ, &token, &len, &err),
                     DSQL_EINVAL);
    ck_assert_str_eq(err.message, "token provider is NULL");
    ck_assert_ptr_null(token);
    ck_assert_uint_eq(len, 0);
    token = (char *)"not touched";
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, NULL, &token, NULL, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "token request is NULL"), "%s", err.message);
    ck_assert_ptr_null(token);
    dsql_token_request old = ALLOC_REQ;
    old.version = DSQL_STRUCT_VERSION + 1;
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &old, &token, NULL, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "version other than"), "%s", err.message);
    len = 99;
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &ALLOC_REQ, NULL, &len, &err),
                     DSQL_EINVAL);
    ck_assert_str_eq(err.message, "token_out is NULL");
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(dsql_token_provider_get_alloc(tp, NULL, NULL, NULL, NULL), DSQL_EINVAL);
    ck_assert_int_eq(sp.calls, 0); /* and no buffer was allocated for them */
    ck_assert_int_eq(live_blocks, 1);
    dsql_token_provider_free(tp);
    ck_assert_int_eq(live_blocks, 0);
}
END_TEST

/* The first buffer, then (on the DSQL_EBUFSIZE path) the second one fails
 * to allocate: DSQL_ENOMEM naming the buffer, NULL out, nothing leaked. */
START_TEST(test_alloc_token_out_of_memory)
{
    static const struct {
        size_t size;
        long fail_nth;
        int calls;
        const char *what;
    } cases[] = {
        {100, 1, 0, "out of memory for a 4096-byte token buffer"},
        {10000, 1, 0, "out of memory for a 4096-byte token buffer"},
        {10000, 2, 1, "out of memory for a 10001-byte token buffer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sized_provider sp = {.size = cases[i].size};
        dsql_token_provider *tp = dsql_token_provider_new(&SIZED, &sp, NULL);
        ck_assert_ptr_nonnull(tp);
        char *token = (char *)"not touched";
        size_t len = 99;
        dsql_error err = {0};
        fail_countdown = cases[i].fail_nth;
        ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &ALLOC_REQ, &token, &len, &err),
                         DSQL_ENOMEM);
        fail_countdown = 0;
        ck_assert_int_eq(err.status, DSQL_ENOMEM);
        ck_assert_str_eq(err.message, cases[i].what);
        ck_assert_ptr_null(token);
        ck_assert_uint_eq(len, 0);
        ck_assert_int_eq(sp.calls, cases[i].calls);
        ck_assert_int_eq(live_blocks, 1); /* only the provider handle */
        dsql_token_provider_free(tp);
        ck_assert_int_eq(live_blocks, 0);
    }
    ck_assert_int_eq(unwiped_frees, 0);
}
END_TEST

static Suite *token_suite(void)
{
    load_vectors();
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("token");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_published_tokens);
    tcase_add_test(tc, test_large_session_token_encoded);
    tcase_add_test(tc, test_secrets_with_slash_and_plus);
    tcase_add_test(tc, test_calendar_edges);
    tcase_add_test(tc, test_expiry_bounds);
    tcase_add_test(tc, test_uppercase_hostname);
    tcase_add_test(tc, test_scheme_stripped);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_buffer_too_small);
    tcase_add_test(tc, test_expiry_clamped_to_credentials);
    tcase_add_test(tc, test_region_discovery);
    tcase_add_test(tc, test_signing_provider_with_custom_credentials);
    tcase_add_test(tc, test_env_provider);
    tcase_add_test(tc, test_signer_shared_by_threads);
    tcase_add_test(tc, test_session_token_every_byte_class);
    tcase_add_test(tc, test_signer_notices_changed_session_token);
    tcase_add_test(tc, test_session_encodings_wiped);
    tcase_add_test(tc, test_signer_across_seconds);
    tcase_add_test(tc, test_signer_host_memo_keyed_by_bytes);
    tcase_add_test(tc, test_signer_same_second_other_lifetimes);
    suite_add_tcase(s, tc);
    /* swaps the library's allocator: the teardown restores it even when a
     * test fails (CK_FORK=no runs every test in one process) */
    TCase *alloc = tcase_create("token_alloc");
    tcase_add_checked_fixture(alloc, alloc_setup, alloc_teardown);
    tcase_add_test(alloc, test_alloc_inspector_detects_unwiped);
    tcase_add_test(alloc, test_alloc_token_signing_provider);
    tcase_add_test(alloc, test_alloc_token_first_buffer_fits);
    tcase_add_test(alloc, test_alloc_token_ebufsize_retry);
    tcase_add_test(alloc, test_alloc_token_provider_keeps_asking);
    tcase_add_test(alloc, test_alloc_token_provider_bad_length);
    tcase_add_test(alloc, test_alloc_token_provider_error_passed_through);
    tcase_add_test(alloc, test_alloc_token_bad_arguments);
    tcase_add_test(alloc, test_alloc_token_out_of_memory);
    suite_add_tcase(s, alloc);
    return s;
}

TEST_MAIN(token_suite)
