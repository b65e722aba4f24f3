/* libpq adapter against a real PostgreSQL behind dsql-local's TLS gateway
 * (test/t-libpq.sh runs it under `dsql-local run`), verify-full TLS.
 *
 * Unchanged against a real cluster: set CLUSTER_ENDPOINT (and AWS
 * credentials, AWS_REGION if needed); the tests that need the local
 * gateway (wrong CA, injected errors, hostaddr) then skip. */
#define _GNU_SOURCE /* strcasestr */
#include <stdint.h>

#include "testutil.h"
#include "fakepg.h"
#include "dsqlauth/libpq.h"

static const char *real_endpoint; /* CLUSTER_ENDPOINT, or NULL under dsql-local */
static const char *ep, *port, *ca, *region;

/* A recording wrapper around the real signing provider. */
typedef struct recorder {
    dsql_token_provider *inner;
    int calls;
    char last_host[256];
} recorder;

static dsql_status rec_token(void *self, const dsql_token_request *req, char *buf, size_t cap,
                             size_t *len, dsql_error *err)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    recorder *r = self;
    pthread_mutex_lock(&mu);
    r->calls++;
    snprintf(r->last_host, sizeof r->last_host, "%s", req->hostname);
    pthread_mutex_unlock(&mu);
    return dsql_token_provider_get(r->inner, req, buf, cap, len, err);
}

static const dsql_token_provider_vtable REC_VT = {DSQL_STRUCT_VERSION, rec_token, NULL};

static recorder rec;
static dsql_token_provider *tp;
static dsql_config *cfg;
static dsql_error err;

static void setup(void)
{
    /* read once: the tests change the environment (CK_FORK=no runs them
       in one process) */
    static int read_env;
    if (!read_env) {
        read_env = 1;
        real_endpoint = getenv("CLUSTER_ENDPOINT");
        ep = real_endpoint ? real_endpoint : getenv("PGHOST");
        port = real_endpoint ? "5432" : getenv("PGPORT");
        ca = getenv("PGSSLROOTCERT") ? strdup(getenv("PGSSLROOTCERT")) : NULL;
        region = getenv("AWS_REGION");
    }
    ck_assert_msg(ep && port, "run under dsql-local run, or set CLUSTER_ENDPOINT");
    memset(&rec, 0, sizeof rec);
    dsql_credentials_provider *cp = dsql_credentials_provider_default(NULL, &err);
    ck_assert_msg(cp != NULL, "%s", err.message);
    rec.inner = dsql_token_provider_signing(cp, NULL, &err);
    ck_assert_msg(rec.inner != NULL, "%s", err.message);
    tp = dsql_token_provider_new(&REC_VT, &rec, NULL);
    cfg = dsql_config_new(NULL);
    /* only what each test sets explicitly reaches libpq */
    if (!real_endpoint) {
        unsetenv("PGSSLROOTCERT");
        unsetenv("PGSSLMODE");
        unsetenv("PGHOSTADDR");
    }
}

static void teardown(void)
{
    dsql_config_free(cfg);
    dsql_token_provider_free(tp);
    dsql_token_provider_free(rec.inner);
}

/* Points cfg at dsql-local's gateway: hostaddr, port, its CA. */
static void local_gateway(dsql_config *c)
{
    if (real_endpoint)
        return;
    ck_assert_int_eq(dsql_config_set(c, "hostaddr", "127.0.0.1", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(c, "port", port, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(c, "sslrootcert", ca, &err), DSQL_OK);
}

static int query_one(PGconn *c)
{
    PGresult *r = PQexec(c, "select 1");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

/* Connects, runs a query, checks TLS; returns the backend pid. */
static int connect_and_query(dsql_config *c)
{
    PGconn *conn = dsql_pq_connect(c, tp, &err);
    ck_assert_msg(conn != NULL, "connect: %s [%s]", err.message, dsql_status_name(err.status));
    ck_assert_int_eq(PQsslInUse(conn), 1);
    PGresult *r = PQexec(conn, "select current_user, current_setting('application_name')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    /* connecting only reads c: resolve it to read the user it resolved to */
    ck_assert_int_eq(dsql_config_resolve(c, &err), DSQL_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), dsql_config_get(c, "user"));
    ck_assert_ptr_nonnull(strstr(PQgetvalue(r, 0, 1), "libdsqlauth/"));
    PQclear(r);
    int pid = PQbackendPID(conn);
    PQfinish(conn);
    return pid;
}

START_TEST(form_endpoint)
{
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    connect_and_query(cfg);
    ck_assert_str_eq(rec.last_host, ep);
}
END_TEST

START_TEST(form_cluster_id)
{
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)strcspn(ep, "."), ep);
    char rg[64];
    ck_assert_int_eq(dsql_region_from_hostname(ep, rg, sizeof rg, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "cluster_id", id, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "region", rg, &err), DSQL_OK);
    local_gateway(cfg);
    connect_and_query(cfg);
    ck_assert_str_eq(rec.last_host, ep);
}
END_TEST

/* RFC 3986 percent-encoding of everything but unreserved characters */
static void pct(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = 0;
}

START_TEST(form_uri)
{
    char uri[2048], enc[1024];
    if (real_endpoint) {
        snprintf(uri, sizeof uri, "postgresql://admin@%s/postgres?token_duration_secs=60", ep);
    } else {
        pct(enc, sizeof enc, ca);
        snprintf(uri, sizeof uri,
                 "postgres://ad%%6Din@%s:%s/post%%67res?hostaddr=127.0.0.1&sslrootcert=%s"
                 "&token_duration_secs=60&application_name_prefix=uri%%20test",
                 ep, port, enc);
    }
    ck_assert_msg(dsql_config_parse(cfg, uri, &err) == DSQL_OK, "%s", err.message);
    connect_and_query(cfg);
}
END_TEST

START_TEST(form_conninfo)
{
    char ci[2048];
    if (real_endpoint)
        snprintf(ci, sizeof ci, "host=%s dbname = 'postgres' user=admin", ep);
    else
        snprintf(ci, sizeof ci,
                 "host=%s hostaddr=127.0.0.1 port=%s sslrootcert='%s' dbname = 'postgres' "
                 "sslmode=verify-full application_name_prefix='my\\'tool'",
                 ep, port, ca);
    ck_assert_msg(dsql_config_parse(cfg, ci, &err) == DSQL_OK, "%s", err.message);
    connect_and_query(cfg);
}
END_TEST

START_TEST(form_environment)
{
    if (real_endpoint) {
        setenv("PGHOST", real_endpoint, 1);
    } else {
        setenv("PGHOSTADDR", "127.0.0.1", 1);
        setenv("PGSSLROOTCERT", ca, 1);
        setenv("PGSSLMODE", "verify-full", 1);
    }
    ck_assert_int_eq(dsql_config_load_env(cfg, &err), DSQL_OK);
    connect_and_query(cfg);
}
END_TEST

START_TEST(form_explicit_setters_win)
{
    /* a parsed user that does not exist, overridden in code */
    ck_assert_int_eq(dsql_config_parse(cfg, "user=nobody_here", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "host", ep, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "user", "admin", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "token_duration_secs", "300", &err), DSQL_OK);
    local_gateway(cfg);
    connect_and_query(cfg);
}
END_TEST

START_TEST(params_for_pqconnectdbparams)
{
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    const char *const *k, *const *v;
    ck_assert_int_eq(dsql_pq_params(cfg, tp, 0, &k, &v, &err), DSQL_OK);
    PGconn *conn = PQconnectdbParams(k, v, 0);
    dsql_pq_params_free(k, v);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
    ck_assert_int_eq(PQsslInUse(conn), 1);
    PQfinish(conn);
}
END_TEST

START_TEST(nonblocking_connect)
{
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    dsql_pq_connecting *pc = dsql_pq_connect_start(cfg, tp, &err);
    ck_assert_msg(pc != NULL, "%s", err.message);
    dsql_pq_poll_status s;
    int steps = 0;
    for (;;) {
        int fd, t;
        s = dsql_pq_connect_poll(pc, &fd, &t, &err);
        if (s == DSQL_PQ_POLL_OK || s == DSQL_PQ_POLL_FAILED)
            break;
        steps++;
        struct pollfd p = {fd, s == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT, 0};
        poll(&p, fd >= 0 ? 1 : 0, t);
    }
    ck_assert_msg(s == DSQL_PQ_POLL_OK, "%s", err.message);
    ck_assert_int_gt(steps, 2); /* TCP, TLS and login each waited */
    PGconn *conn = dsql_pq_connect_finish(pc);
    ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
    PQfinish(conn);
}
END_TEST

START_TEST(reconnect_gets_new_backend)
{
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    PGconn *conn = dsql_pq_connect(cfg, tp, &err);
    ck_assert_ptr_nonnull(conn);
    int pid = PQbackendPID(conn);
    ck_assert_int_eq(dsql_pq_reconnect(&conn, cfg, tp, &err), DSQL_OK);
    ck_assert_int_ne(PQbackendPID(conn), pid);
    ck_assert_int_eq(rec.calls, 2);
    PGresult *r = PQexec(conn, "select 1");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(conn);
}
END_TEST

static void *connect_thread(void *arg)
{
    long ok = 0;
    for (int i = 0; i < 5; i++) {
        dsql_error e;
        PGconn *c = dsql_pq_connect(cfg, tp, &e);
        if (c && query_one(c))
            ok++;
        PQfinish(c);
    }
    (void)arg;
    return (void *)ok;
}

START_TEST(threads_share_config_and_provider)
{
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    ck_assert_int_eq(dsql_config_resolve(cfg, &err), DSQL_OK); /* then share it */
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, connect_thread, NULL), 0);
    long total = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (long)r;
    }
    ck_assert_int_eq(total, 40);
}
END_TEST

START_TEST(wrong_ca_fails_verify_full)
{
    if (real_endpoint)
        return;
    /* the default trust store (system CAs) does not know dsql-local's CA */
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "hostaddr", "127.0.0.1", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "port", port, &err), DSQL_OK);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    ck_assert_int_eq(err.status, DSQL_ETLS);
    ck_assert_msg(strstr(err.message, "TLS failed for") &&
                      strstr(err.message, "certificate verify failed"),
                  "%s", err.message);
}
END_TEST

START_TEST(certificate_for_other_name_fails)
{
    if (real_endpoint)
        return;
    /* a different cluster name on the same address: the certificate does not match */
    ck_assert_int_eq(dsql_config_parse(cfg, "zzzzzzzzzzzzzzzzzzzzzzzzzz.dsql.us-east-1.on.aws",
                                       &err), DSQL_OK);
    local_gateway(cfg);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    ck_assert_msg(err.status == DSQL_ETLS || err.status == DSQL_EAUTH, "%s: %s",
                  dsql_status_name(err.status), err.message);
    ck_assert_msg(strstr(err.message, "zzzzzzzzzzzzzzzzzzzzzzzzzz"), "%s", err.message);
}
END_TEST

START_TEST(non_dsql_host_without_region_rejected_before_network)
{
    char ci[300];
    snprintf(ci, sizeof ci, "host=localhost hostaddr=127.0.0.1 port=%s", port);
    ck_assert_int_eq(dsql_config_parse(cfg, ci, &err), DSQL_OK);
    int64_t t0 = fake_now_ms();
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    ck_assert_int_lt(fake_now_ms() - t0, 50);
    ck_assert_int_eq(err.status, DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "not an Aurora DSQL endpoint") &&
                      strstr(err.message, "set region"), "%s", err.message);
    ck_assert_int_eq(rec.calls, 0); /* not even a token */
}
END_TEST

START_TEST(signing_host_via_hostaddr)
{
    if (real_endpoint)
        return;
    /* libpq connects to 127.0.0.1; the token (and SNI) name the cluster */
    char ci[1200];
    snprintf(ci, sizeof ci, "host=%s hostaddr=127.0.0.1 port=%s sslrootcert='%s'", ep, port, ca);
    ck_assert_int_eq(dsql_config_parse(cfg, ci, &err), DSQL_OK);
    connect_and_query(cfg);
    ck_assert_str_eq(rec.last_host, ep);
    /* an explicit signing_host that is not the name connected to is refused by
       the server, and its reason comes through */
    ck_assert_int_eq(dsql_config_set(cfg, "signing_host",
                                     "other0000000000000000000000.dsql.us-east-1.on.aws", &err),
                     DSQL_OK);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    ck_assert_int_eq(err.status, DSQL_EAUTH);
    ck_assert_msg(strlen(err.sqlstate) == 5 && strncmp(err.sqlstate, "28", 2) == 0, "%s",
                  err.sqlstate);
    ck_assert_str_eq(rec.last_host, "other0000000000000000000000.dsql.us-east-1.on.aws");
    ck_assert_msg(strstr(err.message, "authentication failed for"), "%s", err.message);
    ck_assert_ptr_null(strstr(err.message, "X-Amz-Signature"));
    fprintf(stderr, "server's reason for a token signed for another host: %s\n", err.message);
}
END_TEST

static dsql_token_provider *static_provider(const char *akid, const char *secret,
                                            int64_t expiration)
{
    dsql_credentials c = {(char *)akid, (char *)secret, NULL, expiration};
    dsql_credentials_provider *cp = dsql_credentials_provider_static(&c, &err);
    ck_assert_ptr_nonnull(cp);
    dsql_token_provider *p = dsql_token_provider_signing(cp, NULL, &err);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A provider whose tokens were signed 20 minutes ago for 15 minutes. */
static dsql_status stale_token(void *self, const dsql_token_request *req, char *buf, size_t cap,
                               size_t *len, dsql_error *e)
{
    (void)self;
    dsql_credentials c = {getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"),
                          getenv("AWS_SESSION_TOKEN"), 0};
    dsql_token_request p = {DSQL_STRUCT_VERSION, req->hostname, req->user, req->region, 900,
                           (int64_t)time(NULL) - 1200};
    return dsql_token_generate(&p, &c, buf, cap, len, e);
}
static const dsql_token_provider_vtable STALE_VT = {DSQL_STRUCT_VERSION, stale_token, NULL};

START_TEST(expired_token_surfaces_server_reason)
{
    if (real_endpoint)
        return;
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    dsql_token_provider *stale = dsql_token_provider_new(&STALE_VT, NULL, NULL);
    ck_assert_ptr_null(dsql_pq_connect(cfg, stale, &err));
    ck_assert_int_eq(err.status, DSQL_EAUTH);
    ck_assert_msg(strncmp(err.sqlstate, "28", 2) == 0, "%s", err.sqlstate);
    ck_assert_msg(strcasestr(err.message, "expired"), "%s", err.message);
    fprintf(stderr, "server's reason for an expired token: %s\n", err.message);
    dsql_token_provider_free(stale);
}
END_TEST

START_TEST(refused_tokens_surface_server_reason)
{
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    /* right key id, wrong secret: a bad signature */
    dsql_token_provider *bad = static_provider(getenv("AWS_ACCESS_KEY_ID"), "wrong-secret", 0);
    ck_assert_ptr_null(dsql_pq_connect(cfg, bad, &err));
    ck_assert_int_eq(err.status, DSQL_EAUTH);
    ck_assert_msg(strncmp(err.sqlstate, "28", 2) == 0, "%s", err.sqlstate);
    ck_assert_msg(strstr(err.message, "FATAL:"), "%s", err.message);
    fprintf(stderr, "server's reason for a bad signature: %s\n", err.message);
    dsql_token_provider_free(bad);
    /* an unknown access key */
    bad = static_provider("AKIAUNKNOWNKEY000000", "x", 0);
    ck_assert_ptr_null(dsql_pq_connect(cfg, bad, &err));
    ck_assert_int_eq(err.status, DSQL_EAUTH);
    fprintf(stderr, "server's reason for an unknown key: %s\n", err.message);
    dsql_token_provider_free(bad);
    /* expired credentials never reach the server */
    bad = static_provider(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"),
                          (int64_t)time(NULL) - 60);
    ck_assert_ptr_null(dsql_pq_connect(cfg, bad, &err));
    ck_assert_msg(err.status == DSQL_EEXPIRED || err.status == DSQL_ECREDENTIALS, "%s: %s",
                  dsql_status_name(err.status), err.message);
    ck_assert_msg(strstr(err.message, "credentials failed for"), "%s", err.message);
    fprintf(stderr, "expired credentials: %s\n", err.message);
    dsql_token_provider_free(bad);
    /* a user the gateway accepts the token for but PostgreSQL does not know */
    ck_assert_int_eq(dsql_config_set(cfg, "user", "no_such_role", &err), DSQL_OK);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    ck_assert_msg(err.status == DSQL_EAUTH, "%s: %s", dsql_status_name(err.status), err.message);
    ck_assert_msg(strstr(err.message, "no_such_role"), "%s", err.message);
}
END_TEST

START_TEST(retry_backs_off_on_53300_then_next_host)
{
    if (real_endpoint)
        return;
    /* host 1: a front door that answers every SSLRequest with 53300, like
       a postmaster at max_connections; host 2: the real gateway */
    fake_pg f = {.error_times = 1000, .error_on_sslrequest = 1, .sqlstate = "53300",
                 .message = "sorry, too many clients already"};
    ck_assert_int_eq(fake_pg_start(&f), 0);
    char ci[1500];
    snprintf(ci, sizeof ci,
             "host=%s,%s hostaddr=127.0.0.1,127.0.0.1 port=%d,%s sslrootcert='%s' "
             "connect_retries=3 connect_retry_delay_ms=50",
             ep, ep, f.port, port, ca);
    ck_assert_int_eq(dsql_config_parse(cfg, ci, &err), DSQL_OK);
    int64_t t0 = fake_now_ms();
    PGconn *conn = dsql_pq_connect(cfg, tp, &err);
    int64_t ms = fake_now_ms() - t0;
    ck_assert_msg(conn != NULL, "%s", err.message);
    ck_assert_int_eq(f.connections, 4); /* 1 + 3 retries */
    ck_assert_int_eq(rec.calls, 5);     /* a fresh token each time */
    /* 50, 100, 200 ms, each jittered into [d/2, d]: 175..350 ms of backoff */
    ck_assert_msg(ms >= 175, "only %lld ms", (long long)ms);
    fprintf(stderr, "53300 x4 with backoff, then host 2: %lld ms\n", (long long)ms);
    ck_assert_int_eq(PQport(conn) && strcmp(PQport(conn), port) == 0, 1);
    PQfinish(conn);
    /* with only the busy host the error says so */
    snprintf(ci, sizeof ci, "host=%s hostaddr=127.0.0.1 port=%d connect_retries=1", ep, f.port);
    dsql_config *c2 = dsql_config_new(NULL);
    ck_assert_int_eq(dsql_config_parse(c2, ci, &err), DSQL_OK);
    ck_assert_ptr_null(dsql_pq_connect(c2, tp, &err));
    ck_assert_int_eq(f.connections, 4 + 2);
    /* libpq 15.10+ hides errors sent before TLS (CVE-2024-10977) */
    ck_assert_msg(strstr(err.message, "sorry, too many clients already") ||
                      strstr(err.message, "error response during SSL exchange"),
                  "%s", err.message);
    fprintf(stderr, "busy host only: %s\n", err.message);
    dsql_config_free(c2);
    fake_pg_stop(&f);
}
END_TEST

/* Opens connections, 16 in flight, until the server answers 53300; returns
 * how many are open (in conns). */
static int fill_server(dsql_config *c, PGconn **conns, int max)
{
    dsql_pq_connecting *fl[16] = {0};
    int open = 0, full = 0, inflight = 0;
    while ((!full && open + inflight < max) || inflight > 0) {
        for (int i = 0; i < 16 && !full && open + inflight < max; i++)
            if (!fl[i]) {
                fl[i] = dsql_pq_connect_start(c, tp, &err);
                ck_assert_msg(fl[i] != NULL, "%s", err.message);
                inflight++;
            }
        struct pollfd pf[16];
        int np = 0, timeout = 1000;
        for (int i = 0; i < 16; i++) {
            if (!fl[i])
                continue;
            int fd, t;
            dsql_pq_poll_status st = dsql_pq_connect_poll(fl[i], &fd, &t, &err);
            if (st == DSQL_PQ_POLL_OK || st == DSQL_PQ_POLL_FAILED) {
                PGconn *conn = dsql_pq_connect_finish(fl[i]);
                fl[i] = NULL;
                inflight--;
                if (conn)
                    conns[open++] = conn;
                else {
                    ck_assert_msg(strcmp(err.sqlstate, "53300") == 0, "%s", err.message);
                    full = 1;
                }
                continue;
            }
            if (fd >= 0) {
                pf[np].fd = fd;
                pf[np++].events = st == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT;
            }
            if (t >= 0 && t < timeout)
                timeout = t;
        }
        if (inflight > 0)
            poll(pf, (nfds_t)np, timeout);
    }
    ck_assert_msg(full, "no 53300 after %d connections", open);
    return open;
}

START_TEST(real_53300_through_tls_is_retried)
{
    if (real_endpoint)
        return;
    /* fill PostgreSQL's max_connections through the gateway: the next
       login gets a real 53300 after TLS and IAM auth */
    ck_assert_int_eq(dsql_config_parse(cfg, ep, &err), DSQL_OK);
    local_gateway(cfg);
    dsql_config *fill = dsql_config_dup(cfg, &err);
    ck_assert_int_eq(dsql_config_set(fill, "connect_retries", "0", &err), DSQL_OK);
    static PGconn *conns[1000];
    int64_t t0 = fake_now_ms();
    int open = fill_server(fill, conns, 1000);
    fprintf(stderr, "server full after %d connections (%lld ms)\n", open,
            (long long)(fake_now_ms() - t0));
    /* connect; the first attempt gets 53300 and backs off */
    ck_assert_int_eq(dsql_config_set(cfg, "connect_retries", "5", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "connect_retry_delay_ms", "200", &err), DSQL_OK);
    dsql_pq_connecting *pc = dsql_pq_connect_start(cfg, tp, &err);
    ck_assert_ptr_nonnull(pc);
    int waited = 0, freed = 0;
    dsql_pq_poll_status st;
    for (;;) {
        int fd, t;
        st = dsql_pq_connect_poll(pc, &fd, &t, &err);
        if (st == DSQL_PQ_POLL_OK || st == DSQL_PQ_POLL_FAILED)
            break;
        if (st == DSQL_PQ_POLL_WAITING) {
            waited++;
            if (!freed) { /* make room while we back off */
                for (int i = 0; i < 3; i++)
                    PQfinish(conns[--open]);
                freed = 1;
            }
        }
        struct pollfd p = {fd, st == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT, 0};
        poll(&p, fd >= 0 ? 1 : 0, t);
    }
    ck_assert_msg(st == DSQL_PQ_POLL_OK, "%s", err.message);
    ck_assert_int_ge(waited, 1);
    ck_assert_int_ge(rec.calls, open + 2); /* every attempt signed its own token */
    PQfinish(dsql_pq_connect_finish(pc));
    while (open > 0)
        PQfinish(conns[--open]);
    dsql_config_free(fill);
}
END_TEST

START_TEST(many_hosts_each_failure_reported)
{
    if (real_endpoint)
        return;
    char ci[1500];
    snprintf(ci, sizeof ci,
             "host=%s,%s,zzzzzzzzzzzzzzzzzzzzzzzzzz.dsql.us-east-1.on.aws "
             "hostaddr=127.0.0.1,127.0.0.1,127.0.0.1 port=%d,%s,%s sslrootcert='%s' user=nobody",
             ep, ep, fake_closed_port(), port, port, ca);
    ck_assert_int_eq(dsql_config_parse(cfg, ci, &err), DSQL_OK);
    ck_assert_ptr_null(dsql_pq_connect(cfg, tp, &err));
    fprintf(stderr, "three hosts: %s\n", err.message);
    ck_assert_msg(strstr(err.message, "all 3 hosts failed: [1]") && strstr(err.message, "[2]") &&
                      strstr(err.message, "[3]") && strstr(err.message, "network"),
                  "%s", err.message);
}
END_TEST

static Suite *integration_suite(void)
{
    Suite *s = suite_create("libpq integration");
    TCase *t = tcase_create("dsql-local");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, form_endpoint);
    tcase_add_test(t, form_cluster_id);
    tcase_add_test(t, form_uri);
    tcase_add_test(t, form_conninfo);
    tcase_add_test(t, form_environment);
    tcase_add_test(t, form_explicit_setters_win);
    tcase_add_test(t, params_for_pqconnectdbparams);
    tcase_add_test(t, nonblocking_connect);
    tcase_add_test(t, reconnect_gets_new_backend);
    tcase_add_test(t, threads_share_config_and_provider);
    tcase_add_test(t, wrong_ca_fails_verify_full);
    tcase_add_test(t, certificate_for_other_name_fails);
    tcase_add_test(t, non_dsql_host_without_region_rejected_before_network);
    tcase_add_test(t, signing_host_via_hostaddr);
    tcase_add_test(t, refused_tokens_surface_server_reason);
    tcase_add_test(t, expired_token_surfaces_server_reason);
    tcase_add_test(t, retry_backs_off_on_53300_then_next_host);
    tcase_add_test(t, many_hosts_each_failure_reported);
    tcase_add_test(t, real_53300_through_tls_is_retried);
    suite_add_tcase(s, t);
    return s;
}

TEST_MAIN(integration_suite)
