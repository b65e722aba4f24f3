/* dsql-proxy: a client connection and its upstream session. */
#ifndef DSQL_PROXY_SESSION_H
#define DSQL_PROXY_SESSION_H

#include "frames.h"
#include "proxy.h"
#include "scram.h"

enum dp_state {
    DP_PRE,        /* SSLRequest, GSSENCRequest, CancelRequest, startup */
    DP_SASL_INIT,  /* local password (TCP): AuthenticationSASL sent */
    DP_SASL_FINAL, /* server-first-message sent */
    DP_CONNECTING, /* TLS connection to the upstream under way */
    DP_LOGIN,      /* startup sent upstream, answering its password request */
    DP_RELAY,      /* bytes both ways (relay.c) */
    DP_CLOSING     /* flushing a last message */
};

typedef struct dp_relay dp_relay;

typedef struct dp_session {
    dp_proxy *p;
    struct dp_session *prev, *next;
    pgs_preauth_node preauth;  /* listed until the startup packet is in */
    enum dp_state state;
    unsigned long id;
    struct bufferevent *client, *upstream; /* until the relay takes over */
    int client_fd;             /* the session's (client has no CLOSE_ON_FREE) */
    dp_relay *relay;           /* after login: both connections, off bufferevents */
    dp_connect *connecting;
    dp_token_job *token_job;   /* a token being made for the login */
    struct event *auth_timer, *close_timer;
    unsigned char *startup;
    size_t startup_len;
    char user[64];             /* PostgreSQL's NAMEDATALEN - 1 */
    char user_shown[200];      /* escaped, for messages and the log */
    uint32_t pid;              /* the client's BackendKeyData: pid and */
    unsigned char key[8];      /* secret (key[4..8] random) */
    unsigned char up_key[8];   /* the upstream's pid and secret */
    int can_cancel;
    int relaying;              /* counted in stats.relaying */
    int is_tcp;
    unsigned negotiated;       /* bits: SSLRequest, GSSENCRequest answered */
    pgs_scram *scram;          /* local password check, TCP only */
    /* lifetime.c: the connection-duration limit */
    int64_t born_ms;           /* the upstream connect began (monotonic) */
    struct event *life_timer;  /* opens the closing window */
    int expiring;              /* in the window: close when idle */
    pgs_frames asked, answered; /* client -> upstream, upstream -> client */
} dp_session;

void dp_session_init_limits(dp_proxy *p, size_t cap);
void dp_session_refuse(dp_session *s, dp_fail why, const char *sqlstate, const char *msg);
void dp_session_begin_login(dp_session *s);
/* Lets what is queued for the client go out, then closes both sides. */
void dp_session_close_client(dp_session *s);
/* Closes both sides now and frees s. */
void dp_session_free(dp_session *s);
/* s is closing: no more timers but one, at most 5 s to flush what is
 * queued. -1 when that timer cannot be set (free s). */
int dp_session_linger(dp_session *s);

/* relay.c: after the login. Takes the client's socket and the upstream's
 * SSL and socket out of their bufferevents (freed), with the bytes they
 * hold, and relays from there: 0, or -1 when out of memory (nothing was
 * taken; free s). */
int dp_relay_start(dp_session *s);
void dp_relay_free(dp_relay *r);
/* Queues the proxy's own message for the client: 0, or -1 out of memory. */
int dp_relay_say(dp_relay *r, const void *msg, size_t n);
/* Drops the upstream; what is queued for the client still goes out (at
 * most 5 s), then s is freed (maybe before this returns). */
void dp_relay_close_client(dp_relay *r);

/* lifetime.c */
void dp_lifetime_born(dp_session *s);
int dp_lifetime_start(dp_session *s);
/* Follows the framing of the n bytes p about to be relayed. */
void dp_lifetime_follow(dp_session *s, const unsigned char *p, size_t n, int to_upstream);
/* After upstream bytes were relayed: 1 when the session was ended. */
int dp_lifetime_check(dp_session *s);
/* The upstream closed: 1 when the client was told why and s is closing. */
int dp_lifetime_upstream_closed(dp_session *s);

/* clientauth.c */
int dp_clientauth_start(dp_session *s);
int dp_clientauth_step(dp_session *s, struct evbuffer *in);

#endif
