/* `make demo`: the library end to end against whatever the PG* and AWS_*
 * environment points at (dsql-local, or a real cluster): a token (shown
 * redacted), a blocking verify-full connection, a few statements, and a
 * non-blocking connection driven by poll(2). Prints a short report. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsqlauth.h"
#include "dsqlauth/libpq.h"

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int fail(const char *step, const dsql_error *err)
{
    fprintf(stderr, "demo: %s failed: %s%s%s\n", step, err->message,
            err->sqlstate[0] ? " SQLSTATE " : "", err->sqlstate);
    return 1;
}

/* Token up to X-Amz-Date, then only sizes: never print a signature. */
static void print_redacted(const char *token, size_t len)
{
    const char *cut = strstr(token, "&X-Amz-Date=");
    printf("  token:     %.*s&... (%zu bytes, date, signature and session token redacted)\n",
           cut ? (int)(cut - token) : 0, token, len);
}

static int exec_ok(PGconn *conn, const char *sql, PGresult **out)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "demo: '%s' failed: %s", sql, PQerrorMessage(conn));
        PQclear(res);
        return 0;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 1;
}

static int nonblocking_connect(dsql_config *cfg, dsql_token_provider *tp)
{
    dsql_error err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dsql_pq_connecting *c = dsql_pq_connect_start(cfg, tp, &err);
    if (!c)
        return fail("non-blocking connect", &err);
    int fd, timeout_ms, waits = 0;
    dsql_pq_poll_status st;
    while ((st = dsql_pq_connect_poll(c, &fd, &timeout_ms, &err)) != DSQL_PQ_POLL_OK &&
           st != DSQL_PQ_POLL_FAILED) {
        struct pollfd p = {fd, (short)(st == DSQL_PQ_POLL_WRITING ? POLLOUT : POLLIN), 0};
        poll(fd >= 0 ? &p : NULL, fd >= 0 ? 1 : 0, timeout_ms);
        waits++;
    }
    PGconn *conn = dsql_pq_connect_finish(c);
    if (st != DSQL_PQ_POLL_OK)
        return fail("non-blocking connect", &err);
    PGresult *res;
    if (!exec_ok(conn, "select count(*) from demo_accounts", &res)) {
        PQfinish(conn);
        return 1;
    }
    printf("  poll(2):   connected after %d waits in %.1f ms; %s accounts seen\n", waits,
           ms_since(&t0), PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return 0;
}

int main(void)
{
    dsql_error err;
    struct timespec t0;
    dsql_token_provider *tp =
        dsql_token_provider_signing(dsql_credentials_provider_default(NULL, &err), NULL, &err);
    dsql_config *cfg = dsql_config_new(&err);
    if (!tp || !cfg || dsql_config_load_env(cfg, &err) != DSQL_OK ||
        dsql_config_resolve(cfg, &err) != DSQL_OK)
        return fail("setup", &err);
    dsql_config_host host;
    if (dsql_config_host_at(cfg, 0, &host, &err) != DSQL_OK)
        return fail("setup", &err);
    printf("libdsqlauth %s demo against %s (connecting to %s:%u, region %s)\n",
           dsql_version(), host.signing_host, host.hostaddr ? host.hostaddr : host.host,
           host.port, host.region);

    char token[8192];
    size_t len;
    dsql_token_request req = {DSQL_STRUCT_VERSION, host.signing_host, dsql_config_get(cfg, "user"),
                              host.region, 0, 0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (dsql_token_provider_get(tp, &req, token, sizeof token, &len, &err) != DSQL_OK)
        return fail("token", &err);
    double token_ms = ms_since(&t0);
    print_redacted(token, len);
    printf("             signed in %.3f ms\n", token_ms);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    PGconn *conn = dsql_pq_connect(cfg, tp, &err);
    if (!conn)
        return fail("connect", &err);
    printf("  connect:   %.1f ms, TLS %s (%s), sslmode %s, server %d, user %s\n", ms_since(&t0),
           PQsslInUse(conn) ? "on" : "OFF", PQsslAttribute(conn, "protocol"),
           dsql_config_get(cfg, "sslmode") ? dsql_config_get(cfg, "sslmode") : "verify-full",
           PQserverVersion(conn), PQuser(conn));

    PGresult *res;
    if (!exec_ok(conn, "create table if not exists demo_accounts "
                       "(id int primary key, owner text not null, balance bigint not null)",
                 NULL) ||
        !exec_ok(conn, "delete from demo_accounts", NULL) ||
        !exec_ok(conn, "insert into demo_accounts values (1, 'ada', 100), (2, 'grace', 250), "
                       "(3, 'linus', 75)",
                 NULL) ||
        !exec_ok(conn, "update demo_accounts set balance = balance + 25 where owner = 'linus'",
                 NULL) ||
        !exec_ok(conn, "select count(*), sum(balance), current_setting('transaction_isolation') "
                       "from demo_accounts",
                 &res)) {
        PQfinish(conn);
        return 1;
    }
    printf("  queries:   created demo_accounts; %s rows, total balance %s, isolation %s\n",
           PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    PQclear(res);
    PQfinish(conn);

    int rc = nonblocking_connect(cfg, tp);
    dsql_config_free(cfg);
    dsql_token_provider_free(tp);
    return rc;
}
