/* pgserver: accept loop on a libevent base. libevent's evconnlistener
 * reports EMFILE and returns, and the still-readable socket calls it again
 * at once: a flood of idle connections made dsql-local log that error
 * millions of times at full CPU. Here the loop frees a descriptor or
 * pauses. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "listener.h"
#include "log.h"

#define ACCEPTS_PER_WAKEUP 128 /* then let the loop serve the others */
#define SHORTAGE_RETRIES 4     /* evictions in a row that free nothing usable */
#define PAUSE_MS 100

struct pgs_listener {
    int fd, port;
    struct event *readable, *resume;
    pgs_listener_cbs cbs;
    pgs_ratelimit log_rl;
    unsigned long pauses;
};

static void pause_accepting(pgs_listener *l, int err, int ms)
{
    struct timeval tv = {0, ms * 1000};

    l->pauses++;
    pgs_log_limited(&l->log_rl, "accept failed: %s; pausing accepts for %d ms", strerror(err), ms);
    event_del(l->readable);
    if (evtimer_add(l->resume, &tv) != 0)
        event_add(l->readable, NULL); /* cannot wait: keep accepting */
}

static int out_of_resources(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Linux's accept() takes a descriptor before it looks at the queue, so it
 * fails with EMFILE when nobody waits too: make room only for a client
 * that does (else every full accept loop closed one idle client more). */
static int client_waiting(int lfd)
{
    struct pollfd p = {lfd, POLLIN, 0};

    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void on_readable(evutil_socket_t lfd, short what, void *arg)
{
    pgs_listener *l = arg;
    int i, freed = 0; /* evictions since the last accept that worked */

    (void)what;
    for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept4((int)lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), e = errno;
        if (fd >= 0) {
            freed = 0;
            l->cbs.accepted(fd, l->cbs.arg);
            continue;
        }
        if (e == EAGAIN || e == EWOULDBLOCK)
            return;
        if (!out_of_resources(e))
            continue; /* EINTR, ECONNABORTED, a network error of that client */
        if (!client_waiting((int)lfd))
            return; /* the socket turns readable when one comes */
        /* a freed descriptor may close only in the loop's next pass
         * (deferred bufferevent frees), so pause briefly after a few */
        if (freed < SHORTAGE_RETRIES && l->cbs.shortage && l->cbs.shortage(l->cbs.arg)) {
            freed++;
            continue;
        }
        pause_accepting(l, e, freed ? 5 : PAUSE_MS);
        return;
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    pgs_listener *l = arg;

    (void)fd;
    (void)what;
    if (event_add(l->readable, NULL) != 0)
        pause_accepting(l, ENOMEM, PAUSE_MS);
}

static int bind_listen(const struct sockaddr *sa, socklen_t salen, int backlog)
{
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, sa, salen) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

pgs_listener *pgs_listener_new(struct event_base *base, const struct sockaddr *sa,
                               socklen_t salen, int backlog, const pgs_listener_cbs *cbs,
                               char *err, size_t errcap)
{
    pgs_listener *l = calloc(1, sizeof *l);

    if (!l) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    l->cbs = *cbs;
    pgs_ratelimit_init(&l->log_rl, PGS_LOG_PER_SECOND, PGS_LOG_BURST);
    l->fd = bind_listen(sa, salen, backlog);
    if (l->fd < 0) {
        snprintf(err, errcap, "%s", strerror(errno));
        free(l);
        return NULL;
    }
    l->port = bound_port(l->fd);
    l->readable = event_new(base, l->fd, EV_READ | EV_PERSIST, on_readable, l);
    l->resume = evtimer_new(base, on_resume, l);
    if (!l->readable || !l->resume || event_add(l->readable, NULL) != 0) {
        snprintf(err, errcap, "out of memory");
        pgs_listener_free(l);
        return NULL;
    }
    return l;
}

int pgs_listener_port(const pgs_listener *l)
{
    return l->port;
}

unsigned long pgs_listener_pauses(const pgs_listener *l)
{
    return l->pauses;
}

void pgs_listener_free(pgs_listener *l)
{
    if (!l)
        return;
    if (l->readable)
        event_free(l->readable);
    if (l->resume)
        event_free(l->resume);
    if (l->fd >= 0)
        close(l->fd);
    free(l);
}
