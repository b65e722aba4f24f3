/* pgserver: Unix-socket connects with retries. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "unixconn.h"

#define FIRST_DELAY_MS 2
#define MAX_DELAY_MS 50

int pgs_unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd, e;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >= (int)sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int pgs_unix_connect_retriable(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EMFILE || err == ENFILE ||
           err == ENOBUFS || err == ENOMEM;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int try_once(pgs_dial *d)
{
    int fd = pgs_unix_connect(d->path);

    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && d->shortage && d->shortage(d->arg))
        fd = pgs_unix_connect(d->path); /* a descriptor was freed right now */
    return fd;
}

static int schedule(pgs_dial *d)
{
    struct timeval tv;

    tv.tv_sec = 0;
    tv.tv_usec = d->delay_ms * 1000;
    return evtimer_add(d->timer, &tv);
}

static void on_timer(evutil_socket_t unused, short what, void *arg)
{
    pgs_dial *d = arg;
    int fd, e;

    (void)unused;
    (void)what;
    d->tries++;
    fd = try_once(d);
    e = errno;
    if (fd < 0 && pgs_unix_connect_retriable(e) &&
        (now_s() - d->started) * 1000 < d->patience_ms) {
        d->delay_ms = d->delay_ms * 2 > MAX_DELAY_MS ? MAX_DELAY_MS : d->delay_ms * 2;
        if (schedule(d) == 0)
            return;
        e = ENOMEM;
    }
    d->done(fd, fd < 0 ? e : 0, d->arg);
}

int pgs_dial_start(pgs_dial *d, struct event_base *base, const char *path, int patience_ms)
{
    int fd, e;

    d->base = base;
    d->path = path;
    d->tries = 1;
    d->delay_ms = FIRST_DELAY_MS;
    d->patience_ms = patience_ms;
    d->started = now_s();
    fd = try_once(d);
    if (fd >= 0 || !pgs_unix_connect_retriable(errno) || patience_ms <= 0)
        return fd;
    e = errno;
    if (!d->timer)
        d->timer = evtimer_new(base, on_timer, d);
    if (!d->timer || schedule(d) != 0) {
        errno = e;
        return -1;
    }
    errno = EINPROGRESS;
    return -1;
}

void pgs_dial_stop(pgs_dial *d)
{
    if (d->timer) {
        event_free(d->timer);
        d->timer = NULL;
    }
}
