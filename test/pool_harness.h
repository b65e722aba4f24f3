/* A real PostgreSQL for the pool tests and benchmark.
 *
 * Two modes, chosen by pool_server_start():
 *  - dsql-local: when the environment is the one `dsql-local run` sets
 *    (PGHOST, PGSSLROOTCERT, AWS_ACCESS_KEY_ID), connections go through the
 *    TLS gateway with real IAM tokens (dsql_pq_connect, the pool's default
 *    connector).
 *  - direct: otherwise a throwaway cluster (initdb in a temp dir, as the
 *    `postgres` user when root, Unix socket only, trust auth, repeatable
 *    read) and a connector over PQconnectdb/PQconnectStart that still asks
 *    the token provider for a token per connection, as the real one does.
 * Either way every new connection calls the counting token provider. */
#ifndef DSQL_POOL_HARNESS_H
#define DSQL_POOL_HARNESS_H

#include <errno.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsqlauth.h"
#include "dsqlauth/pool.h"

typedef struct pool_server {
    int via_dsql_local;
    char dir[256];      /* direct: temp dir (socket + data) */
    char conninfo[512]; /* direct: conninfo */
    dsql_config *cfg;   /* dsql-local: from the environment */
    dsql_token_provider *inner;
    dsql_token_provider *counting;
} pool_server;

static pool_server srv;
static atomic_long token_calls;
static atomic_int token_expired; /* 1: the provider reports expired credentials */

static dsql_status counting_token(void *self, const dsql_token_request *req, char *buf,
                                  size_t cap, size_t *len, dsql_error *err)
{
    (void)self;
    atomic_fetch_add(&token_calls, 1);
    if (atomic_load(&token_expired)) {
        if (err) {
            err->status = DSQL_EEXPIRED;
            err->sqlstate[0] = '\0';
            snprintf(err->message, sizeof err->message, "the credentials have expired");
        }
        return DSQL_EEXPIRED;
    }
    if (srv.inner)
        return dsql_token_provider_get(srv.inner, req, buf, cap, len, err);
    /* direct mode: a stand-in "token" (trust auth ignores it) */
    int n = snprintf(buf, cap, "token-%ld", atomic_load(&token_calls));
    if (len)
        *len = (size_t)n;
    return DSQL_OK;
}

static const dsql_token_provider_vtable counting_vt = {DSQL_STRUCT_VERSION, counting_token, NULL};

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static void pool_server_stop(void)
{
    if (srv.dir[0]) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "%s /usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m immediate -w stop "
                 ">/dev/null 2>&1; rm -rf %s",
                 geteuid() == 0 ? "runuser -u postgres --" : "", srv.dir, srv.dir);
        if (run_cmd(cmd) != 0)
            fprintf(stderr, "pool harness: stopping PostgreSQL failed\n");
        srv.dir[0] = '\0';
    }
    dsql_token_provider_free(srv.counting);
    dsql_token_provider_free(srv.inner);
    dsql_config_free(srv.cfg);
    srv.counting = srv.inner = NULL;
    srv.cfg = NULL;
}

static int pool_server_start(void)
{
    dsql_error err = {0};
    const char *host = getenv("PGHOST"), *ca = getenv("PGSSLROOTCERT"),
               *akid = getenv("AWS_ACCESS_KEY_ID");
    if (host && ca && akid && !getenv("DSQL_POOL_TEST_DIRECT")) {
        srv.via_dsql_local = 1;
        srv.cfg = dsql_config_new(&err);
        if (!srv.cfg || dsql_config_load_env(srv.cfg, &err) != DSQL_OK ||
            dsql_config_resolve(srv.cfg, &err) != DSQL_OK) {
            fprintf(stderr, "pool harness: config: %s\n", err.message);
            return -1;
        }
        dsql_credentials_provider *cp = dsql_credentials_provider_env(&err);
        if (!cp || !(srv.inner = dsql_token_provider_signing(cp, NULL, &err))) {
            fprintf(stderr, "pool harness: provider: %s\n", err.message);
            return -1;
        }
    } else {
        snprintf(srv.dir, sizeof srv.dir, "/tmp/dsql-pooltest.XXXXXX");
        if (!mkdtemp(srv.dir)) {
            srv.dir[0] = '\0';
            return -1;
        }
        const char *as = "";
        if (geteuid() == 0) {
            struct passwd *pw = getpwnam("postgres");
            if (!pw || chown(srv.dir, pw->pw_uid, pw->pw_gid) != 0)
                return -1;
            as = "runuser -u postgres --";
        }
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "%s /usr/lib/postgresql/15/bin/initdb -D %s/data -A trust -U postgres "
                 "--no-sync -E UTF8 >%s/initdb.log 2>&1",
                 as, srv.dir, srv.dir);
        if (run_cmd(cmd) != 0) {
            fprintf(stderr, "pool harness: initdb failed (%s/initdb.log)\n", srv.dir);
            return -1;
        }
        snprintf(cmd, sizeof cmd,
                 "%s /usr/lib/postgresql/15/bin/pg_ctl -D %s/data -l %s/log -w -o \""
                 "-k %s -c listen_addresses='' -p 5432 -c max_connections=200 "
                 "-c fsync=off -c synchronous_commit=off "
                 "-c default_transaction_isolation='repeatable read'\" start >/dev/null 2>&1",
                 as, srv.dir, srv.dir, srv.dir);
        if (run_cmd(cmd) != 0) {
            fprintf(stderr, "pool harness: PostgreSQL did not start (%s/log)\n", srv.dir);
            return -1;
        }
        snprintf(srv.conninfo, sizeof srv.conninfo,
                 "host=%s port=5432 dbname=postgres user=postgres", srv.dir);
    }
    srv.counting = dsql_token_provider_new(&counting_vt, NULL, &err);
    if (!srv.counting) {
        fprintf(stderr, "pool harness: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* ---- direct-mode connector: PQconnectdb + a token per connection ---- */

static int fetch_token(dsql_error *err)
{
    char tok[4096];
    dsql_token_request req = {DSQL_STRUCT_VERSION, "localhost", "postgres", "us-east-1", 0, 0};
    return dsql_token_provider_get(srv.counting, &req, tok, sizeof tok, NULL, err) == DSQL_OK;
}

static PGconn *direct_connect(void *self, dsql_error *err)
{
    (void)self;
    if (!fetch_token(err))
        return NULL;
    PGconn *c = PQconnectdb(srv.conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        if (err) {
            err->status = DSQL_ENETWORK;
            err->sqlstate[0] = '\0';
            snprintf(err->message, sizeof err->message, "connect: %s", PQerrorMessage(c));
        }
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void *direct_start(void *self, dsql_error *err)
{
    (void)self;
    if (!fetch_token(err))
        return NULL;
    PGconn *c = PQconnectStart(srv.conninfo);
    if (!c || PQstatus(c) == CONNECTION_BAD) {
        PQfinish(c);
        if (err) {
            err->status = DSQL_ENETWORK;
            snprintf(err->message, sizeof err->message, "connect start failed");
        }
        return NULL;
    }
    return c;
}

static dsql_pq_poll_status direct_poll(void *self, void *attempt, int *fd, int *timeout_ms,
                                       dsql_error *err)
{
    (void)self;
    PGconn *c = attempt;
    *fd = PQsocket(c);
    *timeout_ms = -1;
    switch (PQconnectPoll(c)) {
    case PGRES_POLLING_READING:
        *fd = PQsocket(c);
        return DSQL_PQ_POLL_READING;
    case PGRES_POLLING_WRITING:
        *fd = PQsocket(c);
        return DSQL_PQ_POLL_WRITING;
    case PGRES_POLLING_OK:
        return DSQL_PQ_POLL_OK;
    default:
        if (err) {
            err->status = DSQL_ENETWORK;
            snprintf(err->message, sizeof err->message, "connect: %s", PQerrorMessage(c));
        }
        return DSQL_PQ_POLL_FAILED;
    }
}

static PGconn *direct_finish(void *self, void *attempt)
{
    (void)self;
    PGconn *c = attempt;
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    PQfinish(c);
    return NULL;
}

static const dsql_pq_connector_vtable direct_vt = {
    DSQL_STRUCT_VERSION, direct_connect, direct_start, direct_poll, direct_finish, NULL,
};

/* A pool over the server, with opts (NULL: defaults). */
static dsql_pq_pool *harness_pool(dsql_pq_pool_options *opts, dsql_error *err)
{
    dsql_pq_pool_options o;
    if (!opts) {
        dsql_pq_pool_options_init(&o);
        opts = &o;
    }
    if (!srv.via_dsql_local) {
        opts->connector = &direct_vt;
        opts->connector_self = NULL;
        return dsql_pq_pool_new(NULL, NULL, opts, err);
    }
    return dsql_pq_pool_new(srv.cfg, srv.counting, opts, err);
}

/* A plain connection outside any pool (for setup and for killing backends). */
static PGconn *harness_connect(void)
{
    dsql_error err = {0};
    PGconn *c = srv.via_dsql_local ? dsql_pq_connect(srv.cfg, srv.inner, &err)
                                   : PQconnectdb(srv.conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness connect: %s\n",
                c ? PQerrorMessage(c) : err.message);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Run one statement; 1 when it succeeded. */
static inline int harness_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "harness exec '%s': %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* When not in dsql-local's environment and it has been built, re-run this
 * program under `dsql-local run`. Returns only when not re-executed. */
static void harness_maybe_reexec(char **argv)
{
    if (getenv("PGSSLROOTCERT") || getenv("DSQL_POOL_TEST_DIRECT") ||
        getenv("DSQL_POOL_HARNESS_REEXEC"))
        return;
    const char *b = getenv("B");
    char path[512];
    snprintf(path, sizeof path, "%s/dsql-local", b && *b ? b : "build");
    if (access(path, X_OK) != 0)
        return;
    setenv("DSQL_POOL_HARNESS_REEXEC", "1", 1);
    size_t n = 0;
    while (argv[n])
        n++;
    char **args = calloc(n + 5, sizeof *args);
    if (!args)
        return;
    args[0] = path;
    args[1] = "run";
    /* the reset tests need PostgreSQL-only session state (temporary
     * tables, LISTEN, sequences) that DSQL's SQL rules refuse */
    args[2] = "--postgres-compat";
    args[3] = "--";
    for (size_t i = 0; i < n; i++)
        args[4 + i] = argv[i];
    execv(path, args);
    free(args); /* exec failed: run directly */
}


/* The start of a harness program's main: re-run under dsql-local when it
 * can, start the server and say which one it is. 0 when there is a server;
 * -1, with the reason on stderr, when there is none. */
static inline int harness_begin(const char *prog, char **argv)
{
    harness_maybe_reexec(argv);
    if (pool_server_start() != 0) {
        pool_server_stop();
        fprintf(stderr, "%s: no PostgreSQL to test against\n", prog);
        return -1;
    }
    printf("%s: against %s\n", prog,
           srv.via_dsql_local ? "dsql-local (TLS gateway, IAM tokens)" : "a local PostgreSQL");
    return 0;
}

/* main() for a Check suite run against the harness's server (the program
 * includes testutil.h for test_run_suite). */
#define POOL_HARNESS_MAIN(prog, suite_fn)                                       \
    int main(int argc, char **argv)                                             \
    {                                                                           \
        (void)argc;                                                             \
        if (harness_begin(prog, argv) != 0)                                     \
            return EXIT_FAILURE;                                                \
        int failed = test_run_suite(suite_fn());                                \
        pool_server_stop();                                                     \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                       \
    }

#endif
