/* dsql-local: gateway internals shared by gateway.c and frontdoor.c. */
#ifndef DSQL_LOCAL_GATEWAY_H
#define DSQL_LOCAL_GATEWAY_H

#include <openssl/ssl.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "dsqlauth.h"
#include "cancel.h"
#include "frames.h"
#include "listener.h"
#include "local.h"
#include "log.h"
#include "preauth.h"
#include "unixconn.h"
#include "wire.h"

enum conn_state {
    S_PRE,      /* raw socket, before TLS: SSLRequest / GSSENC / cancel */
    S_DISCARD,  /* plaintext startup: read it, then refuse */
    S_STARTUP,  /* TLS up, waiting for the startup packet */
    S_PASSWORD, /* AuthenticationCleartextPassword sent */
    S_BACKEND,  /* logged in, connecting to PostgreSQL */
    S_RELAY,    /* bytes both ways */
    S_CLOSING   /* flushing a last message to the client */
};

struct dl_gateway {
    struct event_base *base;
    pgs_listener *listener;
    SSL_CTX *ssl_ctx;
    const dl_config *cfg;
    char keys_file[600];
    char pg_socket[600];
    int port;
    struct conn *conns;    /* all live connections, for shutdown */
    pgs_preauth preauth;   /* those not logged in yet, capped */
    pgs_cancel_relay cancels;
    pgs_ratelimit log_preauth, log_refused; /* lines a flood repeats */
    size_t sessions, session_cap; /* logged in, and at most ("Cluster quotas ...") */
    pgs_ratelimit new_sessions;   /* --connection-rate, when asked for */
    dl_faults faults;             /* injected now (start options, `set`) */
    unsigned long n_conflicts, n_drops; /* faults injected */
    unsigned long n_accepted, n_ok, n_refused;
};

typedef struct conn {
    struct dl_gateway *gw;
    struct conn *prev, *next;
    pgs_preauth_node preauth;  /* listed until logged in */
    pgs_dial dial;             /* to PostgreSQL, in S_BACKEND */
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
    /* the backend's framing, so a closing notice lands between two
     * messages: followed in passing (--postgres-compat), else by dialect.c */
    pgs_frames bframes;
    size_t bbody_left;
    size_t cbody_left;         /* client message being passed through */
    int txn_ddl;               /* a DDL statement completed in this transaction */
    int in_txn;                /* the backend said it is in a transaction */
    int session;               /* counted in gw->sessions */
    struct event *txn_timer;   /* the transaction-duration limit */
    int txn_wrote;             /* a write completed in this transaction */
    int swallow_tag;           /* drop the next CommandComplete (an injected ROLLBACK) */
    int drop_pending;          /* cut the connection at the next ReadyForQuery */
    int txn_conflict;          /* this transaction met a conflict: DL_CONFLICT_* */
    int snap_valid;            /* in a transaction that began at catalog generation */
    unsigned long snap_gen;    /* snap_gen (catalog.h) */
    unsigned ddl_oids[16];     /* relations this transaction's DDL changed */
    size_t n_ddl_oids;         /* (more than fit: DL_CATALOG_ANY) */
    int ddl_undone;            /* its DDL will not commit (an error, a ROLLBACK) */
    int catalog_check;         /* the COMMIT went with a schema check (dialect.c) */
    char ready_status;         /* the backend's last ReadyForQuery status */
    int ext_commit_stmt;       /* the unnamed prepared statement is a COMMIT/END */
    int ext_commit_portal;     /* the unnamed portal runs it */
    int ext_commit_conflict;   /* its ROLLBACK tag becomes the conflict (DL_CONFLICT_*) */
    unsigned char swallow_ack[3]; /* Parse/Bind/CloseComplete of a check to drop */
    int swallow_call;          /* drop the check's CALL tag */
    struct evbuffer *lag;      /* client bytes held for --latency */
    struct event *lag_timer;
    unsigned long id;
} conn;

/* A conflict met in a transaction, reported again at its COMMIT. */
#define DL_CONFLICT_DATA 1   /* OC000 */
#define DL_CONFLICT_SCHEMA 2 /* OC001 */

/* gateway.c */
void conn_free(conn *c);
void conn_fail(conn *c, const char *sqlstate, const char *message);
int conn_start_tls(conn *c);
void conn_start_backend(conn *c);
/* Out of descriptors: closes one idle pre-login connection; 1 if one was. */
int conn_make_room(void *gateway);
/* The backend's ReadyForQuery status ('I', 'T', 'E'): times transactions. */
void conn_txn_status(conn *c, char status);

/* frontdoor.c */
void frontdoor_raw_cb(evutil_socket_t fd, short what, void *arg);
void frontdoor_read_cb(struct bufferevent *bev, void *arg);

#endif
