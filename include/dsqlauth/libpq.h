/* libdsqlauth libpq adapter: connect libpq to Aurora DSQL with IAM tokens.
 * Library: libdsqlauth-pq (pkg-config dsqlauth-pq, CMake dsqlauth::pq),
 *          which links libdsqlauth and libpq.
 *
 * Not included by <dsqlauth.h> because it needs <libpq-fe.h>.
 *
 * Every connection attempt signs a fresh token for the host being tried
 * (tokens are valid for one host only) and hands it to libpq only in the
 * "password" parameter. Secure defaults, decided at run time from
 * PQlibVersion(), apply unless the configuration sets the key itself:
 *   sslmode=verify-full;
 *   sslrootcert=<system CA bundle file> with libpq 15 and older,
 *               =system with libpq 16+ (verify-full only);
 *   sslnegotiation=direct with libpq 17+;
 *   gssencmode=disable (DSQL speaks no GSSAPI; saves a round trip);
 *   application_name=[<application_name_prefix>:]libdsqlauth/<version>.
 * PGSSLMODE / PGSSLROOTCERT in the environment count as set by the user
 * only through dsql_config_load_env(); an unset sslrootcert with
 * PGSSLROOTCERT in the environment leaves libpq to read it. An sslmode
 * weaker than verify-full is refused (DSQL_ECONFIG, before any token or
 * byte) unless allow_insecure_tls=1 (dsql_config_resolve).
 *
 * Hosts are tried one after the other (shuffled when load_balance_hosts=
 * random), each with its own token. A transient server error during
 * startup (SQLSTATE 53300, 53400, 08006, or the server closing the
 * connection) is retried on the same host with a new token after a bounded
 * exponential backoff with jitter (connect_retries, default 3;
 * connect_retry_delay_ms, default 100, doubling, at most 5 s). Login
 * failures (28000, 28P01) are never retried. When every host fails, the
 * error names each host with the step that failed and libpq's message.
 *
 * Errors: err->status tells the step that failed:
 *   DSQL_ECONFIG/DSQL_EINVAL  configuration (or a parameter libpq refused)
 *   DSQL_ECREDENTIALS/EEXPIRED credentials     other provider errors: token
 *   DSQL_ENETWORK             network (resolve, connect, connection lost)
 *   DSQL_ETIMEOUT             connect_timeout passed
 *   DSQL_ETLS                 TLS handshake or certificate verification
 *   DSQL_EAUTH                authentication (the server's reason included)
 *   DSQL_ESERVER              any other server error (e.g. 53300)
 * err->sqlstate carries the server's SQLSTATE when there was one, and
 * err->message the step and libpq's message (never the token: anything
 * token-like a server or driver echoes is cut out as "[token removed]"). */
#ifndef DSQLAUTH_LIBPQ_H
#define DSQLAUTH_LIBPQ_H

#include <libpq-fe.h>

#include "config.h"
#include "retry.h"
#include "token.h"

#ifdef __cplusplus
extern "C" {
#endif

/* cfg, here and in every function below, is only read: a resolved one is
 * used as it is, an unresolved one is resolved into a private copy for the
 * call (so any number of threads may connect with one configuration, and
 * resolving it once yourself saves that copy per call).
 *
 * Connect (blocking). provider is borrowed.
 * Returns a connection in CONNECTION_OK, or NULL with err set.
 * provider NULL, here and in every function below: the process-wide
 * dsql_token_provider_shared(cfg), one cached default credentials chain per
 * profile shared by all connections (one credentials fetch for many
 * connections; a "profile" from AWS_PROFILE is not an explicit request). */
DSQL_API PGconn *dsql_pq_connect(const dsql_config *cfg, dsql_token_provider *provider,
                                 dsql_error *err);

/* dsql_pq_connect that stops at the caller's deadline and cancel callback:
 * until->deadline_ms (CLOCK_MONOTONIC ms, 0: none) ends every attempt and
 * backoff with DSQL_ETIMEOUT, until->cancelled (asked at least every 10 ms
 * while waiting on the network) with DSQL_ECANCELLED; whatever is half
 * open is closed. Only deadline_ms, cancelled and cancel_arg are read (the
 * connect retries are the configuration's); NULL: as dsql_pq_connect. The
 * token provider's credential fetch is not interrupted (its own HTTP
 * timeouts bound it). */
DSQL_API PGconn *dsql_pq_connect_until(const dsql_config *cfg, dsql_token_provider *provider,
                                       const dsql_retry_options *until, dsql_error *err);

/* Non-blocking connect, for any event loop. */
typedef struct dsql_pq_connecting dsql_pq_connecting;

typedef enum dsql_pq_poll_status {
    DSQL_PQ_POLL_FAILED = 0,  /* done, failed: call dsql_pq_connect_finish */
    DSQL_PQ_POLL_READING = 1, /* wait until *fd is readable (or the timeout) */
    DSQL_PQ_POLL_WRITING = 2, /* wait until *fd is writable (or the timeout) */
    DSQL_PQ_POLL_WAITING = 3, /* backoff: no fd (-1), wait for the timeout */
    DSQL_PQ_POLL_OK = 4       /* done, connected: call dsql_pq_connect_finish */
} dsql_pq_poll_status;

/* Start connecting. Never waits: each token (the first and those of later
 * attempts) is signed on a helper thread, so a provider that must fetch
 * credentials (IMDS, STS, SSO: up to seconds) does not block the caller;
 * meanwhile _poll says READING on a pipe that becomes readable when the
 * token is ready. libpq then starts (PQconnectStartParams). libpq resolves
 * host names synchronously: to avoid a DNS wait on the event loop give
 * hostaddr (the token is still signed for the host name). Returns NULL
 * only for errors before any connection attempt (configuration, memory);
 * a credentials or token failure is reported by _poll (FAILED). A resolved cfg must
 * outlive the handle (an unresolved one is copied into it); provider is
 * borrowed (NULL: the shared default, see above). */
DSQL_API dsql_pq_connecting *dsql_pq_connect_start(const dsql_config *cfg,
                                                   dsql_token_provider *provider,
                                                   dsql_error *err);

/* Advance. On READING/WRITING wait for *fd in that direction; on WAITING
 * wait *timeout_ms. *timeout_ms is the longest wait before calling again
 * (-1: no limit) in every waiting state. The fd can change between calls
 * (another host, a retry): re-register it every time. err is filled when
 * FAILED is returned. */
DSQL_API dsql_pq_poll_status dsql_pq_connect_poll(dsql_pq_connecting *c, int *fd,
                                                  int *timeout_ms, dsql_error *err);

/* Ends the attempt and frees c (an attempt abandoned while its token is
 * being signed waits for the helper thread: the provider stays in use
 * until then). Returns the connection after
 * DSQL_PQ_POLL_OK (the caller owns it), else NULL (anything half-open is
 * closed). NULL is allowed. */
DSQL_API PGconn *dsql_pq_connect_finish(dsql_pq_connecting *c);

/* Keyword/value arrays (NULL-terminated) for PQconnectdbParams(kw, val, 0)
 * to host number host_index of cfg once resolved, with a fresh token as
 * "password" and the secure defaults. One host per call because a token
 * is valid for one host. Free with dsql_pq_params_free, which wipes the
 * token. */
DSQL_API dsql_status dsql_pq_params(const dsql_config *cfg, dsql_token_provider *provider,
                                    size_t host_index, const char *const **keywords,
                                    const char *const **values, dsql_error *err);
/* NULL is allowed. */
DSQL_API void dsql_pq_params_free(const char *const *keywords, const char *const *values);

/* Replace *conn with a new connection made with a new token (PQreset would
 * send the old, expired one). The host *conn used is tried first. On
 * success the old connection is closed and *conn replaced; on failure
 * *conn is left as it was. */
DSQL_API dsql_status dsql_pq_reconnect(PGconn **conn, const dsql_config *cfg,
                                       dsql_token_provider *provider, dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
