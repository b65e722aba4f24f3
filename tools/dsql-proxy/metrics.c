/* dsql-proxy: --metrics, the counters in Prometheus' text exposition
 * format (version 0.0.4) over HTTP/1.0 on a loopback port. Served by the
 * same event loop as the sessions, never blocking it, and bounded so a
 * scraper (or anything else that connects) costs little: at most
 * MAX_CONNS connections at once (more are closed as they arrive), a
 * request head of at most MAX_REQUEST bytes that must arrive within
 * TIMEOUT_S, one answer, then close. Loopback only, like the listeners:
 * the numbers say who uses the proxy and how much. */
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "proxy.h"

#define MAX_CONNS 8
#define MAX_REQUEST 8192
#define TIMEOUT_S 5

typedef struct mconn {
    struct dp_metrics *m;
    struct mconn *prev, *next;
    struct bufferevent *bev;
    struct event *timer;
} mconn;

typedef struct dp_metrics {
    dp_proxy *p;
    pgs_listener *l;
    mconn *conns;
    int nconns;
} dp_metrics;

static const char *const FAIL_NAMES[DP_FAIL_N] = {
    "peer_uid", "protocol", "user", "client_password", "too_many_connections",
    "credentials", "upstream_unreachable", "upstream_refused", "upstream_protocol",
    "timeout", "out_of_memory"};

int dp_metrics_parse(dp_listen *l, const char *spec, char *err, size_t errcap)
{
    int rc;

    if (strncmp(spec, "tcp:", 4) != 0) {
        snprintf(err, errcap, "--metrics %.80s: expected tcp:127.0.0.1:PORT", spec);
        return -1;
    }
    rc = dp_listen_parse(l, "--metrics", spec, err, errcap);
    if (rc == -2)
        snprintf(err, errcap, "--metrics %.80s: only loopback addresses (127.0.0.0/8, ::1), as "
                 "tcp:127.0.0.1:PORT: the numbers tell who uses the proxy and how much", spec);
    return rc == 0 ? 0 : -1;
}

static void conn_free(mconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->m->nconns--;
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);
    free(c);
}

static void counter(struct evbuffer *b, const char *name, const char *help, const char *type)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_body(struct evbuffer *b, const dp_proxy *p)
{
    const dp_stats *st = &p->stats;
    int i;

    counter(b, "dsql_proxy_connections", "Client connections open now.", "gauge");
    evbuffer_add_printf(b, "dsql_proxy_connections %zu\n", p->nsessions);
    counter(b, "dsql_proxy_connections_total",
            "Client connections accepted (refused ones included).", "counter");
    evbuffer_add_printf(b, "dsql_proxy_connections_total %lu\n", st->connections);
    counter(b, "dsql_proxy_sessions", "Clients logged in and relaying now.", "gauge");
    evbuffer_add_printf(b, "dsql_proxy_sessions %lu\n", st->relaying);
    counter(b, "dsql_proxy_logins_total", "Clients logged in to the upstream.", "counter");
    evbuffer_add_printf(b, "dsql_proxy_logins_total %lu\n", st->logins);
    counter(b, "dsql_proxy_login_failures_total", "Clients refused, by reason.", "counter");
    for (i = 0; i < DP_FAIL_N; i++)
        evbuffer_add_printf(b, "dsql_proxy_login_failures_total{reason=\"%s\"} %lu\n",
                            FAIL_NAMES[i], st->failures[i]);
    counter(b, "dsql_proxy_relayed_bytes_total", "Bytes relayed after login, by direction.",
            "counter");
    evbuffer_add_printf(b, "dsql_proxy_relayed_bytes_total{direction=\"to_upstream\"} %llu\n",
                        (unsigned long long)st->bytes_to_upstream);
    evbuffer_add_printf(b, "dsql_proxy_relayed_bytes_total{direction=\"to_client\"} %llu\n",
                        (unsigned long long)st->bytes_to_client);
    counter(b, "dsql_proxy_token_signings_total", "IAM tokens signed for logins.", "counter");
    evbuffer_add_printf(b, "dsql_proxy_token_signings_total %lu\n", st->tokens);
    counter(b, "dsql_proxy_credentials_refreshes_total",
            "Credentials fetched by the proxy's cache (the first fetch included).", "counter");
    evbuffer_add_printf(b, "dsql_proxy_credentials_refreshes_total %lu\n",
                        atomic_load(&st->creds_fetches));
    counter(b, "dsql_proxy_credentials_refresh_failures_total",
            "Credentials fetches that failed.", "counter");
    evbuffer_add_printf(b, "dsql_proxy_credentials_refresh_failures_total %lu\n",
                        atomic_load(&st->creds_fetch_failures));
    counter(b, "dsql_proxy_duration_limit_closes_total",
            "Sessions ended at the connection-duration limit, with a FATAL.", "counter");
    evbuffer_add_printf(b, "dsql_proxy_duration_limit_closes_total %lu\n", st->duration_closes);
    counter(b, "dsql_proxy_cancels_forwarded_total", "Cancel requests sent upstream.",
            "counter");
    evbuffer_add_printf(b, "dsql_proxy_cancels_forwarded_total %lu\n", st->cancels);
}

/* After the answer: our side is done (FIN), and what the client still
 * sends is read and dropped until it closes or the timer ends it, so
 * closing never resets a connection whose answer is still on its way. */
static void written_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void discard_cb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg); /* EOF, error: nothing more to say */
}

static void answer(mconn *c, const char *status, const char *extra, int head_only)
{
    struct evbuffer *body = evbuffer_new();
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (!body) {
        conn_free(c);
        return;
    }
    if (strncmp(status, "200", 3) == 0)
        put_body(body, c->m->p);
    else
        evbuffer_add_printf(body, "%s\n", status);
    evbuffer_add_printf(out, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                        "Connection: close\r\n\r\n", status,
                        strncmp(status, "200", 3) == 0 ? "text/plain; version=0.0.4; charset=utf-8"
                                                       : "text/plain; charset=utf-8",
                        evbuffer_get_length(body), extra);
    if (!head_only)
        evbuffer_add_buffer(out, body);
    evbuffer_free(body);
    discard_cb(c->bev, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_setcb(c->bev, discard_cb, written_cb, event_cb, c);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        conn_free(c);
}

/* The request line of a complete head: GET or HEAD of /metrics. */
static void route(mconn *c, const char *head, size_t len)
{
    const char *eol = memchr(head, '\n', len), *path, *sp;
    size_t n = eol ? (size_t)(eol - head) : len;
    int is_head = n > 5 && memcmp(head, "HEAD ", 5) == 0;

    if (!is_head && !(n > 4 && memcmp(head, "GET ", 4) == 0)) {
        answer(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", 0);
        return;
    }
    path = head + (is_head ? 5 : 4);
    sp = memchr(path, ' ', n - (size_t)(path - head));
    n = sp ? (size_t)(sp - path) : n - (size_t)(path - head);
    if ((n == 8 && memcmp(path, "/metrics", 8) == 0) ||
        (n > 8 && memcmp(path, "/metrics?", 9) == 0))
        answer(c, "200 OK", "", is_head);
    else
        answer(c, "404 Not Found", "", is_head);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    mconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    unsigned char *head;

    if (end.pos < 0)
        end = evbuffer_search(in, "\n\n", 2, NULL);
    if (end.pos < 0) {
        if (len >= MAX_REQUEST)
            answer(c, "431 Request Header Fields Too Large", "", 0);
        return;
    }
    head = evbuffer_pullup(in, end.pos);
    if (!head) {
        conn_free(c);
        return;
    }
    route(c, (const char *)head, (size_t)end.pos);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

static void accepted(int fd, void *arg)
{
    dp_metrics *m = arg;
    struct timeval tv = {TIMEOUT_S, 0};
    mconn *c;

    if (m->nconns >= MAX_CONNS || !(c = calloc(1, sizeof *c))) {
        close(fd);
        return;
    }
    c->m = m;
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    m->nconns++;
    c->bev = bufferevent_socket_new(m->p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        conn_free(c);
        return;
    }
    c->timer = evtimer_new(m->p->base, timeout_cb, c);
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    /* a head larger than the cap stops being read: no unbounded buffer */
    bufferevent_setwatermark(c->bev, EV_READ, 0, MAX_REQUEST);
    if (!c->timer || evtimer_add(c->timer, &tv) != 0 ||
        bufferevent_enable(c->bev, EV_READ) != 0)
        conn_free(c);
}

static int no_shortage(void *arg)
{
    (void)arg;
    return 0; /* nothing of ours to give up: the listener pauses */
}

int dp_metrics_open(dp_proxy *p, char *err, size_t errcap)
{
    dp_listen *l = (dp_listen *)&p->opt->metrics;
    struct sockaddr_storage ss;
    socklen_t len;
    pgs_listener_cbs cbs = {accepted, no_shortage, NULL};
    char lerr[200];
    dp_metrics *m;

    if (l->port < 0)
        return 0;
    if (!(m = calloc(1, sizeof *m))) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    m->p = p;
    cbs.arg = m;
    p->metrics = m;
    len = dp_listen_tcp_addr(l, &ss);
    if (len == 0) {
        snprintf(err, errcap, "--metrics tcp:%s: not an IP address", l->host);
        return -1;
    }
    m->l = pgs_listener_new(p->base, (struct sockaddr *)&ss, len, 16, &cbs, lerr, sizeof lerr);
    if (!m->l) {
        snprintf(err, errcap, "--metrics: cannot listen on %s port %d: %s", l->host, l->port,
                 lerr);
        return -1;
    }
    l->port = pgs_listener_port(m->l);
    return 0;
}

void dp_metrics_close(dp_proxy *p)
{
    dp_metrics *m = p->metrics;

    if (!m)
        return;
    pgs_listener_free(m->l);
    while (m->conns)
        conn_free(m->conns);
    free(m);
    p->metrics = NULL;
}
