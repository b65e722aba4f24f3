/* Adapter skeleton: the shape of a libdsqlauth adapter for a database
 * driver, with a stub in place of the driver so that it compiles and runs
 * anywhere (`make check` builds and runs it). Copy it, replace the three
 * `driver_*` stubs with your driver's calls, and keep the rest: it is what
 * doc/ADAPTERS.md describes.
 *
 *   1. resolve the configuration (hosts, port, user, dbname, region)
 *   2. per host: ask the token provider for a token signed for that host's
 *      signing_host and the user, right before connecting
 *   3. connect with TLS verify-full, SNI and certificate name = the DSQL
 *      name (host); the socket may go elsewhere (hostaddr)
 *   4. wipe the token; map the driver's failure onto a dsql_status,
 *      never copying the token into a message
 *   5. next host on failure; a reconnect goes back to step 2
 *   6. transactions: the retry loop every adapter shares (the kit's
 *      dsql_retry_before_attempt / dsql_retry_after_conflict), reporting
 *      the conflict kinds in a dsql_retry_result
 *
 * Only the public API is used: <dsqlauth.h> and the adapter kit
 * <dsqlauth/adapter.h>. */
#include <dsqlauth.h>
#include <dsqlauth/adapter.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the driver: replace these stubs ---- */

typedef struct driver_conn {
    char host[256];
} driver_conn;

typedef struct driver_params {
    const char *host;        /* TLS SNI + certificate name: the DSQL name */
    const char *hostaddr;    /* where the socket goes (NULL: resolve host) */
    unsigned port;
    const char *user, *dbname;
    const char *password;    /* the token */
    const char *sslmode;     /* "verify-full" */
} driver_params;

/* Stub: "connects" when the password looks like a token for this host. */
static driver_conn *driver_connect(const driver_params *p, char *errbuf, size_t cap)
{
    if (strncmp(p->password, p->host, strlen(p->host)) != 0 ||
        !strstr(p->password, "X-Amz-Signature=")) {
        snprintf(errbuf, cap, "FATAL: IAM authentication failed for user \"%s\"", p->user);
        return NULL;
    }
    driver_conn *c = calloc(1, sizeof *c);
    if (c)
        snprintf(c->host, sizeof c->host, "%s", p->host);
    else
        snprintf(errbuf, cap, "out of memory");
    return c;
}

static void driver_close(driver_conn *c) { free(c); }

/* Stub: run a transaction body and commit; here the first commit meets an
 * Aurora DSQL data conflict. Fills sqlstate and the server's primary
 * message on failure. */
static int driver_commit_work(driver_conn *c, unsigned attempt, char sqlstate[6], char *msg,
                              size_t cap)
{
    (void)c;
    if (attempt > 1)
        return 0;
    memcpy(sqlstate, "40001", 6);
    snprintf(msg, cap, "mutation conflicts with another transaction, retry as needed (OC000)");
    return -1;
}

/* Stub: classify the driver's error text into a step. */
static dsql_status driver_error_status(const char *msg)
{
    if (strstr(msg, "authentication failed") || strstr(msg, "Token has expired"))
        return DSQL_EAUTH;
    if (strstr(msg, "SSL") || strstr(msg, "certificate"))
        return DSQL_ETLS;
    return DSQL_ENETWORK;
}

/* ---- the adapter ---- */

typedef struct skel_conn {
    driver_conn *conn;
    size_t host_index; /* tried first on reconnect */
} skel_conn;

static dsql_status connect_hosts(skel_conn *out, const dsql_config *cfg,
                                 dsql_token_provider *tp, dsql_error *err);

/* The caller's configuration is only read, so threads may share one. */
static dsql_status skel_connect(skel_conn *out, const dsql_config *given,
                                dsql_token_provider *tp, dsql_error *err)
{
    /* 1: resolved, in a private copy when it is not (the adapter kit) */
    const dsql_config *cfg;
    dsql_config *own;
    dsql_status st = dsql_config_resolve_view(given, &cfg, &own, err);
    if (st != DSQL_OK)
        return st;
    st = connect_hosts(out, cfg, tp, err);
    dsql_config_free(own);
    return st;
}

static dsql_status connect_hosts(skel_conn *out, const dsql_config *cfg,
                                 dsql_token_provider *tp, dsql_error *err)
{
    dsql_status st;
    size_t n = dsql_config_host_count(cfg);
    dsql_status last = DSQL_ENETWORK;
    for (size_t k = 0; k < n; k++) {
        size_t i = (out->host_index + k) % n;
        dsql_config_host h;
        if ((st = dsql_config_host_at(cfg, i, &h, err)) != DSQL_OK)
            return st;
        /* 2: a fresh token, for this host, now (the adapter kit) */
        char *token = NULL;
        st = dsql_token_get_for_host(tp, cfg, i, &token, NULL, err);
        if (st != DSQL_OK)
            return st; /* credentials problems are the same for every host */
        /* 3 */
        const char *mode = dsql_config_get(cfg, "sslmode");
        driver_params p = {h.host, h.hostaddr, h.port, dsql_config_get(cfg, "user"),
                           dsql_config_get(cfg, "dbname"), token, mode ? mode : "verify-full"};
        char msg[256] = "";
        driver_conn *c = driver_connect(&p, msg, sizeof msg);
        dsql_token_free(token); /* 4: wipes it */
        if (c) {
            out->conn = c;
            out->host_index = i;
            return DSQL_OK;
        }
        last = dsql_error_set(err, driver_error_status(msg), "host %.200s: %.250s", h.host,
                              msg);
        /* 5: next host */
    }
    return last;
}

/* Reconnect = a new connection with a new token; never reuse the old one. */
static dsql_status skel_reconnect(skel_conn *c, const dsql_config *cfg,
                                  dsql_token_provider *tp, dsql_error *err)
{
    skel_conn fresh = {NULL, c->host_index};
    dsql_status st = skel_connect(&fresh, cfg, tp, err);
    if (st == DSQL_OK) {
        driver_close(c->conn);
        *c = fresh;
    }
    return st;
}

/* 6: run the work in a transaction, again on a conflict (SQLSTATE 40001),
 * with the loop and backoff every adapter shares; result gets the
 * attempts and the conflicts by kind. */
static dsql_status skel_run_transaction(skel_conn *c, const dsql_retry_options *opts,
                                        dsql_retry_result *result, dsql_error *err)
{
    dsql_error local;
    if (!err)
        err = &local;
    memset(result, 0, sizeof *result);
    for (unsigned n = 1;; n++) {
        dsql_status st = dsql_retry_before_attempt(opts, n - 1, err); /* deadline, cancel */
        if (st != DSQL_OK)
            return st;
        result->attempts = n;
        char sqlstate[6] = "", msg[256] = "";
        if (driver_commit_work(c->conn, n, sqlstate, msg, sizeof msg) == 0)
            return dsql_error_set(err, DSQL_OK, NULL);
        /* the kind from the primary message only, never DETAIL or data */
        dsql_conflict_kind kind = dsql_conflict_classify(sqlstate, msg);
        if (kind == DSQL_CONFLICT_NONE)
            return dsql_error_set(err, DSQL_ESERVER, "%.400s", msg);
        dsql_error_set(err, DSQL_ECONFLICT, "%.400s", msg);
        memcpy(err->sqlstate, sqlstate, sizeof err->sqlstate);
        st = dsql_retry_after_conflict(opts, n, kind, result, err); /* count, wait */
        if (st != DSQL_OK)
            return st;
    }
}

/* ---- a demonstration with fixed, fake credentials (no AWS, no network) ---- */

int main(void)
{
    dsql_error err = {0};
    dsql_credentials fake = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, 0};
    dsql_credentials_provider *cp = dsql_credentials_provider_static(&fake, &err);
    dsql_token_provider *tp = cp ? dsql_token_provider_signing(cp, NULL, &err) : NULL;
    dsql_config *cfg = dsql_config_new(&err);
    if (!tp || !cfg ||
        dsql_config_parse(cfg, "host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws "
                               "hostaddr=127.0.0.1 dbname=postgres",
                          &err) != DSQL_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }
    skel_conn c = {NULL, 0};
    dsql_status st = skel_connect(&c, cfg, tp, &err);
    if (st != DSQL_OK) {
        fprintf(stderr, "connect: %s: %s\n", dsql_status_name(st), err.message);
        return 1;
    }
    printf("connected to %s\n", c.conn->host);
    st = skel_reconnect(&c, cfg, tp, &err);
    printf("reconnected: %s\n", dsql_status_name(st));
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    dsql_retry_result r;
    dsql_status txn = skel_run_transaction(&c, &o, &r, &err);
    printf("transaction: %s after %u attempts, %u data conflict(s)\n", dsql_status_name(txn),
           r.attempts, r.data_conflicts);
    if (txn != DSQL_OK || r.attempts != 2 || r.data_conflicts != 1)
        st = DSQL_EINTERNAL;
    driver_close(c.conn);
    dsql_config_free(cfg);
    dsql_token_provider_free(tp);
    return st == DSQL_OK ? 0 : 1;
}
