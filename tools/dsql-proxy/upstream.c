/* dsql-proxy: one verify-full TLS connection to the upstream: the name
 * resolved without blocking the loop (evdns), each address tried in turn,
 * an SSLRequest (or direct TLS with ALPN "postgresql"), the certificate
 * checked against the signing host, which is also the SNI DSQL needs. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "proxy.h"
#include "tls.h"
#include "wire.h"

#define CONNECT_TIMEOUT_S 10

struct dp_connect {
    dp_proxy *p;
    dp_connect_done done;
    void *arg;
    struct evdns_getaddrinfo_request *dns;
    struct evutil_addrinfo *addrs, *next;
    struct event *kick, *deadline, *io;
    struct bufferevent *tls;
    int fd, starting, dns_err;
    char last_err[200];
};

static void connect_free(dp_connect *c)
{
    if (c->dns)
        evdns_getaddrinfo_cancel(c->dns); /* calls dns_cb with EVUTIL_EAI_CANCEL */
    if (c->addrs)
        evutil_freeaddrinfo(c->addrs);
    if (c->kick)
        event_free(c->kick);
    if (c->deadline)
        event_free(c->deadline);
    if (c->io)
        event_free(c->io);
    if (c->tls)
        dp_upstream_free(c->tls);
    else if (c->fd >= 0)
        close(c->fd);
    free(c);
}

void dp_upstream_free(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);

    bufferevent_free(bev); /* made without BEV_OPT_CLOSE_ON_FREE: we own both */
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
}

void dp_connect_abort(dp_connect *c)
{
    if (c)
        connect_free(c);
}

static void finish(dp_connect *c, struct bufferevent *bev, const char *err)
{
    dp_connect_done done = c->done;
    void *arg = c->arg;

    c->tls = NULL; /* handed over (or already freed); a raw c->fd is closed */
    connect_free(c);
    done(bev, err, arg);
}

static void fail(dp_connect *c, const char *fmt, const char *detail)
{
    char msg[900];

    snprintf(msg, sizeof msg, fmt, c->p->up.host, c->p->up.port, detail);
    if (c->tls) {
        dp_upstream_free(c->tls);
        c->tls = NULL;
        c->fd = -1;
    }
    finish(c, NULL, msg);
}

static void try_next(dp_connect *c);

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
    dp_connect *c = arg;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    char detail[600];
    unsigned long e;
    long vr;

    if (what & BEV_EVENT_CONNECTED) {
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        finish(c, bev, NULL);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    e = bufferevent_get_openssl_error(bev);
    if (vr != X509_V_OK)
        snprintf(detail, sizeof detail, "certificate verify failed: %s (the certificate "
                 "must be valid for %s)", X509_verify_cert_error_string(vr),
                 c->p->up.signing_host);
    else if (e)
        snprintf(detail, sizeof detail, "%s", ERR_reason_error_string(e)
                 ? ERR_reason_error_string(e) : "TLS error");
    else
        snprintf(detail, sizeof detail, "the server closed the connection");
    fail(c, "TLS handshake with %s port %s failed: %s", detail);
}

static void start_tls(dp_connect *c)
{
    static const unsigned char alpn[] = PGS_TLS_ALPN;
    SSL *ssl = SSL_new(c->p->up.ssl_ctx);

    if (!ssl || !SSL_set_tlsext_host_name(ssl, c->p->up.signing_host) ||
        !SSL_set1_host(ssl, c->p->up.signing_host) ||
        (c->p->opt->direct_tls && SSL_set_alpn_protos(ssl, alpn, sizeof alpn - 1) != 0)) {
        SSL_free(ssl);
        fail(c, "cannot connect to %s port %s: %s", "out of memory");
        return;
    }
    event_free(c->io);
    c->io = NULL;
    /* no BEV_OPT_CLOSE_ON_FREE: the relay (relay.c) takes the SSL and the
     * socket out of the bufferevent after the login; dp_upstream_free
     * frees all three (on failure ssl is freed, the socket is not) */
    c->tls = pgs_tls_bufferevent_opts(c->p->base, c->fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                      BEV_OPT_DEFER_CALLBACKS);
    if (!c->tls) {
        fail(c, "cannot connect to %s port %s: %s", "out of memory");
        return;
    }
    c->fd = -1; /* freed with c->tls */
    bufferevent_setcb(c->tls, NULL, NULL, tls_event_cb, c);
    if (bufferevent_enable(c->tls, EV_READ | EV_WRITE) != 0)
        fail(c, "cannot connect to %s port %s: %s", "out of memory");
}

/* The answer to our SSLRequest: 'S' and TLS, anything else is refused. */
static void ssl_answer_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_connect *c = arg;
    char answer;
    ssize_t n;

    (void)what;
    n = recv(fd, &answer, 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n == 1 && answer == 'S') {
        start_tls(c);
        return;
    }
    fail(c, "%s port %s did not accept TLS: %s",
         n == 1 ? "it answered the SSLRequest with 'N'" : "it closed the connection");
}

static int watch(dp_connect *c, short what, event_callback_fn cb)
{
    if (c->io)
        event_free(c->io);
    c->io = event_new(c->p->base, c->fd, what, cb, c);
    return c->io && event_add(c->io, NULL) == 0 ? 0 : -1;
}

static void connected_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_connect *c = arg;
    unsigned char req[8];
    int soerr = 0;
    socklen_t len = sizeof soerr;

    (void)what;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr != 0) {
        snprintf(c->last_err, sizeof c->last_err, "%s", strerror(soerr));
        close(c->fd);
        c->fd = -1;
        try_next(c);
        return;
    }
    if (c->p->opt->direct_tls) {
        start_tls(c);
        return;
    }
    pgs_put_be32(req, 8);
    pgs_put_be32(req + 4, PGS_SSL_REQUEST);
    if (send(c->fd, req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req ||
        watch(c, EV_READ | EV_PERSIST, ssl_answer_cb) != 0)
        fail(c, "cannot connect to %s port %s: %s", "the SSLRequest could not be sent");
}

/* Out of descriptors, a login closes an idle pre-login client to make
 * room, as an arrival does (safe here: try_next runs in this connection's
 * own callbacks, never inside another session's). */
static int upstream_socket(dp_proxy *p, int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && dp_session_evict_one(p))
        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd;
}

static void try_next(dp_connect *c)
{
    int one = 1;

    while (c->next) {
        struct evutil_addrinfo *a = c->next;
        c->next = a->ai_next;
        c->fd = upstream_socket(c->p, a->ai_family);
        if (c->fd < 0) {
            snprintf(c->last_err, sizeof c->last_err, "%s", strerror(errno));
            continue;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            if (watch(c, EV_WRITE, connected_cb) != 0)
                fail(c, "cannot connect to %s port %s: %s", "out of memory");
            return;
        }
        snprintf(c->last_err, sizeof c->last_err, "%s", strerror(errno));
        close(c->fd);
        c->fd = -1;
    }
    fail(c, "cannot connect to %s port %s: %s", c->last_err[0] ? c->last_err : "no address");
}

static void resolved(dp_connect *c)
{
    if (c->dns_err) {
        fail(c, "cannot resolve %s (port %s): %s", evutil_gai_strerror(c->dns_err));
        return;
    }
    c->next = c->addrs;
    try_next(c);
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    dp_connect *c = arg;

    if (result == EVUTIL_EAI_CANCEL)
        return; /* connect_free is under way */
    c->dns = NULL;
    c->addrs = res;
    c->dns_err = result;
    if (c->starting)
        event_active(c->kick, 0, 0); /* never call done before start returns */
    else
        resolved(c);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    resolved(arg);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_connect *c = arg;

    (void)fd;
    (void)what;
    fail(c, "cannot connect to %s port %s: %s", "timed out");
}

dp_connect *dp_connect_start(dp_proxy *p, dp_connect_done done, void *arg)
{
    dp_connect *c = calloc(1, sizeof *c);
    struct evutil_addrinfo hints;
    struct timeval tv = {CONNECT_TIMEOUT_S, 0};

    if (!c)
        return NULL;
    c->p = p;
    c->done = done;
    c->arg = arg;
    c->fd = -1;
    c->kick = event_new(p->base, -1, 0, kick_cb, c);
    c->deadline = evtimer_new(p->base, deadline_cb, c);
    if (!c->kick || !c->deadline || evtimer_add(c->deadline, &tv) != 0) {
        connect_free(c);
        return NULL;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    c->starting = 1;
    c->dns = evdns_getaddrinfo(p->dns, p->up.host, p->up.port, &hints, dns_cb, c);
    c->starting = 0;
    return c;
}

/* --sslrootcert: the message says why a file cannot serve (missing,
 * unreadable, a directory, or no PEM certificate in it). */
static int load_roots(SSL_CTX *ctx, const char *path, char *err, size_t errcap)
{
    struct stat st;
    FILE *f = fopen(path, "re");
    int is_dir = f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode);

    if (!f || is_dir) {
        snprintf(err, errcap, "cannot read the CA certificates in %s (sslrootcert): %s", path,
                 is_dir ? "it is a directory" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        ERR_clear_error();
        snprintf(err, errcap, "no CA certificate in %s (sslrootcert): expected PEM "
                 "certificates (-----BEGIN CERTIFICATE-----)", path);
        return -1;
    }
    return 0;
}

int dp_upstream_init(dp_upstream *up, const char *host, const char *hostaddr,
                     const char *signing_host, const char *region, unsigned port,
                     const char *rootcert, int direct, char *err, size_t errcap)
{
    SSL_CTX *ctx;

    (void)direct;
    snprintf(up->host, sizeof up->host, "%s", hostaddr && *hostaddr ? hostaddr : host);
    snprintf(up->signing_host, sizeof up->signing_host, "%s", signing_host);
    snprintf(up->region, sizeof up->region, "%s", region ? region : "");
    snprintf(up->port, sizeof up->port, "%u", port);
    ctx = pgs_tls_ctx_new(0);
    if (!ctx) {
        snprintf(err, errcap, "cannot set up TLS");
        return -1;
    }
    /* verify-full: a token is a bearer credential, sent only to the host
     * it is signed for */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (rootcert && *rootcert && strcmp(rootcert, "system") != 0) {
        if (load_roots(ctx, rootcert, err, errcap) != 0) {
            SSL_CTX_free(ctx);
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errcap, "cannot load the system's CA certificates");
        SSL_CTX_free(ctx);
        return -1;
    }
    up->ssl_ctx = ctx;
    return 0;
}
