/* dsql-proxy: tokens made off the event loop. Signing is a few HMACs, but
 * the credentials behind a token may need a fetch (IMDS, the container
 * endpoint, STS, credential_process) that takes seconds; done on the loop
 * it would stall every session being relayed. So one worker thread makes
 * the tokens: the loop queues a request, the worker signs (fetching or
 * refreshing the cached credentials when the library says so) and hands
 * the result back through a pipe the loop watches. One worker is enough:
 * with cached credentials a token takes microseconds, and when a fetch
 * is needed every login waits for the same one anyway (the cache is
 * single-flight). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy.h"

struct dp_token_job {
    struct dp_token_job *next;
    struct dp_tokens *t;
    dp_token_done done;
    void *arg;
    int cancelled;           /* set on the loop; read by the worker under lock */
    char user[64];
    char *token;             /* the worker's result: a token, or */
    size_t len;
    char msg[sizeof ((dsql_error *)0)->message]; /* why there is none */
};

typedef struct dp_tokens {
    dp_proxy *p;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    dp_token_job *todo, **todo_tail;     /* guarded by lock */
    dp_token_job *finished, **fin_tail;  /* guarded by lock */
    int stop;                            /* guarded by lock */
    int pipe[2];                         /* worker -> loop: "something finished" */
    struct event *ev;
} dp_tokens;

static void job_free(dp_token_job *j)
{
    dsql_token_free(j->token); /* wipes it */
    free(j);
}

static void make_token(const dp_proxy *p, dp_token_job *j)
{
    dsql_token_request req = {DSQL_STRUCT_VERSION, p->up.signing_host, j->user,
                              p->up.region[0] ? p->up.region : NULL, p->opt->expires_in, 0};
    dsql_error err;

    memset(&err, 0, sizeof err);
    if (dsql_token_provider_get_alloc(p->tokens, &req, &j->token, &j->len, &err) != DSQL_OK)
        snprintf(j->msg, sizeof j->msg, "%s", err.message[0] ? err.message : "no token");
}

static void *worker_main(void *arg)
{
    dp_tokens *t = arg;
    dp_token_job *j;
    int cancelled;
    ssize_t w;

    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (!t->todo && !t->stop)
            pthread_cond_wait(&t->wake, &t->lock);
        if (t->stop)
            break;
        j = t->todo;
        t->todo = j->next;
        if (!t->todo)
            t->todo_tail = &t->todo;
        cancelled = j->cancelled;
        pthread_mutex_unlock(&t->lock);
        if (!cancelled)
            make_token(t->p, j);
        pthread_mutex_lock(&t->lock);
        j->next = NULL;
        *t->fin_tail = j;
        t->fin_tail = &j->next;
        /* full pipe: the loop has a wake-up pending and takes every job */
        w = write(t->pipe[1], "", 1);
        (void)w;
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* On the loop: every finished job to its session, unless it was cancelled. */
static void finished_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_tokens *t = arg;
    dp_token_job *list, *j;
    char buf[256];

    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&t->lock);
    list = t->finished;
    t->finished = NULL;
    t->fin_tail = &t->finished;
    pthread_mutex_unlock(&t->lock);
    while (list) {
        j = list;
        list = j->next;
        /* cancelled is written only on this thread; a done() below may
         * cancel a later job of this list (its session went) */
        if (!j->cancelled) {
            char *token = j->token;
            j->token = NULL; /* the callee's now */
            j->done(token, j->len, token ? NULL : j->msg, j->arg);
        }
        job_free(j);
    }
}

static int set_flags(int fd)
{
    return fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? 0 : -1;
}

int dp_tokens_start(dp_proxy *p, char *err, size_t errcap)
{
    dp_tokens *t = calloc(1, sizeof *t);

    if (!t) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    t->p = p;
    t->todo_tail = &t->todo;
    t->fin_tail = &t->finished;
    t->pipe[0] = t->pipe[1] = -1;
    if (pipe(t->pipe) != 0 || set_flags(t->pipe[0]) != 0 || set_flags(t->pipe[1]) != 0 ||
        !(t->ev = event_new(p->base, t->pipe[0], EV_READ | EV_PERSIST, finished_cb, t)) ||
        event_add(t->ev, NULL) != 0) {
        snprintf(err, errcap, "cannot set up the token worker");
        goto fail;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (pthread_create(&t->thread, NULL, worker_main, t) != 0) {
        snprintf(err, errcap, "cannot start the token worker thread");
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->wake);
        goto fail;
    }
    p->worker = t;
    return 0;
fail:
    if (t->ev)
        event_free(t->ev);
    if (t->pipe[0] >= 0) {
        close(t->pipe[0]);
        close(t->pipe[1]);
    }
    free(t);
    return -1;
}

static void free_list(dp_token_job *j)
{
    while (j) {
        dp_token_job *next = j->next;
        job_free(j);
        j = next;
    }
}

void dp_tokens_stop(dp_proxy *p)
{
    dp_tokens *t = p->worker;

    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = 1;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    free_list(t->todo);
    free_list(t->finished);
    event_free(t->ev);
    close(t->pipe[0]);
    close(t->pipe[1]);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
    p->worker = NULL;
}

dp_token_job *dp_token_request(dp_proxy *p, const char *user, dp_token_done done, void *arg)
{
    dp_tokens *t = p->worker;
    dp_token_job *j;

    if (!t || !(j = calloc(1, sizeof *j)))
        return NULL;
    j->t = t;
    j->done = done;
    j->arg = arg;
    snprintf(j->user, sizeof j->user, "%s", user);
    pthread_mutex_lock(&t->lock);
    *t->todo_tail = j;
    t->todo_tail = &j->next;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    return j;
}

void dp_token_cancel(dp_token_job *j)
{
    if (!j)
        return;
    /* the job may be with the worker: it is freed when it comes back */
    pthread_mutex_lock(&j->t->lock);
    j->cancelled = 1;
    pthread_mutex_unlock(&j->t->lock);
}
