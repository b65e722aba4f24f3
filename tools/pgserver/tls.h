/* pgserver: TLS on libevent, the same for both ends of a PostgreSQL
 * connection: the settings every context gets, ALPN "postgresql"
 * (PostgreSQL 17's direct TLS), and an OpenSSL bufferevent over a socket. */
#ifndef PGSERVER_TLS_H
#define PGSERVER_TLS_H

#include <openssl/ssl.h>
#include <event2/bufferevent_ssl.h>

/* The ALPN protocol list a client offers, in wire form (length, name). */
#define PGS_TLS_ALPN "\x0apostgresql"

/* A context for a server (server != 0) or a client: TLS 1.2 or newer, no
 * renegotiation. NULL when out of memory. */
SSL_CTX *pgs_tls_ctx_new(int server);

/* For SSL_CTX_set_alpn_select_cb: "postgresql" when the client offers
 * it, else no ALPN (clients before PostgreSQL 17 offer none). */
int pgs_tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg);

/* A bufferevent doing TLS with ssl over the socket fd (state: accepting
 * or connecting, deferred callbacks), which closes fd and frees ssl when
 * freed. The socket BIO is made here and checked: libevent 2.1 makes one
 * without checking it was made. NULL when out of memory: ssl is freed
 * then, fd is not closed. */
struct bufferevent *pgs_tls_bufferevent(struct event_base *base, int fd, SSL *ssl,
                                        enum bufferevent_ssl_state state);
/* The same with the bufferevent's options of the caller's choosing:
 * without BEV_OPT_CLOSE_ON_FREE, freeing it leaves ssl and fd to the
 * caller (still: NULL means ssl was freed, fd was not closed). */
struct bufferevent *pgs_tls_bufferevent_opts(struct event_base *base, int fd, SSL *ssl,
                                             enum bufferevent_ssl_state state, int options);

#endif
