/* tools/pgserver/scram.c, dsql-proxy's local-password check: the RFC 7677
 * exchange (user "user", password "pencil") as known-answer data, then the
 * ways a client can get it wrong. Real psql logins run in t-dsql-proxy.sh. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "scram.h"
#include "testutil.h"

/* RFC 7677, section 3 */
#define CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SERVER_FIRST "r=" NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CLIENT_FINAL "c=biws,r=" NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* The stored verifier for "pencil" with the RFC's salt, built the way
 * PostgreSQL builds rolpassword. */
static void rfc_verifier(char *out, size_t cap)
{
    unsigned char salt[16], salted[32], ck[32], sk[32], stored[32];
    char b_salt[64], b_stored[64], b_server[64];
    unsigned int n = 32;

    EVP_DecodeBlock(salt, (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24);
    PKCS5_PBKDF2_HMAC("pencil", 6, salt, 16, 4096, EVP_sha256(), 32, salted);
    HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ck, &n);
    HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, sk, &n);
    SHA256(ck, 32, stored);
    EVP_EncodeBlock((unsigned char *)b_salt, salt, 16);
    EVP_EncodeBlock((unsigned char *)b_stored, stored, 32);
    EVP_EncodeBlock((unsigned char *)b_server, sk, 32);
    snprintf(out, cap, "SCRAM-SHA-256$4096:%s$%s:%s", b_salt, b_stored, b_server);
}

/* A stand-in verifier for user, shaped like the RFC's (4096, 16 bytes). */
static int mock(pgs_scram_verifier *v, const char *user)
{
    static const unsigned char key[PGS_SCRAM_MOCK_KEY] = "a server's secret";
    pgs_scram_verifier like;
    char text[256];

    rfc_verifier(text, sizeof text);
    if (pgs_scram_parse_verifier(text, &like) != 0)
        return -1;
    return pgs_scram_mock_verifier(v, &like, key, user);
}

/* A state after the RFC's first round: our nonce replaced by the RFC's. */
static void rfc_first(pgs_scram *s)
{
    char verifier[256], out[256];
    const char *err = NULL;

    memset(s, 0, sizeof *s);
    rfc_verifier(verifier, sizeof verifier);
    ck_assert_int_eq(pgs_scram_parse_verifier(verifier, &s->v), 0);
    ck_assert_int_eq(pgs_scram_first(s, CLIENT_FIRST, strlen(CLIENT_FIRST), out, sizeof out,
                                     &err), 0);
    ck_assert_msg(strncmp(out, "r=rOprNGfwEbeRWgbNEkqO", 22) == 0 &&
                      strstr(out, ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                  "server-first-message: %s", out);
    strcpy(s->nonce, NONCE);
    strcpy(s->server_first, SERVER_FIRST);
}

START_TEST(scram_rfc7677_exchange)
{
    pgs_scram s;
    char out[256];
    const char *err = NULL;

    rfc_first(&s);
    ck_assert_msg(pgs_scram_final(&s, CLIENT_FINAL, strlen(CLIENT_FINAL), out, sizeof out,
                                  &err) == 0, "final: %s", err);
    ck_assert_str_eq(out, SERVER_FINAL);
}
END_TEST

START_TEST(scram_wrong_proof_fails)
{
    static const char bad[] =
        "c=biws,r=" NONCE ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pgs_scram s;
    char out[256];
    const char *err = NULL;

    rfc_first(&s);
    ck_assert_int_eq(pgs_scram_final(&s, bad, strlen(bad), out, sizeof out, &err), -1);
    ck_assert_str_eq(err, "password authentication failed");
}
END_TEST

START_TEST(scram_other_nonce_fails)
{
    static const char bad[] =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pgs_scram s;
    char out[256];
    const char *err = NULL;

    rfc_first(&s);
    ck_assert_int_eq(pgs_scram_final(&s, bad, strlen(bad), out, sizeof out, &err), -1);
    ck_assert_str_eq(err, "SCRAM nonce does not match");
}
END_TEST

START_TEST(scram_channel_binding_refused)
{
    static const char first[] = "p=tls-server-end-point,,n=user,r=abc";
    static const char final[] = "c=cD10bHMt,r=" NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pgs_scram s;
    char out[256];
    const char *err = NULL;

    memset(&s, 0, sizeof s);
    ck_assert_int_eq(mock(&s.v, "user"), 0);
    ck_assert_int_eq(pgs_scram_first(&s, first, strlen(first), out, sizeof out, &err), -1);
    ck_assert_str_eq(err, "SCRAM channel binding is not supported here");
    rfc_first(&s);
    ck_assert_int_eq(pgs_scram_final(&s, final, strlen(final), out, sizeof out, &err), -1);
    ck_assert_str_eq(err, "SCRAM channel binding data does not match");
}
END_TEST

START_TEST(scram_mock_verifier_never_accepts)
{
    pgs_scram s;
    char out[256];
    const char *err = NULL;

    rfc_first(&s);
    ck_assert_int_eq(mock(&s.v, "user"), 0);
    ck_assert_int_eq(pgs_scram_final(&s, CLIENT_FINAL, strlen(CLIENT_FINAL), out, sizeof out,
                                     &err), -1);
}
END_TEST

/* Two tries for one unknown name offer the same salt (a new random one
 * each time would tell that the name is unknown); other names, others. */
START_TEST(scram_mock_salt_follows_the_name)
{
    pgs_scram_verifier a, b, c;

    ck_assert_int_eq(mock(&a, "nobody"), 0);
    ck_assert_int_eq(mock(&b, "nobody"), 0);
    ck_assert_int_eq(mock(&c, "somebody"), 0);
    ck_assert_int_eq(a.iterations, 4096);
    ck_assert_uint_eq(a.salt_len, 16);
    ck_assert_msg(memcmp(a.salt, b.salt, 16) == 0, "one name, two salts");
    ck_assert_msg(memcmp(a.salt, c.salt, 16) != 0, "two names, one salt");
    ck_assert_msg(memcmp(a.stored_key, b.stored_key, 32) != 0, "the stand-in's keys repeat");
}
END_TEST

START_TEST(scram_malformed_messages)
{
    static const char *firsts[] = {"", "x,,n=u,r=a", "n,,n=u", "n,,n=u,r=", "n,n=u,r=a"};
    pgs_scram s;
    char out[256];
    const char *err = NULL;
    size_t i;

    for (i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        memset(&s, 0, sizeof s);
        ck_assert_int_eq(mock(&s.v, "user"), 0);
        ck_assert_msg(pgs_scram_first(&s, firsts[i], strlen(firsts[i]), out, sizeof out, &err)
                          == -1, "accepted client-first '%s'", firsts[i]);
    }
    rfc_first(&s);
    ck_assert_int_eq(pgs_scram_final(&s, "c=biws", 6, out, sizeof out, &err), -1);
    ck_assert_int_eq(pgs_scram_final(&s, "c=biws,r=" NONCE ",p=!!!!", 9 + strlen(NONCE) + 7,
                                     out, sizeof out, &err), -1);
}
END_TEST

/* An empty client-first-message (a SASLInitialResponse whose data length
 * is 0) is refused without a look past its end: here the message ends
 * where its buffer does, so ASan sees any byte read beyond it. */
START_TEST(scram_empty_first_message)
{
    pgs_scram s;
    char out[256], *end = malloc(1);
    const char *err = NULL;

    ck_assert_ptr_nonnull(end);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(mock(&s.v, "user"), 0);
    ck_assert_int_eq(pgs_scram_first(&s, end + 1, 0, out, sizeof out, &err), -1);
    ck_assert_str_eq(err, "malformed SCRAM client-first-message");
    free(end);
}
END_TEST

START_TEST(scram_verifier_format)
{
    pgs_scram_verifier v;
    char good[256];

    rfc_verifier(good, sizeof good);
    ck_assert_int_eq(pgs_scram_parse_verifier(good, &v), 0);
    ck_assert_int_eq(v.iterations, 4096);
    ck_assert_uint_eq(v.salt_len, 16);
    ck_assert_int_eq(pgs_scram_parse_verifier("md5abcdef", &v), -1);
    ck_assert_int_eq(pgs_scram_parse_verifier("SCRAM-SHA-256$0:AAAA$AAAA:AAAA", &v), -1);
    ck_assert_int_eq(pgs_scram_parse_verifier("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
                                              "AAAA:AAAA", &v), -1); /* keys not 32 bytes */
    ck_assert_int_eq(pgs_scram_parse_verifier("SCRAM-SHA-256$4096:W22Z", &v), -1);
}
END_TEST

static Suite *scram_suite(void)
{
    Suite *s = suite_create("pgs_scram");
    TCase *t = tcase_create("core");

    tcase_add_test(t, scram_rfc7677_exchange);
    tcase_add_test(t, scram_wrong_proof_fails);
    tcase_add_test(t, scram_other_nonce_fails);
    tcase_add_test(t, scram_channel_binding_refused);
    tcase_add_test(t, scram_mock_verifier_never_accepts);
    tcase_add_test(t, scram_mock_salt_follows_the_name);
    tcase_add_test(t, scram_malformed_messages);
    tcase_add_test(t, scram_empty_first_message);
    tcase_add_test(t, scram_verifier_format);
    suite_add_tcase(s, t);
    return s;
}

TEST_MAIN(scram_suite)
