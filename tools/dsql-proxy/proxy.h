/* dsql-proxy: a local PostgreSQL endpoint that logs each client in to
 * Aurora DSQL with a fresh IAM token and then relays its session.
 * main.c: options and the event loop; listen.c: where clients come from
 * and who may connect; session.c: one client from its first byte to the
 * end of its login; relay.c: its bytes both ways after that; upstream.c: a verify-full TLS connection to DSQL; cancel.c:
 * CancelRequests routed to the right upstream session; tokens.c: tokens
 * made on a worker thread, off the event loop; provider.c: the token
 * provider, counting its credentials fetches; metrics.c: --metrics. */
#ifndef DSQL_PROXY_H
#define DSQL_PROXY_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "dsqlauth.h"
#include "listener.h"
#include "log.h"
#include "preauth.h"
#include "ratelimit.h"
#include "scram.h"

#define DP_MAX_LISTEN 8
#define DP_MAX_ALLOW 32
#define DP_CANCEL_IN_FLIGHT 16

typedef struct dp_listen {
    int is_unix;
    char dir[256];      /* unix: the directory holding .s.PGSQL.5432 */
    char path[300];     /* unix: the socket */
    char host[64];      /* tcp: 127.0.0.1 or ::1 */
    int port;           /* tcp: as given; the bound one after listening */
    int made_dir;       /* unix: the default directory, removed at exit */
    pgs_listener *l;
} dp_listen;

typedef struct dp_options {
    dp_listen listen[DP_MAX_LISTEN];
    int nlisten;
    const char *allow_user[DP_MAX_ALLOW];
    int nallow_user;
    uid_t allow_uid[DP_MAX_ALLOW];
    int nallow_uid;
    int max_connections;
    int trust_loopback;
    int direct_tls;       /* --sslnegotiation direct */
    uint32_t expires_in;  /* 0: the configuration's */
    int auth_timeout;     /* seconds for a client to be logged in */
    int drain_timeout;    /* seconds SIGTERM waits for sessions */
    int max_duration;     /* --max-connection-duration, seconds (0: off) */
    const char *password_file; /* --client-password-file */
    const char *log_file;      /* --log: reopened on SIGHUP */
    dp_listen metrics;         /* --metrics tcp:127.0.0.1:PORT (port -1: none) */
    int print_env;
    int verbose;
} dp_options;

/* The upstream every session goes to (resolved once at start). */
typedef struct dp_upstream {
    char host[256];         /* connect to (DNS name or address) */
    char signing_host[256]; /* the token's host, TLS SNI and name checked */
    char region[DSQL_REGION_MAX + 1];
    char port[8];
    SSL_CTX *ssl_ctx;       /* verify-full */
} dp_upstream;

struct dp_session;
struct dp_tokens;
struct dp_metrics;

/* Why a client was refused: the label of a failure counted in --metrics. */
typedef enum dp_fail {
    DP_FAIL_PEER,         /* a Unix-socket peer whose uid may not connect */
    DP_FAIL_PROTOCOL,     /* malformed or unsupported startup, SASL message */
    DP_FAIL_USER,         /* no user, too long, not in --allow-user */
    DP_FAIL_PASSWORD,     /* the local password (SCRAM) did not match */
    DP_FAIL_CAP,          /* --max-connections */
    DP_FAIL_CREDENTIALS,  /* no token: no credentials, or they failed */
    DP_FAIL_UNREACHABLE,  /* the upstream: DNS, connect, TLS */
    DP_FAIL_REFUSED,      /* the upstream's own ErrorResponse */
    DP_FAIL_UPSTREAM,     /* the upstream broke the login protocol or closed */
    DP_FAIL_TIMEOUT,      /* --auth-timeout */
    DP_FAIL_MEMORY,       /* out of memory */
    DP_FAIL_N
} dp_fail;

/* What --metrics shows. The loop's own counters are plain; those the token
 * worker thread bumps are atomic. */
typedef struct dp_stats {
    unsigned long connections;       /* accepted, refused peers included */
    unsigned long logins;            /* relaying after a good login */
    unsigned long relaying;          /* sessions relaying now */
    unsigned long failures[DP_FAIL_N];
    uint64_t bytes_to_upstream, bytes_to_client; /* relayed after login */
    unsigned long tokens;            /* signed for a login */
    unsigned long cancels;           /* forwarded upstream */
    unsigned long duration_closes;   /* sessions ended at the duration limit */
    atomic_ulong creds_fetches;      /* the cache asked the chain: ok */
    atomic_ulong creds_fetch_failures; /* ... and it failed */
} dp_stats;

typedef struct dp_proxy {
    struct event_base *base;
    struct evdns_base *dns;
    const dp_options *opt;
    dp_upstream up;
    dsql_token_provider *tokens; /* provider.c: owned */
    struct dp_tokens *worker;    /* tokens.c: where tokens are made */
    struct dp_metrics *metrics;  /* metrics.c, with --metrics */
    dp_stats stats;
    struct dp_session *sessions; /* every live client connection */
    size_t nsessions;
    pgs_preauth preauth;
    pgs_ratelimit log_rl, cancel_rl;
    struct dp_password *passwords; /* --client-password-file */
    size_t npasswords;
    unsigned char mock_key[PGS_SCRAM_MOCK_KEY]; /* unknown users' salts come from it */
    struct dp_cancel_job *cancel_jobs; /* forwards in flight */
    int cancels_in_flight;
    int draining;
    struct event *drain_timer;
    unsigned long n_accepted;    /* sessions made: their ids */
} dp_proxy;

/* upstream.c: a TLS connection to the upstream, logged in or not. done is
 * called once: bev (connected, TLS up, the callee owns it) or a message. */
typedef void (*dp_connect_done)(struct bufferevent *bev, const char *err, void *arg);
typedef struct dp_connect dp_connect;
/* NULL when out of memory; else done will be called (maybe before this
 * returns: check the pointer you store against that). */
dp_connect *dp_connect_start(dp_proxy *p, dp_connect_done done, void *arg);
void dp_connect_abort(dp_connect *c);
/* Frees a connection's bufferevent, its SSL and its socket. */
void dp_upstream_free(struct bufferevent *bev);
int dp_upstream_init(dp_upstream *up, const char *host, const char *hostaddr,
                     const char *signing_host, const char *region, unsigned port,
                     const char *rootcert, int direct, char *err, size_t errcap);

/* tokens.c: a token is signed, and the credentials behind it fetched or
 * refreshed, on one worker thread: a slow credentials source (IMDS, STS,
 * credential_process) delays only the logins waiting for it, never the
 * sessions being relayed. done runs on the event loop with the token
 * (the callee wipes it with dsql_token_free) or, token NULL, the
 * library's message (never a secret). */
typedef void (*dp_token_done)(char *token, size_t len, const char *err, void *arg);
typedef struct dp_token_job dp_token_job;
int dp_tokens_start(dp_proxy *p, char *err, size_t errcap);
/* Waits for a fetch in progress (bounded by the library's timeouts). */
void dp_tokens_stop(dp_proxy *p);
/* NULL when out of memory; done is never called before this returns. */
dp_token_job *dp_token_request(dp_proxy *p, const char *user, dp_token_done done, void *arg);
/* done will not be called; harmless with NULL. */
void dp_token_cancel(dp_token_job *j);

/* provider.c: a signing provider over the cached default credentials
 * chain for profile (NULL: none given), as dsql_token_provider_shared
 * makes it, counting into stats each time the cache fetches credentials. */
dsql_token_provider *dp_token_provider_new(const char *profile, dp_stats *stats,
                                           dsql_error *err);

/* metrics.c: --metrics, Prometheus text over HTTP on the loop. */
int dp_metrics_parse(dp_listen *l, const char *spec, char *err, size_t errcap);
int dp_metrics_open(dp_proxy *p, char *err, size_t errcap);
void dp_metrics_close(dp_proxy *p);

/* session.c */
void dp_session_accept(dp_proxy *p, int fd, int is_unix);
void dp_session_close_all(dp_proxy *p);
int dp_session_evict_one(dp_proxy *p);

/* cancel.c: forwards the client's 16-byte CancelRequest pkt to the
 * upstream session it names, if any. */
void dp_cancel_route(dp_proxy *p, const unsigned char *pkt);
void dp_cancel_close_all(dp_proxy *p);

/* clientauth.c */
int dp_passwords_load(dp_proxy *p, const char *path, char *err, size_t errcap);
void dp_passwords_free(dp_proxy *p);

/* listen.c */
int dp_listen_parse(dp_listen *l, const char *opt, const char *spec, char *err,
                    size_t errcap);
int dp_listen_open(dp_proxy *p, dp_listen *l, char *err, size_t errcap);
void dp_listen_close(dp_listen *l);
/* The address of a tcp: listen spec; 0 when host is not an IP address. */
struct sockaddr_storage;
socklen_t dp_listen_tcp_addr(const dp_listen *l, struct sockaddr_storage *ss);
/* The peer of a Unix connection may use the proxy (own uid, --allow-uid). */
int dp_peer_allowed(const dp_options *o, int fd, uid_t *uid);

#endif
