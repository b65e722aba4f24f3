/* pgserver: CancelRequests to PostgreSQL, a few at a time. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "cancel.h"
#include "log.h"
#include "unixconn.h"
#include "wire.h"

#define DONE_TIMEOUT_S 2 /* a postmaster that never closes frees the slot anyway */

static void slot_done(evutil_socket_t fd, short what, void *arg)
{
    pgs_cancel_slot *s = arg;

    (void)what;
    close((int)fd);
    s->fd = -1;
}

int pgs_cancel_relay_init(pgs_cancel_relay *r, struct event_base *base)
{
    int i;

    memset(r, 0, sizeof *r);
    r->base = base;
    pgs_ratelimit_init(&r->budget, PGS_CANCEL_PER_SECOND, PGS_CANCEL_BURST);
    pgs_ratelimit_init(&r->log_rl, PGS_LOG_PER_SECOND, PGS_LOG_BURST);
    for (i = 0; i < PGS_CANCEL_IN_FLIGHT; i++) {
        r->slots[i].relay = r;
        r->slots[i].fd = -1;
        r->slots[i].ev = event_new(base, -1, 0, slot_done, &r->slots[i]);
        if (!r->slots[i].ev) {
            pgs_cancel_relay_free(r);
            return -1;
        }
    }
    return 0;
}

static pgs_cancel_slot *free_slot(pgs_cancel_relay *r)
{
    int i;

    for (i = 0; i < PGS_CANCEL_IN_FLIGHT; i++)
        if (r->slots[i].fd < 0)
            return &r->slots[i];
    return NULL;
}

/* Sent: wait for PostgreSQL to close (it has handled the cancel then). */
static int watch(pgs_cancel_slot *s, int fd)
{
    struct timeval tv = {DONE_TIMEOUT_S, 0};

    if (event_assign(s->ev, s->relay->base, fd, EV_READ, slot_done, s) != 0 ||
        event_add(s->ev, &tv) != 0)
        return -1;
    s->fd = fd;
    return 0;
}

int pgs_cancel_forward(pgs_cancel_relay *r, const char *path, const unsigned char *pkt)
{
    pgs_cancel_slot *s = free_slot(r);
    int fd = -1, e = 0;

    if (!s || !pgs_ratelimit_take(&r->budget)) {
        r->dropped++;
        pgs_log_limited(&r->log_rl, "cancel request dropped: %s (%lu dropped so far)",
                        s ? "over the rate limit" : "PostgreSQL is still handling others",
                        r->dropped);
        return 1;
    }
    /* a full backlog is not retried: a cancel is best effort */
    fd = pgs_unix_connect(path);
    if (fd < 0 || send(fd, pkt, PGS_CANCEL_LEN, MSG_NOSIGNAL) != (ssize_t)PGS_CANCEL_LEN)
        e = errno;
    else if (watch(s, fd) != 0)
        e = ENOMEM;
    if (e) {
        if (fd >= 0)
            close(fd);
        r->failed++;
        pgs_log_limited(&r->log_rl, "cancel request not relayed: %s", strerror(e));
        return -1;
    }
    r->forwarded++;
    pgs_log_limited(&r->log_rl, "cancel request relayed");
    return 0;
}

void pgs_cancel_relay_free(pgs_cancel_relay *r)
{
    int i;

    for (i = 0; i < PGS_CANCEL_IN_FLIGHT; i++) {
        int fd = r->slots[i].fd;
        if (!r->slots[i].ev)
            continue;
        event_free(r->slots[i].ev); /* before the close: it is still watched */
        r->slots[i].ev = NULL;
        if (fd >= 0)
            close(fd);
        r->slots[i].fd = -1;
    }
}
