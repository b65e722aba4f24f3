/* dsql-local: the front door. Before TLS: SSLRequest, GSSENCRequest,
 * CancelRequest, direct TLS, refused plaintext startups. After TLS: the
 * startup packet, the SNI check, the cleartext password and the token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "escape.h"
#include "gateway.h"
#include "startup.h"

/* Reads toward c->pre until `need` bytes are there: 1 done, 0 wait, -1 gone. */
static int raw_fill(conn *c, size_t need)
{
    while (c->pre_have < need) {
        ssize_t n = recv(c->fd, c->pre + c->pre_have, need - c->pre_have, 0);
        if (n > 0)
            c->pre_have += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return -1;
    }
    return 1;
}

static void raw_refuse(conn *c, const char *sqlstate, const char *msg)
{
    unsigned char buf[512];
    size_t n = pgs_error_response(buf, sizeof buf, sqlstate, msg);
    ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);

    (void)w; /* best effort: the client may already be gone */
    c->gw->n_refused++;
    pgs_log_limited(&c->gw->log_preauth, "conn %lu: refused before TLS: %s", c->id, msg);
    conn_free(c);
}

static void raw_discard(conn *c)
{
    unsigned char scratch[4096];

    while (c->discard_left > 0) {
        size_t want = c->discard_left < sizeof scratch ? c->discard_left : sizeof scratch;
        ssize_t n = recv(c->fd, scratch, want, 0);
        if (n > 0) {
            c->discard_left -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else if (!(n < 0 && errno == EINTR)) {
            conn_free(c);
            return;
        }
    }
    raw_refuse(c, "28000",
               "unable to accept connection, TLS is required (use sslmode=require or stronger)");
}

/* Closes c, then relays its CancelRequest pkt: c's descriptor is free
 * again for the connection to PostgreSQL when every other one is in use. */
static void forward_cancel(conn *c, const unsigned char *pkt)
{
    unsigned char copy[PGS_CANCEL_LEN];
    struct dl_gateway *gw = c->gw;

    memcpy(copy, pkt, sizeof copy);
    conn_free(c);
    pgs_cancel_forward(&gw->cancels, gw->pg_socket, copy);
    OPENSSL_cleanse(copy, sizeof copy);
}

void frontdoor_raw_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    unsigned char first;
    int r;

    (void)fd;
    (void)what;
    if (c->state == S_DISCARD) {
        raw_discard(c);
        return;
    }
    if (c->pre_have == 0) {
        ssize_t n = recv(c->fd, &first, 1, MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            conn_free(c);
            return;
        }
        pgs_preauth_talking(&c->gw->preauth, &c->preauth); /* not an idle one */
        if (first == 0x16) { /* a TLS ClientHello: direct TLS */
            if (conn_start_tls(c) != 0)
                conn_free(c);
            return;
        }
    }
    r = raw_fill(c, 8);
    if (r <= 0) {
        if (r < 0)
            conn_free(c);
        return;
    }
    switch (pgs_packet_kind(c->pre)) {
    case PGS_PACKET_SSL:
        if (send(c->fd, "S", 1, MSG_NOSIGNAL) != 1 || conn_start_tls(c) != 0)
            conn_free(c);
        return;
    case PGS_PACKET_GSSENC:
        if (send(c->fd, "N", 1, MSG_NOSIGNAL) != 1) {
            conn_free(c);
            return;
        }
        c->pre_have = 0; /* an SSLRequest or a startup packet follows */
        return;
    case PGS_PACKET_CANCEL:
        r = raw_fill(c, PGS_CANCEL_LEN);
        if (r == 0)
            return;
        if (r > 0)
            forward_cancel(c, c->pre);
        else
            conn_free(c);
        return;
    case PGS_PACKET_BAD_LENGTH:
        raw_refuse(c, "08P01", "invalid startup packet length");
        return;
    case PGS_PACKET_STARTUP:
        if (pgs_be32(c->pre) == 8)
            break; /* no parameters, not even the end of them */
        /* a plaintext login: read it, then refuse */
        c->state = S_DISCARD;
        c->discard_left = pgs_be32(c->pre) - 8;
        raw_discard(c);
        return;
    case PGS_PACKET_UNSUPPORTED:
        break;
    }
    raw_refuse(c, "08P01", "unsupported frontend protocol or request code");
}

static int send_auth_request(conn *c)
{
    static const unsigned char cleartext[9] = {'R', 0, 0, 0, 8, 0, 0, 0, 3};
    return bufferevent_write(c->client, cleartext, sizeof cleartext);
}

static int known_host(const dl_config *cfg, const char *sni)
{
    int i;
    for (i = 0; i < cfg->nhosts; i++)
        if (strcasecmp(cfg->hosts[i], sni) == 0)
            return 1;
    return 0;
}

static int on_startup(conn *c, struct evbuffer *in)
{
    unsigned char hdr[8];
    uint32_t len;
    const char *user, *sni;
    char why[300];
    pgs_packet kind;
    pgs_startup_verdict v;
    SSL *ssl = bufferevent_openssl_get_ssl(c->client);

    if (evbuffer_copyout(in, hdr, 8) < 8)
        return 0;
    kind = pgs_packet_kind(hdr);
    len = pgs_be32(hdr);
    if (kind == PGS_PACKET_BAD_LENGTH) {
        conn_fail(c, "08P01", "invalid startup packet length");
        return -1;
    }
    if (evbuffer_get_length(in) < len)
        return 0;
    if (kind == PGS_PACKET_CANCEL) {
        unsigned char pkt[PGS_CANCEL_LEN];
        evbuffer_remove(in, pkt, sizeof pkt);
        forward_cancel(c, pkt);
        return -1;
    }
    if (kind != PGS_PACKET_STARTUP) {
        conn_fail(c, "08P01", "unsupported frontend protocol or request code");
        return -1;
    }
    c->startup = malloc(len);
    if (!c->startup) {
        conn_fail(c, "53200", "out of memory");
        return -1;
    }
    c->startup_len = len;
    evbuffer_remove(in, c->startup, len);
    v = pgs_startup_check(c->startup, len, &user, why, sizeof why);
    if (v == PGS_STARTUP_NO_MEMORY) {
        conn_fail(c, "53200", "out of memory");
        return -1;
    }
    if (v != PGS_STARTUP_OK) {
        conn_fail(c, v == PGS_STARTUP_NO_USER ? "28000" : "08P01", why);
        return -1;
    }
    snprintf(c->user, sizeof c->user, "%.63s", user);
    sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    if (!sni || !*sni) {
        conn_fail(c, "28000", "unable to accept connection, sni was not received");
        return -1;
    }
    if (!known_host(c->gw->cfg, sni)) {
        char msg[400];
        snprintf(msg, sizeof msg, "unable to accept connection, no cluster is named %.253s", sni);
        conn_fail(c, "28000", msg);
        return -1;
    }
    c->state = S_PASSWORD;
    if (send_auth_request(c) != 0) {
        conn_fail(c, "53200", "out of memory");
        return -1;
    }
    return 1;
}

static const char *expected_region(const dl_config *cfg, const char *sni,
                                   char *buf, size_t cap)
{
    if (dsql_region_from_hostname(sni, buf, cap, NULL) == DSQL_OK)
        return buf;
    return cfg->region;
}

static int on_password(conn *c, struct evbuffer *in)
{
    pgs_msg m;
    uint32_t len;
    char *token, reason[400], msg[600], region[DSQL_REGION_MAX + 1];
    SSL *ssl = bufferevent_openssl_get_ssl(c->client);
    dl_verify_in vin;
    int rc = pgs_msg_peek(in, &m);

    if (rc == PGS_MSG_SHORT)
        return 0;
    len = m.len;
    if (m.type != 'p') {
        conn_fail(c, "08P01", "expected a password response");
        return -1;
    }
    if (len < 5) { /* not even the password's NUL */
        conn_fail(c, "08P01", "invalid password packet length");
        return -1;
    }
    if (len - 4 > PGS_MAX_PACKET) {
        snprintf(msg, sizeof msg, "IAM authentication failed for user \"%s\": password packet is too large", c->user);
        conn_fail(c, "28P01", msg);
        return -1;
    }
    if (rc != PGS_MSG_WHOLE)
        return 0;
    evbuffer_drain(in, 5);
    token = malloc(len - 4);
    if (!token) {
        conn_fail(c, "53200", "out of memory");
        return -1;
    }
    evbuffer_remove(in, token, len - 4);
    memset(&vin, 0, sizeof vin);
    vin.token = token;
    vin.token_len = strnlen(token, len - 4);
    vin.sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    vin.user = c->user;
    vin.region = expected_region(c->gw->cfg, vin.sni, region, sizeof region);
    vin.keys_file = c->gw->keys_file;
    vin.now = (int64_t)time(NULL);
    vin.clock_skew = c->gw->cfg->clock_skew;
    /* a real login now: not evictable, and may evict an idle client when
     * the key table cannot be opened for want of a descriptor */
    pgs_preauth_remove(&c->gw->preauth, &c->preauth);
    vin.make_room = conn_make_room;
    vin.room_arg = c->gw;
    rc = dl_verify_token(&vin, reason, sizeof reason);
    OPENSSL_cleanse(token, len - 4);
    free(token);
    if (rc != 0) {
        snprintf(msg, sizeof msg, "IAM authentication failed for user \"%s\": %s", c->user, reason);
        conn_fail(c, "28P01", msg);
        return -1;
    }
    {
        char user[300];
        pgs_escape(user, sizeof user, c->user, strlen(c->user), PGS_ESC_QUOTED);
        pgs_log("conn %lu: user \"%s\" authenticated for %s", c->id, user, vin.sni);
    }
    conn_start_backend(c);
    return -1;
}

void frontdoor_read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    int r = 1;

    /* after the password, pipelined bytes wait in the input buffer for the relay */
    while (r > 0) {
        if (c->state == S_STARTUP)
            r = on_startup(c, in);
        else if (c->state == S_PASSWORD)
            r = on_password(c, in);
        else
            r = 0;
    }
}
