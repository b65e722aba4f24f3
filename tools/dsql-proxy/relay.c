/* dsql-proxy: the relay, after the login: bytes both ways, untouched,
 * between the client's socket and the upstream's TLS connection.
 * libevent's bufferevents cost system calls per message (a write event
 * added and removed around each one, FIONREAD before each read, reads
 * until EAGAIN) and an allocation per read; so the relay takes both
 * connections out of them and keeps, per direction, one buffer made once.
 * Each side has a persistent, level-triggered read event: one read per
 * readiness (the loop reports again if more is waiting), its bytes written
 * to the other side at once. Only a short write adds a write event, and
 * the side that direction reads from is not read until the buffer is out
 * (back-pressure: the proxy holds at most one buffer per direction).
 * A round trip then costs epoll_wait, recv, SSL_write (one write),
 * epoll_wait, SSL_read (one read: read-ahead), send. OpenSSL may hold
 * records it read ahead, which epoll cannot see: they are read before
 * the loop waits again. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "session.h"

#define RELAY_BUF (16u * 1024u) /* a TLS record's plaintext, at most */

typedef struct relay_buf {
    unsigned char *data;
    size_t cap, head, tail; /* data[head, tail): read, not written yet */
} relay_buf;

enum { CLIENT_READ, CLIENT_WRITE, UP_READ, UP_WRITE, N_EVENTS };

struct dp_relay {
    dp_session *s;
    int client_fd, up_fd;      /* -1 once that side is dropped */
    SSL *ssl;                  /* the upstream's; NULL once dropped */
    relay_buf to_up, to_client;
    struct event *ev[N_EVENTS];
    unsigned on;               /* bit i: ev[i] is added */
    int read_wants_write;      /* SSL_read needs the socket writable */
    int write_wants_read;      /* SSL_write needs it readable */
    int closing;               /* only what is queued for the kept side goes out */
};

static size_t pending(const relay_buf *b)
{
    return b->tail - b->head;
}

/* Room for n more bytes at b's tail (NULL: out of memory). */
static unsigned char *room(relay_buf *b, size_t n)
{
    if (b->cap - b->tail < n && b->head > 0) {
        memmove(b->data, b->data + b->head, pending(b));
        b->tail -= b->head;
        b->head = 0;
    }
    if (b->cap - b->tail < n) {
        unsigned char *d = realloc(b->data, b->tail + n);
        if (!d)
            return NULL;
        b->data = d;
        b->cap = b->tail + n;
    }
    return b->data + b->tail;
}

/* Copies what a bufferevent's evbuffer holds to b's tail (room for it
 * was made); the bufferevent is freed next. 0, or -1. */
static int take(relay_buf *b, struct evbuffer *from)
{
    size_t n = evbuffer_get_length(from);

    /* a bufferevent's output is frozen at its start (only the bufferevent
     * takes from it), its input at its end: copyout needs the start */
    evbuffer_unfreeze(from, 1);
    if (n > 0 && evbuffer_copyout(from, b->data + b->tail, n) != (ev_ssize_t)n)
        return -1;
    b->tail += n;
    return 0;
}

/* The events the state asks for: reading a side only while the other
 * direction's buffer is out, writing only what a short write left. */
static unsigned wanted(const dp_relay *r)
{
    unsigned w = 0;

    if (r->client_fd >= 0) {
        if (!r->closing && pending(&r->to_up) == 0)
            w |= 1u << CLIENT_READ;
        if (pending(&r->to_client) > 0)
            w |= 1u << CLIENT_WRITE;
    }
    if (r->ssl) {
        if ((!r->closing && pending(&r->to_client) == 0) || r->write_wants_read)
            w |= 1u << UP_READ;
        if ((pending(&r->to_up) > 0 && !r->write_wants_read) || r->read_wants_write)
            w |= 1u << UP_WRITE;
    }
    return w;
}

/* Adds and deletes events to match wanted(): nothing in steady state. */
static int settle(dp_relay *r)
{
    unsigned w = wanted(r), i;

    for (i = 0; i < N_EVENTS; i++) {
        unsigned bit = 1u << i;
        if (!((w ^ r->on) & bit))
            continue;
        if ((w & bit ? event_add(r->ev[i], NULL) : event_del(r->ev[i])) != 0)
            return -1;
        r->on ^= bit;
    }
    return 0;
}

/* Stops watching one side; its events may not be made yet (relay_new). */
static void unwatch(dp_relay *r, int read_ev, int write_ev)
{
    if (r->ev[read_ev])
        event_del(r->ev[read_ev]);
    if (r->ev[write_ev])
        event_del(r->ev[write_ev]);
    r->on &= ~(1u << read_ev | 1u << write_ev);
}

/* Closes the client's side, what waits for it dropped; again: nothing. */
static void drop_client(dp_relay *r)
{
    unwatch(r, CLIENT_READ, CLIENT_WRITE);
    if (r->client_fd >= 0)
        close(r->client_fd);
    r->client_fd = -1;
    r->to_client.head = r->to_client.tail = 0;
}

/* Closes the upstream's side, as drop_client. */
static void drop_upstream(dp_relay *r)
{
    unwatch(r, UP_READ, UP_WRITE);
    SSL_free(r->ssl);
    r->ssl = NULL;
    if (r->up_fd >= 0)
        close(r->up_fd);
    r->up_fd = -1;
    r->to_up.head = r->to_up.tail = 0;
    r->read_wants_write = r->write_wants_read = 0;
}

static int client_flush(dp_relay *r);
static int up_flush(dp_relay *r);

/* n bytes read, about to be relayed: counted, and their framing followed
 * for the duration limit (lifetime.c). */
static void follow(dp_relay *r, const unsigned char *p, size_t n, int to_upstream)
{
    dp_session *s = r->s;

    if (to_upstream)
        s->p->stats.bytes_to_upstream += n;
    else
        s->p->stats.bytes_to_client += n;
    if (s->p->opt->max_duration > 0 && n > 0)
        dp_lifetime_follow(s, p, n, to_upstream);
}

/* One side is gone or done: the other still gets what is queued for it
 * (the client's Terminate, the upstream's FATAL), for at most 5 s, then
 * s is freed. Always -1: s is gone or closing. */
static int relay_close(dp_relay *r, int keep_client)
{
    dp_session *s = r->s;
    int kept_alive = keep_client ? r->client_fd >= 0 : r->ssl != NULL;

    if (keep_client)
        drop_upstream(r);
    else
        drop_client(r);
    if (!kept_alive || pending(keep_client ? &r->to_client : &r->to_up) == 0) {
        dp_session_free(s);
        return -1;
    }
    r->closing = 1;
    if (dp_session_linger(s) != 0) {
        dp_session_free(s);
        return -1;
    }
    if ((keep_client ? client_flush(r) : up_flush(r)) != 0)
        return -1; /* out and freed, or that side failed too */
    if (settle(r) != 0)
        dp_session_free(s);
    return -1;
}

void dp_relay_close_client(dp_relay *r)
{
    relay_close(r, 1);
}

/* All of b is written: its room is whole again, and a session that was
 * closing after this write ends. 0, or -1 when s is gone. */
static int flushed(dp_relay *r, relay_buf *b)
{
    b->head = b->tail = 0;
    if (r->closing) {
        dp_session_free(r->s);
        return -1;
    }
    return 0;
}

/* What waits for the client, written now; the rest (a short write) waits
 * for a write event. 0, or -1 when s is gone or closing. */
static int client_flush(dp_relay *r)
{
    relay_buf *b = &r->to_client;

    while (pending(b) > 0) {
        ssize_t n = send(r->client_fd, b->data + b->head, pending(b), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return relay_close(r, 0); /* the client is gone */
        b->head += (size_t)n;
    }
    return flushed(r, b);
}

/* What waits for the upstream, written now, as client_flush. A write
 * that must wait is retried with the same bytes, which stay where they
 * are until written (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER covers a move
 * by room()). */
static int up_flush(dp_relay *r)
{
    relay_buf *b = &r->to_up;

    r->write_wants_read = 0;
    while (pending(b) > 0) {
        size_t len = pending(b) < INT_MAX ? pending(b) : INT_MAX;
        int n = SSL_write(r->ssl, b->data + b->head, (int)len);
        if (n <= 0) {
            int e = SSL_get_error(r->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE)
                return 0;
            if (e == SSL_ERROR_WANT_READ) { /* a handshake message first */
                r->write_wants_read = 1;
                return 0;
            }
            ERR_clear_error(); /* the queue is per thread: no stale errors */
            return relay_close(r, 1); /* the upstream is gone */
        }
        b->head += (size_t)n;
    }
    return flushed(r, b);
}

static int upstream_closed(dp_relay *r)
{
    /* at the duration limit the client is told why (lifetime.c) */
    if (dp_lifetime_upstream_closed(r->s))
        return -1;
    return relay_close(r, 1);
}

/* Reads the upstream once (and what OpenSSL read ahead of it), writing
 * each piece to the client. Called only when nothing waits for the
 * client. 0, or -1 when s is gone or closing. */
static int up_read(dp_relay *r)
{
    dp_session *s = r->s;
    relay_buf *b = &r->to_client;

    r->read_wants_write = 0;
    do {
        int n = SSL_read(r->ssl, b->data, (int)(b->cap < INT_MAX ? b->cap : INT_MAX));
        if (n <= 0) {
            int e = SSL_get_error(r->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                return 0;
            if (e == SSL_ERROR_WANT_WRITE) { /* e.g. answering a KeyUpdate */
                r->read_wants_write = 1;
                return 0;
            }
            ERR_clear_error();
            return upstream_closed(r);
        }
        b->head = 0;
        b->tail = (size_t)n;
        follow(r, b->data, (size_t)n, 0);
        if (client_flush(r) != 0 || dp_lifetime_check(s))
            return -1;
    } while (pending(b) == 0 && SSL_has_pending(r->ssl));
    return 0;
}

/* Reads the client once; called only when nothing waits for the upstream. */
static int client_read(dp_relay *r)
{
    relay_buf *b = &r->to_up;
    ssize_t n;

    if (pending(b) > 0)
        return 0; /* a readiness reported before the read event was deleted */
    n = recv(r->client_fd, b->data, b->cap, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0)
        return relay_close(r, 0); /* what the upstream was sent is all it gets */
    b->head = 0;
    b->tail = (size_t)n;
    follow(r, b->data, (size_t)n, 1);
    return up_flush(r);
}

/* The client's buffer is out: what OpenSSL holds is read now (no event
 * will say it is there). */
static int client_writable(dp_relay *r)
{
    if (client_flush(r) != 0)
        return -1;
    if (pending(&r->to_client) == 0 && r->ssl && SSL_has_pending(r->ssl))
        return up_read(r);
    return 0;
}

static int up_readable(dp_relay *r)
{
    if (r->write_wants_read && up_flush(r) != 0)
        return -1;
    if (!r->closing && r->ssl && pending(&r->to_client) == 0)
        return up_read(r);
    return 0;
}

static int up_writable(dp_relay *r)
{
    if (pending(&r->to_up) > 0 && !r->write_wants_read && up_flush(r) != 0)
        return -1;
    if (r->read_wants_write && r->ssl && pending(&r->to_client) == 0)
        return up_read(r);
    return 0;
}

static void event_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_relay *r = arg;
    int rc;

    (void)fd;
    if (what & EV_READ)
        rc = fd == r->client_fd ? client_read(r) : up_readable(r);
    else
        rc = fd == r->client_fd ? client_writable(r) : up_writable(r);
    if (rc == 0 && settle(r) != 0) {
        pgs_log("conn %lu: out of memory while relaying", r->s->id);
        dp_session_free(r->s);
    }
}

void dp_relay_free(dp_relay *r)
{
    int i;

    drop_client(r);
    drop_upstream(r);
    for (i = 0; i < N_EVENTS; i++)
        if (r->ev[i])
            event_free(r->ev[i]);
    free(r->to_up.data);
    free(r->to_client.data);
    free(r);
}

int dp_relay_say(dp_relay *r, const void *msg, size_t n)
{
    unsigned char *at = r->client_fd >= 0 ? room(&r->to_client, n) : NULL;

    if (!at)
        return -1;
    memcpy(at, msg, n);
    r->to_client.tail += n;
    return 0;
}

static dp_relay *relay_new(dp_session *s)
{
    struct event_base *base = s->p->base;
    size_t to_client = evbuffer_get_length(bufferevent_get_output(s->client)) +
                       evbuffer_get_length(bufferevent_get_input(s->upstream));
    size_t to_up = evbuffer_get_length(bufferevent_get_output(s->upstream)) +
                   evbuffer_get_length(bufferevent_get_input(s->client));
    dp_relay *r = calloc(1, sizeof *r);
    int i;

    if (!r)
        return NULL;
    r->s = s;
    r->client_fd = r->up_fd = -1;
    r->to_up.cap = to_up > RELAY_BUF ? to_up : RELAY_BUF;
    r->to_client.cap = to_client > RELAY_BUF ? to_client : RELAY_BUF;
    r->to_up.data = malloc(r->to_up.cap);
    r->to_client.data = malloc(r->to_client.cap);
    r->ev[CLIENT_READ] = event_new(base, s->client_fd, EV_READ | EV_PERSIST, event_cb, r);
    r->ev[CLIENT_WRITE] = event_new(base, s->client_fd, EV_WRITE | EV_PERSIST, event_cb, r);
    r->ev[UP_READ] = event_new(base, bufferevent_getfd(s->upstream), EV_READ | EV_PERSIST,
                               event_cb, r);
    r->ev[UP_WRITE] = event_new(base, bufferevent_getfd(s->upstream), EV_WRITE | EV_PERSIST,
                                event_cb, r);
    for (i = 0; i < N_EVENTS; i++)
        if (!r->ev[i])
            break;
    if (i < N_EVENTS || !r->to_up.data || !r->to_client.data) {
        dp_relay_free(r);
        return NULL;
    }
    return r;
}

int dp_relay_start(dp_session *s)
{
    dp_relay *r = relay_new(s);
    size_t said, pipelined;

    /* for the client: the login's answers not written yet, then what the
     * upstream said after ReadyForQuery; for the upstream: the password
     * if not out yet, then what the client pipelined */
    if (!r || take(&r->to_client, bufferevent_get_output(s->client)) != 0 ||
        (said = r->to_client.tail, take(&r->to_client, bufferevent_get_input(s->upstream))) != 0 ||
        take(&r->to_up, bufferevent_get_output(s->upstream)) != 0 ||
        (pipelined = r->to_up.tail, take(&r->to_up, bufferevent_get_input(s->client))) != 0) {
        if (r)
            dp_relay_free(r);
        return -1;
    }
    r->client_fd = s->client_fd;
    r->up_fd = bufferevent_getfd(s->upstream);
    r->ssl = bufferevent_openssl_get_ssl(s->upstream);
    /* neither bufferevent closes what it had (made without
     * BEV_OPT_CLOSE_ON_FREE): the relay owns both now */
    bufferevent_free(s->client);
    bufferevent_free(s->upstream);
    s->client = s->upstream = NULL;
    s->client_fd = -1;
    s->relay = r;
    /* only what came after the login counts as relayed */
    follow(r, r->to_client.data + said, r->to_client.tail - said, 0);
    follow(r, r->to_up.data + pipelined, r->to_up.tail - pipelined, 1);
    /* partial writes: a record at a time, so a short write leaves the
     * rest in place; read-ahead: one read() a record, not two */
    SSL_set_mode(r->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_read_ahead(r->ssl, 1);
    if (client_writable(r) != 0 || up_flush(r) != 0)
        return 0; /* s is gone or closing */
    return settle(r);
}
