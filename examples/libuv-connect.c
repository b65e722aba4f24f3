/* Non-blocking connect on a libuv loop: uv_poll_t follows the fd the
 * adapter asks for (it can change between steps), uv_timer_t covers
 * backoff and connect_timeout.
 *
 *   libuv-connect [ENDPOINT | URI | "key=value ..."]
 *
 * Without an argument the PG* / AWS_REGION environment is used. */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>

typedef struct job {
    uv_loop_t *loop;
    uv_poll_t *poll; /* NULL: none; one handle per fd */
    int poll_fd;
    uv_timer_t timer;
    dsql_pq_connecting *pending;
    PGconn *conn;
    dsql_error err;
    int done;
} job;

static void step(job *j);

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    step(h->data);
}

static void on_timer(uv_timer_t *t) { step(t->data); }

static void free_handle(uv_handle_t *h) { free(h); }

static void step(job *j)
{
    int fd, timeout;
    dsql_pq_poll_status s = dsql_pq_connect_poll(j->pending, &fd, &timeout, &j->err);
    uv_timer_stop(&j->timer);
    if (j->poll && (fd != j->poll_fd || s == DSQL_PQ_POLL_OK || s == DSQL_PQ_POLL_FAILED ||
                    s == DSQL_PQ_POLL_WAITING)) {
        uv_poll_stop(j->poll);
        uv_close((uv_handle_t *)j->poll, free_handle);
        j->poll = NULL;
        j->poll_fd = -1;
    }
    if (s == DSQL_PQ_POLL_OK || s == DSQL_PQ_POLL_FAILED) {
        j->conn = dsql_pq_connect_finish(j->pending);
        j->pending = NULL;
        j->done = 1;
        uv_close((uv_handle_t *)&j->timer, NULL);
        return;
    }
    if (fd >= 0) {
        if (!j->poll) {
            j->poll = malloc(sizeof *j->poll);
            if (!j->poll || uv_poll_init(j->loop, j->poll, fd) != 0) {
                free(j->poll);
                j->poll = NULL;
                fprintf(stderr, "libuv-connect: cannot watch fd %d\n", fd);
                uv_close((uv_handle_t *)&j->timer, NULL);
                return;
            }
            j->poll->data = j;
            j->poll_fd = fd;
        }
        uv_poll_start(j->poll, s == DSQL_PQ_POLL_READING ? UV_READABLE : UV_WRITABLE, on_poll);
    }
    if (timeout >= 0)
        uv_timer_start(&j->timer, on_timer, (uint64_t)timeout, 0);
}

int main(int argc, char **argv)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || (argc > 1 && dsql_config_parse(cfg, argv[1], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "libuv-connect: %s\n", err.message);
        return 1;
    }
    /* the process-wide default provider (borrowed, never freed): credentials
     * from the default chain for cfg's profile, fetched once and cached for
     * every connection; a profile from AWS_PROFILE keeps the environment keys */
    dsql_token_provider *tokens = dsql_token_provider_shared(cfg, &err);
    if (!tokens) {
        fprintf(stderr, "libuv-connect: %s\n", err.message);
        return 1;
    }
    job j = {0};
    j.loop = uv_default_loop();
    j.poll_fd = -1;
    uv_timer_init(j.loop, &j.timer);
    j.timer.data = &j;
    j.pending = dsql_pq_connect_start(cfg, tokens, &j.err);
    if (!j.pending) {
        fprintf(stderr, "libuv-connect: %s\n", j.err.message);
        return 1;
    }
    step(&j);
    uv_run(j.loop, UV_RUN_DEFAULT);
    int rc = 1;
    if (j.conn) {
        PGresult *r = PQexec(j.conn, "select 'hello from libuv'");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            printf("%s (server %d, TLS %s)\n", PQgetvalue(r, 0, 0), PQserverVersion(j.conn),
                   PQsslInUse(j.conn) ? "on" : "off");
            rc = 0;
        }
        PQclear(r);
        PQfinish(j.conn);
    } else {
        fprintf(stderr, "libuv-connect: %s\n", j.err.message);
    }
    uv_loop_close(j.loop);
    dsql_config_free(cfg);
    return rc;
}
