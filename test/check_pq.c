/* libpq adapter without a real server: parameters and secure defaults,
 * per-host tokens, retry/backoff on 53300, no retry on login failure,
 * per-host failure reports, shuffling, non-blocking connect, reconnect,
 * timeouts, against a loopback fake front door (test/fakepg.h). */
#include <stdarg.h>
#include <stdint.h>

#include "testutil.h"
#include "fakepg.h"
#include "dsqlauth/libpq.h"
#include "dsqlauth/pool.h"

#define EP "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

/* Token provider double: "tok:<host>:<region>:<user>:<expires>". */
typedef struct fake_tokens {
    int calls;
    dsql_status fail_with;
} fake_tokens;

static dsql_status fake_token(void *self, const dsql_token_request *req, char *buf, size_t cap,
                              size_t *len, dsql_error *err)
{
    fake_tokens *ft = self;
    ft->calls++;
    if (ft->fail_with != DSQL_OK) {
        if (err) {
            err->status = ft->fail_with;
            snprintf(err->message, sizeof err->message, "no credentials in the test double");
        }
        return ft->fail_with;
    }
    int n = snprintf(buf, cap, "tok:%s:%s:%s:%u", req->hostname, req->region ? req->region : "",
                     req->user, (unsigned)req->expires_in);
    *len = (size_t)n;
    if ((size_t)n >= cap) {
        buf[0] = 0;
        return DSQL_EBUFSIZE;
    }
    return DSQL_OK;
}

static const dsql_token_provider_vtable FAKE_VT = {DSQL_STRUCT_VERSION, fake_token, NULL};

static fake_tokens ft;
static dsql_token_provider *tp;
static dsql_config *cfg;
static dsql_error err;

static void setup(void)
{
    memset(&ft, 0, sizeof ft);
    tp = dsql_token_provider_new(&FAKE_VT, &ft, NULL);
    cfg = dsql_config_new(NULL);
    unsetenv("PGSSLROOTCERT");
    unsetenv("PGHOSTADDR");
    unsetenv("PGSSLMODE");
    memset(&err, 0, sizeof err);
}

static void teardown(void)
{
    dsql_token_provider_free(tp);
    dsql_config_free(cfg);
}

static const char *param(const char *const *k, const char *const *v, const char *key)
{
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], key) == 0)
            return v[i];
    return NULL;
}

static void parse(const char *s)
{
    ck_assert_msg(dsql_config_parse(cfg, s, &err) == DSQL_OK, "%s: %s", s, err.message);
}

START_TEST(params_secure_defaults)
{
    parse(EP);
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_OK);
    ck_assert_str_eq(param(k, v, "host"), EP);
    ck_assert_str_eq(param(k, v, "port"), "5432");
    ck_assert_str_eq(param(k, v, "user"), "admin");
    ck_assert_str_eq(param(k, v, "dbname"), "postgres");
    ck_assert_str_eq(param(k, v, "password"), "tok:" EP ":us-east-1:admin:900");
    ck_assert_str_eq(param(k, v, "sslmode"), "verify-full");
    ck_assert_str_eq(param(k, v, "gssencmode"), "disable");
    ck_assert_str_eq(param(k, v, "application_name"), "libdsqlauth/" DSQL_VERSION_STRING);
    int ver = PQlibVersion();
    if (ver >= 160000)
        ck_assert_str_eq(param(k, v, "sslrootcert"), "system");
    else if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        ck_assert_str_eq(param(k, v, "sslrootcert"), "/etc/ssl/certs/ca-certificates.crt");
    if (ver >= 170000)
        ck_assert_str_eq(param(k, v, "sslnegotiation"), "direct");
    else
        ck_assert_ptr_null(param(k, v, "sslnegotiation"));
    /* the token is only in "password" */
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], "password") != 0)
            ck_assert_ptr_null(strstr(v[i], "tok:"));
    ck_assert_int_eq(ft.calls, 1);
    dsql_pq_params_free(k, v);
    dsql_pq_params_free(NULL, NULL);
}
END_TEST

START_TEST(params_overrides_and_passthrough)
{
    parse("postgresql://app@a.dsql.us-east-1.on.aws,b.dsql.eu-west-1.on.aws:6000/db"
          "?sslmode=require&sslrootcert=/my/ca.pem&application_name_prefix=orm"
          "&load_balance_hosts=disable&options=-c%20a%3Db&token_duration_secs=120"
          "&gssencmode=prefer&profile=dev&allow_insecure_tls=1");
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 1, &k, &v, &err), DSQL_OK);
    ck_assert_str_eq(param(k, v, "host"), "b.dsql.eu-west-1.on.aws");
    ck_assert_str_eq(param(k, v, "port"), "6000");
    ck_assert_str_eq(param(k, v, "user"), "app");
    ck_assert_str_eq(param(k, v, "dbname"), "db");
    ck_assert_str_eq(param(k, v, "password"), "tok:b.dsql.eu-west-1.on.aws:eu-west-1:app:120");
    ck_assert_str_eq(param(k, v, "sslmode"), "require");
    ck_assert_str_eq(param(k, v, "sslrootcert"), "/my/ca.pem");
    ck_assert_str_eq(param(k, v, "gssencmode"), "prefer");
    ck_assert_str_eq(param(k, v, "options"), "-c a=b");
    ck_assert_str_eq(param(k, v, "application_name"), "orm:libdsqlauth/" DSQL_VERSION_STRING);
    ck_assert_ptr_null(param(k, v, "load_balance_hosts"));
    ck_assert_ptr_null(param(k, v, "profile"));
    ck_assert_ptr_null(param(k, v, "token_duration_secs"));
    ck_assert_ptr_null(param(k, v, "application_name_prefix"));
    ck_assert_ptr_null(param(k, v, "allow_insecure_tls"));
    dsql_pq_params_free(k, v);
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 2, &k, &v, &err), DSQL_EINVAL);
    ck_assert_ptr_null(k);
    /* a PQconnectdbParams user gets a usable conninfo (libpq accepts every key) */
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_OK);
    PQconninfoOption *opts = PQconninfoParse("", NULL);
    for (size_t i = 0; k[i]; i++) {
        int known = 0;
        for (PQconninfoOption *o = opts; o->keyword; o++)
            known |= strcmp(o->keyword, k[i]) == 0;
        ck_assert_msg(known, "libpq does not know '%s'", k[i]);
    }
    PQconninfoFree(opts);
    dsql_pq_params_free(k, v);
}
END_TEST

START_TEST(explicit_application_name_kept)
{
    parse("host=" EP " application_name=mytool");
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_OK);
    ck_assert_str_eq(param(k, v, "application_name"), "mytool");
    dsql_pq_params_free(k, v);
}
END_TEST

/* EXPECT_CONNECT_FAILS(want, "part of the message", ...): dsql_pq_connect()
 * with cfg and tp gives no connection, status want in err, and a message
 * holding every string given; a failure names the test line. */
#define EXPECT_CONNECT_FAILS(...) expect_connect_fails(__LINE__, __VA_ARGS__, NULL)
static void expect_connect_fails(int line, dsql_status want, ...)
{
    PGconn *c = dsql_pq_connect(cfg, tp, &err);
    ck_assert_msg(c == NULL, "line %d: connected, want %s", line, dsql_status_name(want));
    ck_assert_msg(err.status == want, "line %d: %s, want %s: %s", line,
                  dsql_status_name(err.status), dsql_status_name(want), err.message);
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err.message, s), "line %d: message \"%s\" lacks \"%s\"", line,
                      err.message, s);
    va_end(ap);
}

/* Points cfg at two hosts, a and b, both on 127.0.0.1 (ports pa and pb),
 * plus the extra settings. */
static void use_two_hosts(const char *a, int pa, const char *b, int pb, const char *extra)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s,%s hostaddr=127.0.0.1,127.0.0.1 port=%d,%d sslmode=disable "
             "allow_insecure_tls=1 %s",
             a, b, pa, pb, extra);
    parse(ci);
}

START_TEST(non_dsql_host_rejected_before_network)
{
    fake_pg f = {0};
    ck_assert_int_eq(fake_pg_start(&f), 0);
    char ci[200];
    snprintf(ci, sizeof ci, "host=localhost hostaddr=127.0.0.1 port=%d sslmode=disable "
             "allow_insecure_tls=1", f.port);
    parse(ci);
    EXPECT_CONNECT_FAILS(DSQL_ECONFIG, "'localhost' is not an Aurora DSQL endpoint", "set region");
    ck_assert_ptr_null(dsql_pq_connect_start(cfg, tp, &err));
    ck_assert_int_eq(fake_pg_settled_connections(&f), 0);
    ck_assert_int_eq(ft.calls, 0);
    fake_pg_stop(&f);
}
END_TEST

/* Starts the fake server f and points cfg at it, plus the extra settings. */
static void use_fake(fake_pg *f, const char *extra)
{
    ck_assert_int_eq(fake_pg_start(f), 0);
    char ci[512];
    snprintf(ci, sizeof ci,
             "host=" EP " hostaddr=127.0.0.1 port=%d sslmode=disable allow_insecure_tls=1 "
             "connect_retry_delay_ms=40 %s",
             f->port, extra);
    parse(ci);
}

START_TEST(connect_ok_token_as_password)
{
    fake_pg f = {.accept_prefix = "tok:" EP ":us-east-1:admin:900"};
    use_fake(&f, "application_name_prefix=t");
    PGconn *c = dsql_pq_connect(cfg, tp, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    ck_assert_int_eq(err.status, DSQL_OK);
    ck_assert_str_eq(f.last_user, "admin");
    ck_assert_str_eq(f.last_db, "postgres");
    ck_assert_str_eq(f.last_app, "t:libdsqlauth/" DSQL_VERSION_STRING);
    PQfinish(c);
    fake_pg_stop(&f);
}
END_TEST

START_TEST(retry_backs_off_on_53300)
{
    fake_pg f = {.error_times = 2, .sqlstate = "53300",
                 .message = "sorry, too many clients already"};
    use_fake(&f, "");
    int64_t t0 = fake_now_ms();
    PGconn *c = dsql_pq_connect(cfg, tp, &err);
    int64_t ms = fake_now_ms() - t0;
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_int_eq(f.connections, 3);
    ck_assert_int_eq(ft.calls, 3); /* a new token for every attempt */
    /* backoff 40 then 80 ms, each jittered into [d/2, d]: at least 60 ms */
    ck_assert_msg(ms >= 60 && ms < 2000, "took %lld ms", (long long)ms);
    PQfinish(c);
    fake_pg_stop(&f);
}
END_TEST

START_TEST(retry_is_bounded)
{
    fake_pg f = {
        .error_times = 100, .sqlstate = "53400", .message = "configuration limit exceeded"};
    use_fake(&f, "connect_retries=2");
    EXPECT_CONNECT_FAILS(DSQL_ESERVER, "(3 attempts)", "server failed for " EP,
                         "FATAL:  configuration limit exceeded");
    ck_assert_int_eq(f.connections, 3);
    ck_assert_str_eq(err.sqlstate, "53400");
    fake_pg_stop(&f);
}
END_TEST

START_TEST(auth_failure_not_retried)
{
    fake_pg f = {.accept_prefix = "something-else"};
    use_fake(&f, "");
    EXPECT_CONNECT_FAILS(DSQL_EAUTH, "authentication failed for " EP,
                         "IAM authentication failed for user \"admin\"");
    ck_assert_int_eq(f.connections, 1);
    ck_assert_str_eq(err.sqlstate, "28P01");
    ck_assert_ptr_null(strstr(err.message, "tok:"));
    fake_pg_stop(&f);
}
END_TEST

START_TEST(each_host_gets_its_own_token)
{
    fake_pg a = {.accept_prefix = "nothing"},
            b = {.accept_prefix = "tok:b.dsql.us-east-2.on.aws:us-east-2:"};
    ck_assert_int_eq(fake_pg_start(&a), 0);
    ck_assert_int_eq(fake_pg_start(&b), 0);
    use_two_hosts("a.dsql.us-east-1.on.aws", a.port, "b.dsql.us-east-2.on.aws", b.port, "");
    PGconn *c = dsql_pq_connect(cfg, tp, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_str_eq(a.last_password, "tok:a.dsql.us-east-1.on.aws:us-east-1:admin:900");
    ck_assert_str_eq(b.last_password, "tok:b.dsql.us-east-2.on.aws:us-east-2:admin:900");
    ck_assert_str_eq(PQhost(c), "b.dsql.us-east-2.on.aws");
    PQfinish(c);
    fake_pg_stop(&a);
    fake_pg_stop(&b);
}
END_TEST

START_TEST(all_hosts_fail_reports_each)
{
    fake_pg a = {.accept_prefix = "nothing"};
    ck_assert_int_eq(fake_pg_start(&a), 0);
    use_two_hosts("a.dsql.us-east-1.on.aws", a.port, "b.dsql.us-east-2.on.aws",
                  fake_closed_port(), "");
    /* the status is the last host's */
    EXPECT_CONNECT_FAILS(DSQL_ENETWORK, "all 2 hosts failed: [1] a.dsql.us-east-1.on.aws:",
                         ": authentication: ", "; [2] b.dsql.us-east-2.on.aws:", ": network: ",
                         "refused");
    fake_pg_stop(&a);
}
END_TEST

START_TEST(load_balance_random_shuffles)
{
    fake_pg a = {0}, b = {0};
    ck_assert_int_eq(fake_pg_start(&a), 0);
    ck_assert_int_eq(fake_pg_start(&b), 0);
    use_two_hosts("a.dsql.us-east-1.on.aws", a.port, "b.dsql.us-east-1.on.aws", b.port,
                  "load_balance_hosts=random");
    for (int i = 0; i < 30; i++) {
        PGconn *c = dsql_pq_connect(cfg, tp, &err);
        ck_assert_msg(c != NULL, "%s", err.message);
        PQfinish(c);
    }
    poll(NULL, 0, 50);
    ck_assert_msg(a.authenticated > 3 && b.authenticated > 3, "a %d b %d", a.authenticated,
                  b.authenticated);
    dsql_config_set(cfg, "load_balance_hosts", "sometimes", NULL);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    ck_assert_int_eq(err.status, DSQL_ECONFIG);
    fake_pg_stop(&a);
    fake_pg_stop(&b);
}
END_TEST

START_TEST(nonblocking_with_backoff)
{
    fake_pg f = {.error_times = 1, .sqlstate = "53300", .message = "too many"};
    /* a backoff of 1..2 s: a loaded machine must not sleep through it
     * between two polls (with 40 ms it did, and the wait went unseen; with
     * 400 ms it did once under ASan at load 78) */
    use_fake(&f, "connect_retry_delay_ms=2000");
    dsql_pq_connecting *pc = dsql_pq_connect_start(cfg, tp, &err);
    ck_assert_ptr_nonnull(pc);
    int saw_wait = 0, saw_fd = 0, rounds = 0;
    dsql_pq_poll_status s;
    for (;;) {
        int fd, t;
        s = dsql_pq_connect_poll(pc, &fd, &t, &err);
        if (s == DSQL_PQ_POLL_OK || s == DSQL_PQ_POLL_FAILED)
            break;
        ck_assert_int_lt(++rounds, 1000);
        if (s == DSQL_PQ_POLL_WAITING) {
            saw_wait = 1;
            ck_assert_int_eq(fd, -1);
            ck_assert_int_gt(t, 0);
            ck_assert_int_le(t, 2000);
            poll(NULL, 0, t);
        } else {
            saw_fd = 1;
            ck_assert_int_ge(fd, 0);
            struct pollfd p = {fd, s == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT, 0};
            poll(&p, 1, t);
        }
    }
    ck_assert_int_eq(s, DSQL_PQ_POLL_OK);
    ck_assert(saw_wait && saw_fd);
    PGconn *c = dsql_pq_connect_finish(pc);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PQfinish(c);
    ck_assert_ptr_null(dsql_pq_connect_finish(NULL));
    /* abandoning a pending attempt closes it */
    pc = dsql_pq_connect_start(cfg, tp, &err);
    ck_assert_ptr_nonnull(pc);
    ck_assert_ptr_null(dsql_pq_connect_finish(pc));
    fake_pg_stop(&f);
}
END_TEST

START_TEST(reconnect_new_token)
{
    fake_pg f = {0};
    use_fake(&f, "");
    PGconn *c = dsql_pq_connect(cfg, tp, &err);
    ck_assert_ptr_nonnull(c);
    int pid = PQbackendPID(c);
    PGconn *old = c;
    ck_assert_int_eq(dsql_pq_reconnect(&c, cfg, tp, &err), DSQL_OK);
    ck_assert_ptr_ne(c, old);
    ck_assert_int_ne(PQbackendPID(c), pid);
    ck_assert_int_eq(ft.calls, 2);
    ck_assert_int_eq(f.connections, 2);
    fake_pg_stop(&f);
    /* failure leaves *conn alone */
    f.stop = 0;
    PGconn *keep = c;
    dsql_config_set(cfg, "port", "1", NULL);
    ck_assert_int_ne(dsql_pq_reconnect(&c, cfg, tp, &err), DSQL_OK);
    ck_assert_ptr_eq(c, keep);
    PQfinish(c);
}
END_TEST

/* Connecting only reads the caller's configuration: an unresolved one is
 * resolved into a private copy (it stays unresolved), and a pending
 * non-blocking connect keeps its copy when the caller's is gone. */
START_TEST(connect_never_writes_the_configuration)
{
    fake_pg f = {0};
    use_fake(&f, "");
    const dsql_config *ro = cfg; /* the functions take const */
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(ro, tp, 0, &k, &v, &err), DSQL_OK);
    dsql_pq_params_free(k, v);
    ck_assert_uint_eq(dsql_config_host_count(cfg), 0); /* still unresolved */
    PGconn *c = dsql_pq_connect(ro, tp, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_uint_eq(dsql_config_host_count(cfg), 0);
    ck_assert_int_eq(dsql_pq_reconnect(&c, ro, tp, &err), DSQL_OK);
    ck_assert_uint_eq(dsql_config_host_count(cfg), 0);
    PQfinish(c);
    dsql_pq_connecting *pc = dsql_pq_connect_start(ro, tp, &err);
    ck_assert_ptr_nonnull(pc);
    ck_assert_uint_eq(dsql_config_host_count(cfg), 0);
    dsql_config_free(cfg); /* the handle has its own resolved copy */
    cfg = NULL;
    dsql_pq_poll_status s;
    int rounds = 0;
    do {
        int fd, t;
        s = dsql_pq_connect_poll(pc, &fd, &t, &err);
        if (s == DSQL_PQ_POLL_READING || s == DSQL_PQ_POLL_WRITING) {
            struct pollfd p = {fd, s == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT, 0};
            poll(&p, 1, t);
        } else if (s == DSQL_PQ_POLL_WAITING) {
            poll(NULL, 0, t);
        }
        ck_assert_int_lt(++rounds, 1000);
    } while (s != DSQL_PQ_POLL_OK && s != DSQL_PQ_POLL_FAILED);
    ck_assert_msg(s == DSQL_PQ_POLL_OK, "%s", err.message);
    c = dsql_pq_connect_finish(pc);
    ck_assert_ptr_nonnull(c);
    PQfinish(c);
    ck_assert_int_eq(f.connections, 3);
    fake_pg_stop(&f);
}
END_TEST

START_TEST(credentials_failure_is_reported)
{
    fake_pg f = {0};
    use_fake(&f, "");
    ft.fail_with = DSQL_ECREDENTIALS;
    EXPECT_CONNECT_FAILS(DSQL_ECREDENTIALS, "credentials failed for " EP);
    ck_assert_int_eq(fake_pg_settled_connections(&f), 0);
    ft.fail_with = DSQL_EINVAL;
    EXPECT_CONNECT_FAILS(DSQL_EINVAL, "token failed for");
    fake_pg_stop(&f);
}
END_TEST

START_TEST(bad_libpq_option_is_config_error)
{
    fake_pg f = {0};
    use_fake(&f, "no_such_option=1");
    EXPECT_CONNECT_FAILS(DSQL_ECONFIG, "config failed", "invalid connection option");
    fake_pg_stop(&f);
}
END_TEST

START_TEST(connect_timeout)
{
    fake_pg f = {.silent = 1};
    use_fake(&f, "connect_timeout=2");
    int64_t t0 = fake_now_ms();
    EXPECT_CONNECT_FAILS(DSQL_ETIMEOUT);
    int64_t ms = fake_now_ms() - t0;
    ck_assert_msg(ms >= 1900 && ms < 4000, "%lld ms", (long long)ms);
    fake_pg_stop(&f);
}
END_TEST

START_TEST(every_failed_host_fits_in_the_report)
{
    /* six hosts, all refused: each is named, however long the messages */
    char ci[1200];
    int o = snprintf(ci, sizeof ci, "host=");
    for (int i = 0; i < 6; i++)
        o +=
            snprintf(ci + o, sizeof ci - (size_t)o, "%sh%d.dsql.us-east-1.on.aws", i ? "," : "", i);
    o += snprintf(ci + o, sizeof ci - (size_t)o, " hostaddr=");
    for (int i = 0; i < 6; i++)
        o += snprintf(ci + o, sizeof ci - (size_t)o, "%s127.0.0.1", i ? "," : "");
    o += snprintf(ci + o, sizeof ci - (size_t)o, " port=");
    for (int i = 0; i < 6; i++)
        o += snprintf(ci + o, sizeof ci - (size_t)o, "%s%d", i ? "," : "", fake_closed_port());
    snprintf(ci + o, sizeof ci - (size_t)o, " sslmode=disable allow_insecure_tls=1");
    parse(ci);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    for (int i = 0; i < 6; i++) {
        char want[40];
        snprintf(want, sizeof want, "[%d] h%d.dsql", i + 1, i);
        ck_assert_msg(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
    }
    ck_assert_int_eq(ft.calls, 6);
}
END_TEST

START_TEST(echoed_token_is_removed)
{
    fake_pg f = {.accept_prefix = "nothing", .echo_password = 1};
    use_fake(&f, "");
    /* the test double's tokens look like real ones here */
    dsql_credentials creds = {"AKIDEXAMPLE", "secret", NULL, 0};
    dsql_token_provider *real =
        dsql_token_provider_signing(dsql_credentials_provider_static(&creds, NULL), NULL, NULL);
    ck_assert_ptr_null(dsql_pq_connect(cfg, real, &err));
    ck_assert_int_eq(err.status, DSQL_EAUTH);
    ck_assert_msg(strstr(f.last_password, "X-Amz-Signature="), "%s", f.last_password);
    ck_assert_msg(strstr(err.message, "bad password \"[token removed]"), "%s", err.message);
    ck_assert_ptr_null(strstr(err.message, "X-Amz"));
    ck_assert_ptr_null(strstr(err.message, "Action="));
    ck_assert_ptr_null(strstr(err.message, "AKIDEXAMPLE"));
    dsql_token_provider_free(real);
    fake_pg_stop(&f);
}
END_TEST

START_TEST(environment_does_not_weaken_tls)
{
    /* PGSSLMODE=disable in the environment is ignored... */
    setenv("PGSSLMODE", "disable", 1);
    parse(EP);
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_OK);
    ck_assert_str_eq(param(k, v, "sslmode"), "verify-full");
    dsql_pq_params_free(k, v);
    /* ...and refused when the program imports the environment as its
     * configuration, unless it opts in */
    ck_assert_int_eq(dsql_config_load_env(cfg, &err), DSQL_OK);
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "sslmode=disable (from the environment, PGSSLMODE)"), "%s",
                  err.message);
    ck_assert_int_eq(ft.calls, 1); /* no token signed for the refused config */
    ck_assert_int_eq(dsql_config_set(cfg, "allow_insecure_tls", "1", &err), DSQL_OK);
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_OK);
    ck_assert_str_eq(param(k, v, "sslmode"), "disable");
    dsql_pq_params_free(k, v);
    unsetenv("PGSSLMODE");
}
END_TEST

/* Every libpq entry point refuses a weak sslmode without the opt-in before
 * signing a token or sending a byte: the fake server sees no connection. */
START_TEST(weak_tls_refused_before_any_byte)
{
    static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca"};
    const char *mode = modes[_i];
    fake_pg f = {0};
    ck_assert_int_eq(fake_pg_start(&f), 0);
    char ci[300];
    snprintf(ci, sizeof ci, "host=" EP " hostaddr=127.0.0.1 port=%d sslmode=%s", f.port, mode);
    parse(ci);
    char want[40];
    snprintf(want, sizeof want, "sslmode=%s", mode);
    EXPECT_CONNECT_FAILS(DSQL_ECONFIG, want, "allow_insecure_tls=1");
    memset(&err, 0, sizeof err);
    ck_assert_ptr_null(dsql_pq_connect_start(cfg, tp, &err));
    ck_assert_msg(err.status == DSQL_ECONFIG && strstr(err.message, want), "%s", err.message);
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_ECONFIG);
    ck_assert_ptr_null(dsql_pq_pool_new(cfg, tp, NULL, &err));
    ck_assert_msg(err.status == DSQL_ECONFIG && strstr(err.message, want), "%s", err.message);
    /* PGSSLMODE imported by dsql_config_load_env: the same */
    dsql_config_free(cfg);
    cfg = dsql_config_new(NULL);
    snprintf(ci, sizeof ci, "host=" EP " hostaddr=127.0.0.1 port=%d", f.port);
    parse(ci);
    setenv("PGSSLMODE", mode, 1);
    ck_assert_int_eq(dsql_config_load_env(cfg, &err), DSQL_OK);
    unsetenv("PGSSLMODE");
    EXPECT_CONNECT_FAILS(DSQL_ECONFIG, want, "PGSSLMODE", "allow_insecure_tls=1");
    ck_assert_int_eq(fake_pg_settled_connections(&f), 0);
    ck_assert_int_eq(ft.calls, 0);
    fake_pg_stop(&f);
}
END_TEST

/* With the opt-in the same weak mode connects (the fake server has no TLS),
 * and the log handler hears about it. */
static int tls_warnings;
static void count_tls_warning(dsql_log_level level, const char *msg, void *ud)
{
    (void)ud;
    if (level == DSQL_LOG_WARN && strstr(msg, "sslmode=disable") &&
        strstr(msg, "allow_insecure_tls=1"))
        tls_warnings++;
}

START_TEST(insecure_tls_opt_in_connects_and_warns)
{
    fake_pg f = {.accept_prefix = "tok:"};
    tls_warnings = 0;
    dsql_set_log_handler(count_tls_warning, DSQL_LOG_WARN, NULL);
    use_fake(&f, "");
    PGconn *c = dsql_pq_connect(cfg, tp, &err);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_int_eq(tls_warnings, 1);
    PQfinish(c);
    fake_pg_stop(&f);
}
END_TEST

static Suite *pq_suite(void)
{
    Suite *s = suite_create("libpq adapter");
    TCase *t = tcase_create("fake server");
    tcase_set_timeout(t, 20);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, params_secure_defaults);
    tcase_add_test(t, params_overrides_and_passthrough);
    tcase_add_test(t, explicit_application_name_kept);
    tcase_add_test(t, environment_does_not_weaken_tls);
    tcase_add_loop_test(t, weak_tls_refused_before_any_byte, 0, 5);
    tcase_add_test(t, insecure_tls_opt_in_connects_and_warns);
    tcase_add_test(t, non_dsql_host_rejected_before_network);
    tcase_add_test(t, connect_ok_token_as_password);
    tcase_add_test(t, retry_backs_off_on_53300);
    tcase_add_test(t, retry_is_bounded);
    tcase_add_test(t, auth_failure_not_retried);
    tcase_add_test(t, echoed_token_is_removed);
    tcase_add_test(t, each_host_gets_its_own_token);
    tcase_add_test(t, all_hosts_fail_reports_each);
    tcase_add_test(t, every_failed_host_fits_in_the_report);
    tcase_add_test(t, load_balance_random_shuffles);
    tcase_add_test(t, nonblocking_with_backoff);
    tcase_add_test(t, reconnect_new_token);
    tcase_add_test(t, connect_never_writes_the_configuration);
    tcase_add_test(t, credentials_failure_is_reported);
    tcase_add_test(t, bad_libpq_option_is_config_error);
    tcase_add_test(t, connect_timeout);
    suite_add_tcase(s, t);
    return s;
}

TEST_MAIN(pq_suite)
