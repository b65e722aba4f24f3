/* dsql-proxy: one client. Its SSLRequest and GSSENCRequest get 'N' (the
 * proxy is local; TLS is upstream), its startup packet is checked, then
 * an upstream connection logs in with the client's startup packet and a
 * fresh token as the password. Everything the upstream says from there
 * on reaches the client, except its cancel key, which is swapped for one
 * of ours. After ReadyForQuery, relay.c takes both connections: bytes
 * both ways, untouched. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "escape.h"
#include "session.h"
#include "startup.h"
#include "wire.h"

void dp_session_free(dp_session *s)
{
    dp_proxy *p = s->p;

    if (s->prev)
        s->prev->next = s->next;
    else
        p->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    p->nsessions--;
    if (s->relaying)
        p->stats.relaying--;
    pgs_preauth_remove(&p->preauth, &s->preauth);
    dp_connect_abort(s->connecting);
    dp_token_cancel(s->token_job);
    if (s->auth_timer)
        event_free(s->auth_timer);
    if (s->close_timer)
        event_free(s->close_timer);
    if (s->life_timer)
        event_free(s->life_timer);
    if (s->relay)
        dp_relay_free(s->relay);
    if (s->client)
        bufferevent_free(s->client);
    if (s->client_fd >= 0)
        close(s->client_fd);
    if (s->upstream)
        dp_upstream_free(s->upstream);
    free(s->startup);
    if (s->scram) {
        pgs_scram_clear(s->scram);
        free(s->scram);
    }
    OPENSSL_cleanse(s->up_key, sizeof s->up_key);
    OPENSSL_cleanse(s->key, sizeof s->key);
    free(s);
    if (p->draining && p->nsessions == 0)
        event_base_loopbreak(p->base);
}

static void closing_done_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    dp_session_free(arg);
}

static void closing_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    dp_session_free(arg);
}

static void close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dp_session_free(arg);
}

int dp_session_linger(dp_session *s)
{
    struct timeval five = {5, 0};

    s->state = DP_CLOSING;
    if (s->life_timer)
        evtimer_del(s->life_timer);
    if (!s->close_timer)
        s->close_timer = evtimer_new(s->p->base, close_timeout_cb, s);
    return s->close_timer && evtimer_add(s->close_timer, &five) == 0 ? 0 : -1;
}

/* Lets what is queued for the client go out (at most 5 s), then closes
 * both sides. */
static void close_after_flush(dp_session *s)
{
    dp_connect_abort(s->connecting);
    s->connecting = NULL;
    dp_token_cancel(s->token_job);
    s->token_job = NULL;
    if (s->relay) {
        dp_relay_close_client(s->relay);
        return;
    }
    if (s->upstream) {
        dp_upstream_free(s->upstream);
        s->upstream = NULL;
    }
    if (!s->client || evbuffer_get_length(bufferevent_get_output(s->client)) == 0) {
        dp_session_free(s);
        return;
    }
    bufferevent_disable(s->client, EV_READ);
    bufferevent_setcb(s->client, NULL, closing_done_cb, closing_event_cb, s);
    bufferevent_setwatermark(s->client, EV_WRITE, 0, 0);
    if (dp_session_linger(s) != 0)
        dp_session_free(s);
}

void dp_session_close_client(dp_session *s)
{
    close_after_flush(s);
}

/* A FATAL ErrorResponse the client can show, then close. */
void dp_session_refuse(dp_session *s, dp_fail why, const char *sqlstate, const char *msg)
{
    unsigned char buf[1200];
    size_t n = pgs_error_response(buf, sizeof buf, sqlstate, msg);

    s->p->stats.failures[why]++;
    pgs_log_limited(&s->p->log_rl, "conn %lu: refused (%s): %s", s->id, sqlstate, msg);
    if (s->relay)
        dp_relay_say(s->relay, buf, n);
    else if (s->client)
        bufferevent_write(s->client, buf, n);
    close_after_flush(s);
}

static void auth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_session *s = arg;

    (void)fd;
    (void)what;
    if (s->state == DP_PRE)
        dp_session_refuse(s, DP_FAIL_TIMEOUT, "08006",
                          "dsql-proxy: the startup packet did not arrive in time");
    else
        dp_session_refuse(s, DP_FAIL_TIMEOUT, "08006", "dsql-proxy: login did not finish in time");
}

/* ---- the relay begins ---- */

static void start_relay(dp_session *s)
{
    s->state = DP_RELAY;
    s->relaying = 1;
    s->p->stats.logins++;
    s->p->stats.relaying++;
    if (s->auth_timer) {
        event_free(s->auth_timer);
        s->auth_timer = NULL;
    }
    free(s->startup);
    s->startup = NULL;
    if (dp_lifetime_start(s) != 0 || dp_relay_start(s) != 0) {
        pgs_log("conn %lu: out of memory when the relay began", s->id);
        dp_session_free(s);
    }
}

/* ---- login upstream ---- */

/* The output buffer lets go of the token (written, or the connection
 * freed): wiped, so no copy of it stays behind in freed memory. */
static void wipe_token(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    dsql_token_free((char *)data);
}

/* The worker made the token (or could not): it is the password. */
static void token_ready(char *token, size_t len, const char *err, void *arg)
{
    dp_session *s = arg;
    unsigned char hdr[5];

    s->token_job = NULL;
    if (token)
        s->p->stats.tokens++;
    if (!token) {
        char msg[800];
        /* the library's messages name what is missing, never a secret */
        snprintf(msg, sizeof msg, "dsql-proxy: no token for user \"%s\": %s", s->user_shown,
                 err);
        dp_session_refuse(s, DP_FAIL_CREDENTIALS, "28000", msg);
        return;
    }
    hdr[0] = 'p';
    pgs_put_be32(hdr + 1, (uint32_t)(len + 5));
    /* sent from where it is, not copied into the buffer's own memory */
    if (bufferevent_write(s->upstream, hdr, 5) != 0 ||
        evbuffer_add_reference(bufferevent_get_output(s->upstream), token, len + 1, wipe_token,
                               NULL) != 0) {
        dsql_token_free(token);
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
    }
}

/* Made on the worker thread (tokens.c): a credentials fetch it needs
 * must not stall the sessions being relayed. */
static int request_token(dp_session *s)
{
    s->token_job = dp_token_request(s->p, s->user, token_ready, s);
    if (!s->token_job) {
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
        return -1;
    }
    return 0;
}

/* Our own cancel key for the client; the upstream's is kept for cancel.c. */
static int swap_key(dp_session *s, struct evbuffer *in, uint32_t len)
{
    unsigned char msg[13];

    if (len != 12) { /* a longer key (protocol 3.2): pass it on, no cancel */
        s->can_cancel = 0;
        return evbuffer_remove_buffer(in, bufferevent_get_output(s->client), len + 1) ==
                       (int)(len + 1) ? 0 : -1;
    }
    evbuffer_drain(in, 5);
    evbuffer_remove(in, s->up_key, 8);
    s->can_cancel = 1;
    msg[0] = 'K';
    pgs_put_be32(msg + 1, 12);
    memcpy(msg + 5, s->key, 8);
    return bufferevent_write(s->client, msg, sizeof msg);
}

static void upstream_refused(dp_session *s, struct evbuffer *in, uint32_t len)
{
    char text[300];
    unsigned char *m = evbuffer_pullup(in, len + 1);
    const char *said = m ? pgs_error_field(m + 5, len - 4, 'M') : NULL;

    /* the upstream's own ErrorResponse (its SQLSTATE and message) goes to
     * the client as it is; the log gets the message, escaped */
    text[0] = '\0';
    if (said)
        pgs_escape(text, sizeof text, said, strlen(said), 0);
    s->p->stats.failures[DP_FAIL_REFUSED]++;
    pgs_log_limited(&s->p->log_rl, "conn %lu: upstream refused user \"%s\": %s", s->id,
                    s->user_shown, text);
    evbuffer_remove_buffer(in, bufferevent_get_output(s->client), len + 1);
    close_after_flush(s);
}

/* One upstream message during login: 1 next, 0 need more, -1 done with s. */
static int login_step(dp_session *s, struct evbuffer *in)
{
    unsigned char hdr[9];
    uint32_t len, code;
    pgs_msg m;
    int r = pgs_msg_peek(in, &m);

    if (r == PGS_MSG_SHORT)
        return 0;
    len = m.len;
    if (r == PGS_MSG_BROKEN || len > PGS_MAX_PACKET) {
        dp_session_refuse(s, DP_FAIL_UPSTREAM, "08P01",
                          "dsql-proxy: the upstream sent an invalid message during login");
        return -1;
    }
    if (r != PGS_MSG_WHOLE)
        return 0;
    switch (m.type) {
    case 'R':
        if (len < 8 || evbuffer_copyout(in, hdr, 9) < 9) {
            dp_session_refuse(s, DP_FAIL_UPSTREAM, "08P01",
                              "dsql-proxy: the upstream sent an invalid authentication request");
            return -1;
        }
        code = pgs_be32(hdr + 5);
        if (code == 3) { /* AuthenticationCleartextPassword: the token */
            evbuffer_drain(in, len + 1);
            return request_token(s) == 0 ? 1 : -1;
        }
        if (code != 0) {
            dp_session_refuse(s, DP_FAIL_UPSTREAM, "28000",
                              "dsql-proxy: the upstream asked for an authentication method "
                              "other than a password (IAM token)");
            return -1;
        }
        break; /* AuthenticationOk: the client sees it */
    case 'E':
        upstream_refused(s, in, len);
        return -1;
    case 'K':
        if (swap_key(s, in, len) != 0) {
            dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
            return -1;
        }
        return 1;
    case 'Z':
        if (evbuffer_remove_buffer(in, bufferevent_get_output(s->client), len + 1) !=
            (int)(len + 1)) {
            dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
            return -1;
        }
        start_relay(s);
        return -1;
    default: /* ParameterStatus, NoticeResponse, NegotiateProtocolVersion */
        break;
    }
    if (evbuffer_remove_buffer(in, bufferevent_get_output(s->client), len + 1) !=
        (int)(len + 1)) {
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
        return -1;
    }
    return 1;
}

static void login_read_cb(struct bufferevent *bev, void *arg)
{
    dp_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (login_step(s, in) > 0)
        ;
}

static void login_event_cb(struct bufferevent *bev, short what, void *arg)
{
    dp_session *s = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        dp_session_refuse(s, DP_FAIL_UPSTREAM, "08006",
                          "dsql-proxy: the upstream closed the connection during login");
}

static void upstream_ready(struct bufferevent *bev, const char *err, void *arg)
{
    dp_session *s = arg;
    char msg[1000];

    s->connecting = NULL;
    if (!bev) {
        snprintf(msg, sizeof msg, "dsql-proxy: %s", err);
        dp_session_refuse(s, DP_FAIL_UNREACHABLE, "08006", msg);
        return;
    }
    s->upstream = bev;
    s->state = DP_LOGIN;
    bufferevent_setcb(bev, login_read_cb, NULL, login_event_cb, s);
    bufferevent_setwatermark(bev, EV_READ, 0, PGS_MAX_PACKET + 64);
    if (bufferevent_write(bev, s->startup, s->startup_len) != 0 ||
        bufferevent_enable(bev, EV_READ | EV_WRITE) != 0)
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
}

/* ---- the client's first packets ---- */

static int user_allowed(const dp_options *o, const char *user)
{
    int i;

    if (o->nallow_user == 0)
        return 1;
    for (i = 0; i < o->nallow_user; i++)
        if (strcmp(o->allow_user[i], user) == 0)
            return 1;
    return 0;
}

static int check_startup(dp_session *s)
{
    const char *user;
    char msg[400];
    pgs_startup_verdict v = pgs_startup_check(s->startup, s->startup_len, &user, msg,
                                              sizeof msg);

    if (v == PGS_STARTUP_NO_MEMORY) {
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
        return -1;
    }
    if (v != PGS_STARTUP_OK) {
        dp_session_refuse(s, v == PGS_STARTUP_NO_USER ? DP_FAIL_USER : DP_FAIL_PROTOCOL,
                          v == PGS_STARTUP_NO_USER ? "28000" : "08P01", msg);
        return -1;
    }
    snprintf(s->user, sizeof s->user, "%s", user);
    pgs_escape(s->user_shown, sizeof s->user_shown, user, strlen(user), PGS_ESC_QUOTED);
    if (strlen(user) >= sizeof s->user) {
        dp_session_refuse(s, DP_FAIL_USER, "28000", "dsql-proxy: the user name is too long");
        return -1;
    }
    return 0;
}

/* After the local password, if one is asked: the allow-list answer must
 * not tell a client without the password which user names exist. The cap
 * counts sessions past this point only (those still in pre-auth are
 * capped by the pre-auth limit), so silent connections cannot lock out
 * logins. */
void dp_session_begin_login(dp_session *s)
{
    dp_proxy *p = s->p;

    if (!user_allowed(p->opt, s->user)) {
        char msg[400];
        snprintf(msg, sizeof msg, "dsql-proxy: user \"%s\" is not allowed through this proxy "
                 "(--allow-user)", s->user_shown);
        dp_session_refuse(s, DP_FAIL_USER, "28000", msg);
        return;
    }
    pgs_preauth_remove(&p->preauth, &s->preauth); /* a real client: not evictable */
    if (p->opt->max_connections > 0 &&
        p->nsessions - p->preauth.count > (size_t)p->opt->max_connections) {
        dp_session_refuse(s, DP_FAIL_CAP, "53300",
                          "dsql-proxy: too many connections (--max-connections)");
        return;
    }
    s->state = DP_CONNECTING;
    dp_lifetime_born(s); /* before the upstream's clock starts */
    bufferevent_disable(s->client, EV_READ); /* pipelined bytes wait for the relay */
    s->connecting = dp_connect_start(s->p, upstream_ready, s);
    if (!s->connecting)
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
}

/* 1 next packet, 0 need more, -1 done with s. */
static int pre_step(dp_session *s, struct evbuffer *in)
{
    unsigned char hdr[8], pkt[PGS_CANCEL_LEN];
    uint32_t len;
    pgs_packet kind;

    if (evbuffer_copyout(in, hdr, 8) < 8)
        return 0;
    kind = pgs_packet_kind(hdr);
    len = pgs_be32(hdr);
    if (kind == PGS_PACKET_BAD_LENGTH) {
        dp_session_refuse(s, DP_FAIL_PROTOCOL, "08P01", "invalid startup packet length");
        return -1;
    }
    if (kind == PGS_PACKET_SSL || kind == PGS_PACKET_GSSENC) {
        unsigned bit = kind == PGS_PACKET_SSL ? 1u : 2u;
        /* one of each, as PostgreSQL: a client repeating them and never
         * reading the answers would grow our output without bound */
        if (s->negotiated & bit) {
            dp_session_refuse(s, DP_FAIL_PROTOCOL, "08P01",
                              kind == PGS_PACKET_SSL ? "dsql-proxy: a second SSLRequest"
                                                     : "dsql-proxy: a second GSSENCRequest");
            return -1;
        }
        s->negotiated |= bit;
        /* the proxy is a local endpoint: no TLS or GSS to it; libpq then
         * goes on in plaintext over the same connection */
        evbuffer_drain(in, 8);
        return bufferevent_write(s->client, "N", 1) == 0 ? 1 : -1;
    }
    if (evbuffer_get_length(in) < len)
        return 0;
    if (kind == PGS_PACKET_CANCEL) {
        evbuffer_remove(in, pkt, sizeof pkt);
        dp_cancel_route(s->p, pkt);
        dp_session_free(s); /* the protocol gives a cancel no answer */
        return -1;
    }
    if (kind != PGS_PACKET_STARTUP) {
        dp_session_refuse(s, DP_FAIL_PROTOCOL, "08P01",
                          "unsupported frontend protocol or request code");
        return -1;
    }
    s->startup = malloc(len);
    if (!s->startup) {
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
        return -1;
    }
    s->startup_len = len;
    evbuffer_remove(in, s->startup, len);
    if (check_startup(s) != 0)
        return -1;
    if (s->is_tcp && s->p->npasswords > 0) {
        if (dp_clientauth_start(s) != 0) {
            dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
            return -1;
        }
        return 1;
    }
    dp_session_begin_login(s);
    return -1;
}

static void pre_read_cb(struct bufferevent *bev, void *arg)
{
    dp_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    int r = 1;

    pgs_preauth_talking(&s->p->preauth, &s->preauth);
    while (r > 0) {
        if (s->state == DP_PRE)
            r = pre_step(s, in);
        else if (s->state == DP_SASL_INIT || s->state == DP_SASL_FINAL)
            r = dp_clientauth_step(s, in);
        else
            r = 0;
    }
}

static void pre_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        dp_session_free(arg);
}

/* ---- arrival ---- */

static void evict_cb(pgs_preauth_node *n, void *arg)
{
    dp_proxy *p = arg;
    dp_session *s = (dp_session *)(void *)((char *)n - offsetof(dp_session, preauth));

    pgs_log_limited(&p->log_rl, "conn %lu: closed before login to make room", s->id);
    dp_session_free(s);
}

void dp_session_init_limits(dp_proxy *p, size_t cap)
{
    pgs_preauth_init(&p->preauth, cap, evict_cb, p);
}

int dp_session_evict_one(dp_proxy *p)
{
    return pgs_preauth_evict_one(&p->preauth);
}

static int refuse_peer(dp_proxy *p, int fd)
{
    uid_t uid = 0;
    unsigned char buf[256];
    size_t n;
    ssize_t w;

    if (dp_peer_allowed(p->opt, fd, &uid))
        return 0;
    n = pgs_error_response(buf, sizeof buf, "28000",
                           "dsql-proxy: this user may not connect (only the proxy's own uid "
                           "and --allow-uid)");
    w = send(fd, buf, n, MSG_NOSIGNAL);
    (void)w;
    p->stats.failures[DP_FAIL_PEER]++;
    pgs_log_limited(&p->log_rl, "refused a Unix-socket client of uid %lu (not allowed)",
                    (unsigned long)uid);
    close(fd);
    return -1;
}

void dp_session_accept(dp_proxy *p, int fd, int is_unix)
{
    dp_session *s;
    struct timeval auth = {p->opt->auth_timeout, 0};

    p->stats.connections++;
    if (p->draining || (is_unix && refuse_peer(p, fd) != 0)) {
        if (p->draining)
            close(fd);
        return;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->p = p;
    s->id = ++p->n_accepted;
    s->next = p->sessions;
    if (p->sessions)
        p->sessions->prev = s;
    p->sessions = s;
    p->nsessions++;
    s->pid = (uint32_t)s->id;
    s->is_tcp = !is_unix;
    pgs_preauth_add(&p->preauth, &s->preauth);
    s->client_fd = fd; /* the session's: the relay takes it from the bufferevent */
    s->client = bufferevent_socket_new(p->base, fd, BEV_OPT_DEFER_CALLBACKS);
    if (!s->client) {
        dp_session_free(s);
        return;
    }
    pgs_put_be32(s->key, s->pid);
    s->auth_timer = evtimer_new(p->base, auth_timeout_cb, s);
    if (RAND_bytes(s->key + 4, 4) != 1 || !s->auth_timer ||
        evtimer_add(s->auth_timer, &auth) != 0) {
        dp_session_free(s);
        return;
    }
    bufferevent_setcb(s->client, pre_read_cb, NULL, pre_event_cb, s);
    bufferevent_setwatermark(s->client, EV_READ, 0, PGS_MAX_PACKET + 64);
    if (bufferevent_enable(s->client, EV_READ | EV_WRITE) != 0)
        dp_session_free(s);
}

void dp_session_close_all(dp_proxy *p)
{
    while (p->sessions)
        dp_session_free(p->sessions);
}
