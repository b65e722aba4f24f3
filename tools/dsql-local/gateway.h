/* dsql-local: gateway internals shared by gateway.c and frontdoor.c. */
#ifndef DSQL_LOCAL_GATEWAY_H
#define DSQL_LOCAL_GATEWAY_H

#include <openssl/ssl.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "dsqlauth.h"
#include "local.h"

enum conn_state {
    S_PRE,      /* raw socket, before TLS: SSLRequest / GSSENC / cancel */
    S_DISCARD,  /* plaintext startup: read it, then refuse */
    S_STARTUP,  /* TLS up, waiting for the startup packet */
    S_PASSWORD, /* AuthenticationCleartextPassword sent */
    S_RELAY,    /* bytes both ways */
    S_CLOSING   /* flushing a last message to the client */
};

struct dl_gateway {
    struct event_base *base;
    struct evconnlistener *listener;
    SSL_CTX *ssl_ctx;
    const dl_config *cfg;
    char keys_file[600];
    char pg_socket[600];
    int port;
    struct conn *conns; /* all live connections, for shutdown */
    unsigned long n_accepted, n_ok, n_refused;
};

typedef struct conn {
    struct dl_gateway *gw;
    struct conn *prev, *next;
    enum conn_state state;
    int fd;                    /* until a bufferevent owns it */
    int tls_up;                /* handshake finished */
    struct event *raw_ev;      /* S_PRE / S_DISCARD reads */
    unsigned char pre[16];
    size_t pre_have;
    size_t discard_left;
    struct bufferevent *client, *backend;
    struct event *auth_timer, *life_timer, *close_timer;
    unsigned char *startup;
    size_t startup_len;
    char user[128];
    unsigned char bhdr[5];     /* backend message framing, so a closing */
    size_t bhdr_have;          /* notice lands between two messages */
    size_t bbody_left;
    unsigned long id;
} conn;

/* gateway.c */
void conn_free(conn *c);
void conn_fail(conn *c, const char *sqlstate, const char *message);
int conn_start_tls(conn *c);
void conn_start_backend(conn *c);
int cancel_relay(struct dl_gateway *gw, const unsigned char pkt[16]);

/* frontdoor.c */
void frontdoor_raw_cb(evutil_socket_t fd, short what, void *arg);
void frontdoor_read_cb(struct bufferevent *bev, void *arg);

#endif
