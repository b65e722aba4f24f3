/* dsql-local: the TLS gateway on 127.0.0.1, built on libevent bufferevents
 * with the OpenSSL filter. Owns connections, timers and the byte relay;
 * what is said at the door is in frontdoor.c. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <openssl/err.h>

#include "fdlimit.h"
#include "dialect.h"
#include "gateway.h"
#include "tls.h"

#define RELAY_HIGH (1u << 20) /* stop reading a side when the other lags */
#define BACKEND_PATIENCE_MS 5000 /* retrying a full PostgreSQL backlog */

static void conn_unlink(conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->gw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

void conn_free(conn *c)
{
    conn_unlink(c);
    pgs_preauth_remove(&c->gw->preauth, &c->preauth);
    pgs_dial_stop(&c->dial);
    if (c->raw_ev)
        event_free(c->raw_ev);
    if (c->auth_timer)
        event_free(c->auth_timer);
    if (c->life_timer)
        event_free(c->life_timer);
    if (c->close_timer)
        event_free(c->close_timer);
    if (c->txn_timer)
        event_free(c->txn_timer);
    if (c->lag_timer)
        event_free(c->lag_timer);
    if (c->lag)
        evbuffer_free(c->lag);
    if (c->session)
        c->gw->sessions--;
    if (c->client)
        bufferevent_free(c->client); /* closes fd, frees the SSL */
    else if (c->fd >= 0)
        close(c->fd);
    if (c->backend)
        bufferevent_free(c->backend);
    free(c->startup);
    free(c);
}

static void close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

static void closing_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_free(arg);
}

static void closing_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg);
}

/* Closes the other side at once, lets what is queued for the client
 * (keep_client) or for PostgreSQL go out (at most 5 s), then frees c. */
static void close_after_flush(conn *c, int keep_client)
{
    struct timeval five = {5, 0};
    struct bufferevent **keep = keep_client ? &c->client : &c->backend;
    struct bufferevent **other = keep_client ? &c->backend : &c->client;

    c->state = S_CLOSING;
    if (*other) {
        bufferevent_free(*other);
        *other = NULL;
    }
    if (!*keep || evbuffer_get_length(bufferevent_get_output(*keep)) == 0) {
        conn_free(c);
        return;
    }
    bufferevent_disable(*keep, EV_READ);
    bufferevent_setcb(*keep, NULL, closing_write_cb, closing_event_cb, c);
    bufferevent_setwatermark(*keep, EV_WRITE, 0, 0);
    if (!c->close_timer)
        c->close_timer = evtimer_new(c->gw->base, close_timeout_cb, c);
    if (!c->close_timer || evtimer_add(c->close_timer, &five) != 0)
        conn_free(c); /* out of memory: nothing would bound the wait */
}

/* Flush what is queued for the client, then close. */
static void conn_close_after_flush(conn *c)
{
    close_after_flush(c, 1);
}

/* Only whole messages of the backend's reached the client: a FATAL of
 * ours may follow. */
static int backend_between(const conn *c)
{
    return c->gw->cfg->postgres_compat ? pgs_frames_between(&c->bframes) : c->bbody_left == 0;
}

void conn_fail(conn *c, const char *sqlstate, const char *message)
{
    unsigned char buf[1024];
    size_t n = pgs_error_response(buf, sizeof buf, sqlstate, message);

    c->gw->n_refused++;
    pgs_log_limited(&c->gw->log_refused, "conn %lu: refused (%s): %s", c->id, sqlstate, message);
    bufferevent_write(c->client, buf, n);
    conn_close_after_flush(c);
}

static void auth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;

    (void)fd;
    (void)what;
    pgs_log_limited(&c->gw->log_preauth, "conn %lu: login did not finish in time", c->id);
    if (c->client && c->tls_up &&
        (c->state == S_STARTUP || c->state == S_PASSWORD || c->state == S_BACKEND))
        conn_fail(c, "08006", "unable to accept connection, authentication timed out");
    else
        conn_free(c);
}

/* A limit ends the session: the client is told why (FATAL, sqlstate)
 * when that cannot land inside a message, else the connection is cut. */
static void end_at_limit(conn *c, int can_say, const char *sqlstate, const char *fmt, int secs)
{
    char msg[160];

    if (!can_say) {
        conn_free(c);
        return;
    }
    snprintf(msg, sizeof msg, fmt, secs);
    c->gw->n_refused--; /* conn_fail counts refusals; this is not one */
    conn_fail(c, sqlstate, msg);
}

static void life_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;

    (void)fd;
    (void)what;
    pgs_log("conn %lu: maximum connection duration reached, closing", c->id);
    end_at_limit(c, (c->state == S_RELAY && backend_between(c)) ||
                        (c->tls_up && (c->state == S_STARTUP || c->state == S_PASSWORD ||
                                       c->state == S_BACKEND)),
                 "57P01", "terminating connection: maximum connection duration of %d s reached",
                 c->gw->cfg->max_conn_seconds);
}

/* DSQL ends a transaction after 5 minutes ("Cluster quotas and database
 * limits in Amazon Aurora DSQL"); so do we, by closing the connection, as
 * PostgreSQL 17's transaction_timeout does (SQLSTATE 25P04). */
static void txn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;

    (void)fd;
    (void)what;
    pgs_log("conn %lu: transaction longer than %d s, closing", c->id, c->gw->cfg->max_txn_seconds);
    end_at_limit(c, c->state == S_RELAY && backend_between(c), "25P04",
                 "terminating connection: transaction exceeded the maximum duration of %d s",
                 c->gw->cfg->max_txn_seconds);
}

void conn_txn_status(conn *c, char status)
{
    struct timeval limit = {c->gw->cfg->max_txn_seconds, 0};

    if (status == 'I') {
        c->in_txn = 0;
        if (c->txn_timer)
            evtimer_del(c->txn_timer);
        return;
    }
    if (c->in_txn || c->gw->cfg->max_txn_seconds <= 0)
        return;
    c->in_txn = 1;
    if (!c->txn_timer)
        c->txn_timer = evtimer_new(c->gw->base, txn_timeout_cb, c);
    if (c->txn_timer)
        evtimer_add(c->txn_timer, &limit); /* out of memory: this one goes untimed */
}

/* ---- relay ---- */

/* The client is gone: let PostgreSQL still get what it sent last (its
 * Terminate message), then close. */
static void close_backend_after_flush(conn *c)
{
    close_after_flush(c, 0);
}

static void lag_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;

    (void)fd;
    (void)what;
    if (c->backend && evbuffer_add_buffer(bufferevent_get_output(c->backend), c->lag) != 0) {
        pgs_log("conn %lu: out of memory while relaying", c->id);
        conn_free(c);
    }
}

/* --latency: what the client sends waits that long before PostgreSQL gets
 * it (bytes that arrive meanwhile go with the first). NULL: no delay. */
static struct evbuffer *lag_buffer(conn *c)
{
    struct timeval tv;
    int ms = c->gw->faults.latency_ms;

    if (ms <= 0)
        return NULL;
    if (!c->lag)
        c->lag = evbuffer_new();
    if (c->lag && !c->lag_timer)
        c->lag_timer = evtimer_new(c->gw->base, lag_cb, c);
    if (!c->lag || !c->lag_timer)
        return NULL; /* out of memory: no delay rather than no relay */
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (!evtimer_pending(c->lag_timer, NULL) && evtimer_add(c->lag_timer, &tv) != 0)
        return NULL;
    return c->lag;
}

static void relay_read_cb(struct bufferevent *from, void *arg)
{
    conn *c = arg;
    struct bufferevent *to = from == c->client ? c->backend : c->client;
    struct evbuffer *out = bufferevent_get_output(to), *lag;
    int rc;

    if (from == c->client && (lag = lag_buffer(c)) != NULL)
        out = lag;
    if (!c->gw->cfg->postgres_compat)
        rc = from == c->client ? dialect_client_to_backend(c, bufferevent_get_input(from), out)
                               : dialect_backend_to_client(c, bufferevent_get_input(from), out);
    else {
        if (from == c->backend)
            pgs_frames_feed_evbuffer(&c->bframes, bufferevent_get_input(from));
        rc = evbuffer_add_buffer(out, bufferevent_get_input(from));
    }
    if (rc == DIALECT_DROP) {
        pgs_log("conn %lu: commit done, connection cut (drop-after-commit)", c->id);
        conn_free(c);
        return;
    }
    if (rc != 0) {
        /* dropping bytes would desynchronise the protocol: close instead */
        pgs_log("conn %lu: out of memory while relaying", c->id);
        conn_free(c);
        return;
    }
    if (evbuffer_get_length(out) >= RELAY_HIGH)
        bufferevent_disable(from, EV_READ);
}

static void relay_write_cb(struct bufferevent *to, void *arg)
{
    conn *c = arg;
    struct bufferevent *from = to == c->client ? c->backend : c->client;

    if (c->state == S_RELAY && bufferevent_enable(from, EV_READ) != 0) {
        pgs_log("conn %lu: out of memory while relaying", c->id);
        conn_free(c);
    }
}

static void relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;

    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (bev == c->backend) {
        /* backend gone (or died): deliver what it said, then close */
        if (what & BEV_EVENT_ERROR)
            pgs_log("conn %lu: backend connection error", c->id);
        bufferevent_free(c->backend);
        c->backend = NULL;
        conn_close_after_flush(c);
    } else {
        close_backend_after_flush(c);
    }
}

static void backend_unreachable(conn *c, int err)
{
    pgs_log_limited(&c->gw->log_refused, "conn %lu: cannot reach PostgreSQL: %s", c->id,
                    strerror(err));
    conn_fail(c, "08006", "unable to accept connection, the database is not available");
}

/* PostgreSQL answered: send it the startup packet and relay. The socket is
 * connected here rather than by bufferevent_socket_connect(): libevent 2.1
 * ignores a failure to watch the new socket there, and the connection
 * would then wait forever. */
static void backend_ready(conn *c, int fd)
{
    c->backend = bufferevent_socket_new(c->gw->base, fd,
                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->backend) {
        close(fd);
        conn_fail(c, "53200", "out of memory");
        return;
    }
    if (bufferevent_write(c->backend, c->startup, c->startup_len) != 0 ||
        bufferevent_enable(c->backend, EV_READ | EV_WRITE) != 0 ||
        bufferevent_enable(c->client, EV_READ | EV_WRITE) != 0) {
        conn_fail(c, "53200", "out of memory");
        return;
    }
    event_free(c->auth_timer); /* logged in: only the lifetime limit is left */
    c->auth_timer = NULL;
    c->state = S_RELAY;
    pgs_frames_init(&c->bframes, "");
    c->gw->n_ok++;
    free(c->startup);
    c->startup = NULL;
    /* a Query waits whole in the input (dialect.c): room for the largest checked */
    bufferevent_setwatermark(c->client, EV_READ, 0, (2u << 20) + 64);
    bufferevent_setcb(c->client, relay_read_cb, relay_write_cb, relay_event_cb, c);
    bufferevent_setcb(c->backend, relay_read_cb, relay_write_cb, relay_event_cb, c);
    if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
        relay_read_cb(c->client, c); /* bytes the client pipelined after its password */
}

static void backend_dialed(int fd, int err, void *arg)
{
    conn *c = arg;

    pgs_dial_stop(&c->dial);
    if (fd < 0)
        backend_unreachable(c, err);
    else
        backend_ready(c, fd);
}

/* Out of descriptors: the listener's and the key table read's callback
 * (arg: the gateway) and a backend dial's (arg: its conn) each close a
 * connection not logged in. */
int conn_make_room(void *gateway)
{
    struct dl_gateway *gw = gateway;
    return pgs_preauth_evict_one(&gw->preauth);
}

static int dial_make_room(void *arg)
{
    conn *c = arg;
    return conn_make_room(c->gw);
}

/* The token checked out (the client left the pre-login count when its
 * password came: frontdoor.c). PostgreSQL's backlog may be full for a
 * moment (each CancelRequest costs it a fork), so a refused connect is
 * retried for a while. */
void conn_start_backend(conn *c)
{
    int fd;

    if (dl_faults_roll(c->gw->faults.refuse_rate) ||
        (c->gw->cfg->conn_rate > 0 && !pgs_ratelimit_take(&c->gw->new_sessions))) {
        conn_fail(c, "53400", "Unable to accept connection, rate exceeded.");
        return;
    }
    if (c->gw->sessions >= c->gw->session_cap) {
        conn_fail(c, "53300", "Unable to accept connection, too many open connections.");
        return;
    }
    c->gw->sessions++;
    c->session = 1;
    c->state = S_BACKEND;
    c->dial.done = backend_dialed;
    c->dial.shortage = dial_make_room;
    c->dial.arg = c;
    fd = pgs_dial_start(&c->dial, c->gw->base, c->gw->pg_socket, BACKEND_PATIENCE_MS);
    if (fd >= 0)
        backend_ready(c, fd);
    else if (errno != EINPROGRESS)
        backend_unreachable(c, errno);
}

/* ---- TLS ---- */

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->tls_up = 1;
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->tls_up)
            pgs_log_limited(&c->gw->log_preauth, "conn %lu: TLS handshake failed", c->id);
        conn_free(c);
    }
}

int conn_start_tls(conn *c)
{
    SSL *ssl = SSL_new(c->gw->ssl_ctx);

    if (!ssl)
        return -1;
    if (c->raw_ev) {
        event_free(c->raw_ev);
        c->raw_ev = NULL;
    }
    c->client = pgs_tls_bufferevent(c->gw->base, c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING);
    if (!c->client)
        return -1; /* c->fd is still ours, conn_free closes it */
    c->fd = -1;
    c->state = S_STARTUP; /* bytes only arrive once the handshake is done */
    bufferevent_setcb(c->client, frontdoor_read_cb, NULL, tls_event_cb, c);
    bufferevent_setwatermark(c->client, EV_READ, 0, PGS_MAX_PACKET + 64);
    if (bufferevent_enable(c->client, EV_READ | EV_WRITE) != 0)
        return -1; /* the caller frees c, and with it the bufferevent */
    return 0;
}

static SSL_CTX *make_ssl_ctx(const char *cert_dir, char *err, size_t errcap)
{
    SSL_CTX *ctx = pgs_tls_ctx_new(1);
    char cert[600], key[600];

    snprintf(cert, sizeof cert, "%s/server.pem", cert_dir);
    snprintf(key, sizeof key, "%s/server.key", cert_dir);
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errcap, "cannot set up TLS with %s", cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, pgs_tls_alpn_select, NULL);
    return ctx;
}

/* ---- listener ---- */

static void evict_cb(pgs_preauth_node *n, void *arg)
{
    struct dl_gateway *gw = arg;
    conn *c = (conn *)(void *)((char *)n - offsetof(conn, preauth));

    pgs_log_limited(&gw->log_preauth,
                    "conn %lu: closed before login to make room for a new connection (%lu "
                    "closed so far; %zu may wait to log in)", c->id, gw->preauth.evicted,
                    gw->preauth.limit);
    conn_free(c);
}

static void accepted_cb(int fd, void *arg)
{
    struct dl_gateway *gw = arg;
    conn *c = calloc(1, sizeof *c);
    struct timeval auth = {gw->cfg->auth_timeout, 0};
    struct timeval life = {gw->cfg->max_conn_seconds, 0};
    int one = 1;

    if (!c) {
        close(fd);
        return;
    }
    c->gw = gw;
    c->fd = fd;
    c->id = ++gw->n_accepted;
    c->next = gw->conns;
    if (gw->conns)
        gw->conns->prev = c;
    gw->conns = c;
    pgs_preauth_add(&gw->preauth, &c->preauth); /* may close the oldest idle one */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->raw_ev = event_new(gw->base, fd, EV_READ | EV_PERSIST, frontdoor_raw_cb, c);
    c->auth_timer = evtimer_new(gw->base, auth_timeout_cb, c);
    c->life_timer = evtimer_new(gw->base, life_timeout_cb, c);
    if (!c->raw_ev || !c->auth_timer || !c->life_timer || event_add(c->raw_ev, NULL) != 0 ||
        evtimer_add(c->auth_timer, &auth) != 0 || evtimer_add(c->life_timer, &life) != 0)
        conn_free(c); /* out of memory: a connection nobody watches would hang */
}

static void init_limits(struct dl_gateway *gw)
{
    long fd_limit = pgs_fd_limit_raise();
    size_t cap = gw->cfg->max_preauth > 0 ? (size_t)gw->cfg->max_preauth
                                           : pgs_preauth_default_limit(fd_limit);

    pgs_preauth_init(&gw->preauth, cap, evict_cb, gw);
    pgs_ratelimit_init(&gw->log_preauth, PGS_LOG_PER_SECOND, PGS_LOG_BURST);
    /* login outcomes matter more when debugging: a larger allowance */
    pgs_ratelimit_init(&gw->log_refused, 5 * PGS_LOG_PER_SECOND, 5 * PGS_LOG_BURST);
    pgs_log("descriptor limit %ld; at most %zu connections may wait to log in", fd_limit, cap);
    /* by default what PostgreSQL and our descriptors can honour */
    gw->session_cap = DL_PG_MAX_CONNECTIONS - DL_PG_CONN_MARGIN;
    if (fd_limit > 0 && (size_t)fd_limit / 2 < gw->session_cap)
        gw->session_cap = (size_t)fd_limit / 2;
    if (gw->cfg->max_connections > 0)
        gw->session_cap = (size_t)gw->cfg->max_connections;
    if (gw->cfg->conn_rate > 0)
        pgs_ratelimit_init(&gw->new_sessions, gw->cfg->conn_rate, gw->cfg->conn_burst);
    pgs_log("at most %zu sessions%s", gw->session_cap,
            gw->cfg->conn_rate > 0 ? ", new ones rate limited" : "");
}

dl_gateway *dl_gateway_new(struct event_base *base, const dl_config *cfg,
                           const char *cert_dir, const char *keys_file,
                           const char *pg_sock_dir, char *err, size_t errcap)
{
    struct dl_gateway *gw = calloc(1, sizeof *gw);
    struct sockaddr_in sin;
    pgs_listener_cbs cbs;
    char lerr[200];

    if (!gw) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    gw->base = base;
    gw->cfg = cfg;
    gw->faults = cfg->faults;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(gw->keys_file, sizeof gw->keys_file, "%s", keys_file);
    if (snprintf(gw->pg_socket, sizeof gw->pg_socket, "%s/.s.PGSQL.5432", pg_sock_dir) >= 108) {
        snprintf(err, errcap, "the state directory path is too long for a Unix socket");
        free(gw);
        return NULL;
    }
    gw->ssl_ctx = make_ssl_ctx(cert_dir, err, errcap);
    if (!gw->ssl_ctx) {
        free(gw);
        return NULL;
    }
    init_limits(gw);
    if (pgs_cancel_relay_init(&gw->cancels, base) != 0) {
        snprintf(err, errcap, "out of memory");
        SSL_CTX_free(gw->ssl_ctx);
        free(gw);
        return NULL;
    }
    cbs.accepted = accepted_cb;
    cbs.shortage = conn_make_room;
    cbs.arg = gw;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)cfg->port);
    gw->listener = pgs_listener_new(base, (struct sockaddr *)&sin, sizeof sin, 1024, &cbs, lerr,
                                    sizeof lerr);
    if (!gw->listener) {
        snprintf(err, errcap, "cannot listen on 127.0.0.1:%d: %s", cfg->port, lerr);
        pgs_cancel_relay_free(&gw->cancels);
        SSL_CTX_free(gw->ssl_ctx);
        free(gw);
        return NULL;
    }
    gw->port = pgs_listener_port(gw->listener);
    return gw;
}

int dl_gateway_port(const dl_gateway *gw)
{
    return gw->port;
}

dl_faults *dl_gateway_faults(dl_gateway *gw)
{
    return &gw->faults;
}

void dl_gateway_free(dl_gateway *gw)
{
    if (!gw)
        return;
    pgs_listener_free(gw->listener);
    pgs_cancel_relay_free(&gw->cancels);
    while (gw->conns)
        conn_free(gw->conns);
    /* bufferevents made with BEV_OPT_DEFER_CALLBACKS finish freeing (and
     * drop their SSL, and the SSL_CTX reference) in the loop's next pass */
    event_base_loop(gw->base, EVLOOP_NONBLOCK);
    pgs_log("gateway stopped: %lu connections, %lu logged in, %lu refused, %lu closed before "
            "login to make room; cancel requests: %lu relayed, %lu dropped, %lu failed",
            gw->n_accepted, gw->n_ok, gw->n_refused, gw->preauth.evicted, gw->cancels.forwarded,
            gw->cancels.dropped, gw->cancels.failed);
    if (gw->n_conflicts || gw->n_drops)
        pgs_log("faults injected: %lu conflicts at commit, %lu connections cut after commit",
                gw->n_conflicts, gw->n_drops);
    SSL_CTX_free(gw->ssl_ctx);
    free(gw);
}
