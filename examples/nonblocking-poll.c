/* Non-blocking connect driven by poll(2): the pattern for any event loop.
 * Starts connections to the same cluster concurrently and runs a query on
 * each.
 *
 *   nonblocking-poll [N] [ENDPOINT | URI | "key=value ..."]
 *
 * Without an endpoint the PG* / AWS_REGION environment is used. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>

#define MAX_CONNS 64

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1 || n > MAX_CONNS)
        n = 4;
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || (argc > 2 && dsql_config_parse(cfg, argv[2], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK || dsql_config_resolve(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "nonblocking-poll: %s\n", err.message);
        return 1;
    }
    /* the process-wide default provider (borrowed, never freed): credentials
     * from the default chain for cfg's profile, fetched once and cached for
     * every connection; a profile from AWS_PROFILE keeps the environment keys */
    dsql_token_provider *tokens = dsql_token_provider_shared(cfg, &err);
    if (!tokens) {
        fprintf(stderr, "nonblocking-poll: %s\n", err.message);
        return 1;
    }

    dsql_pq_connecting *pending[MAX_CONNS] = {0};
    PGconn *conns[MAX_CONNS] = {0};
    int left = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        pending[i] = dsql_pq_connect_start(cfg, tokens, &err);
        if (pending[i])
            left++;
        else {
            fprintf(stderr, "connection %d: %s\n", i, err.message);
            failed++;
        }
    }
    while (left > 0) {
        struct pollfd fds[MAX_CONNS];
        int nfds = 0, timeout = -1;
        for (int i = 0; i < n; i++) {
            if (!pending[i])
                continue;
            int fd, t;
            dsql_pq_poll_status s = dsql_pq_connect_poll(pending[i], &fd, &t, &err);
            if (s == DSQL_PQ_POLL_OK || s == DSQL_PQ_POLL_FAILED) {
                if (s == DSQL_PQ_POLL_FAILED) {
                    fprintf(stderr, "connection %d: %s\n", i, err.message);
                    failed++;
                }
                conns[i] = dsql_pq_connect_finish(pending[i]);
                pending[i] = NULL;
                left--;
                continue;
            }
            if (t >= 0 && (timeout < 0 || t < timeout))
                timeout = t;
            if (fd >= 0) {
                fds[nfds].fd = fd;
                fds[nfds].events = s == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT;
                nfds++;
            }
        }
        if (left > 0)
            poll(fds, (nfds_t)nfds, timeout); /* then poll every pending one again */
    }
    for (int i = 0; i < n; i++) {
        if (!conns[i])
            continue;
        PGresult *r = PQexec(conns[i], "select pg_backend_pid()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            printf("connection %d: backend pid %s\n", i, PQgetvalue(r, 0, 0));
        else {
            fprintf(stderr, "connection %d: %s", i, PQerrorMessage(conns[i]));
            failed++;
        }
        PQclear(r);
        PQfinish(conns[i]);
    }
    dsql_config_free(cfg);
    printf("%d of %d connections ok\n", n - failed, n);
    return failed ? 1 : 0;
}
