/* libpq adapter: sign a token on a helper thread, so that the non-blocking
 * connect never waits for a credentials fetch (IMDS, STS, SSO can take
 * seconds). The caller watches a pipe that becomes readable when the token
 * (or its error) is ready. */
#include "token_job.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

struct dsql__pq_token_job {
    pthread_t thread;
    int pipe_r, pipe_w;
    atomic_int done;
    dsql_token_provider *provider;
    char *host, *user, *region; /* copies: the request outlives nothing */
    uint32_t expires_in;
    char *token;
    dsql_status status;
    dsql_error err;
};

static void job_free(dsql__pq_token_job *j)
{
    if (j->pipe_r >= 0)
        close(j->pipe_r);
    if (j->pipe_w >= 0)
        close(j->pipe_w);
    free(j->host);
    free(j->user);
    free(j->region);
    dsql_token_free(j->token);
    OPENSSL_cleanse(&j->err, sizeof j->err);
    free(j);
}

static void *run(void *arg)
{
    dsql__pq_token_job *j = arg;
    dsql_token_request req = {DSQL_STRUCT_VERSION, j->host, j->user, j->region, j->expires_in, 0};
    j->status = dsql_token_provider_get_alloc(j->provider, &req, &j->token, NULL, &j->err);
    atomic_store(&j->done, 1);
    char one = 1;
    while (write(j->pipe_w, &one, 1) < 0 && errno == EINTR) {
    }
    return NULL;
}

static char *dup_or_null(const char *s, int *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

static int make_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
    return 0;
}

dsql__pq_token_job *dsql__pq_token_job_start(dsql_token_provider *p,
                                            const dsql_token_request *req)
{
    dsql__pq_token_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->pipe_r = j->pipe_w = -1;
    int ok = 1, fds[2];
    j->provider = p;
    j->host = dup_or_null(req->hostname, &ok);
    j->user = dup_or_null(req->user, &ok);
    j->region = dup_or_null(req->region, &ok);
    j->expires_in = req->expires_in;
    if (ok && make_pipe(fds) == 0) {
        j->pipe_r = fds[0];
        j->pipe_w = fds[1];
        if (pthread_create(&j->thread, NULL, run, j) == 0)
            return j;
    }
    job_free(j);
    return NULL; /* the caller signs inline instead */
}

int dsql__pq_token_job_fd(const dsql__pq_token_job *j) { return j->pipe_r; }

int dsql__pq_token_job_done(dsql__pq_token_job *j) { return atomic_load(&j->done); }

dsql_status dsql__pq_token_job_finish(dsql__pq_token_job *j, char **token, dsql_error *err)
{
    pthread_join(j->thread, NULL);
    dsql_status st = j->status;
    *token = j->token;
    j->token = NULL;
    if (err)
        *err = j->err;
    job_free(j);
    return st;
}
