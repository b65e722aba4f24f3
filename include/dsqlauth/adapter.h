/* libdsqlauth: the adapter kit, what every database adapter needs besides
 * the configuration (config.h) and a token provider (token.h):
 *   - an error with a formatted message          dsql_error_set
 *   - a resolved view of the caller's const      dsql_config_resolve_view
 *     configuration, never writing to it
 *   - a fresh token for one resolved host, in a  dsql_token_get_for_host
 *     heap buffer that dsql_token_free wipes     (dsql_token_request_for_host:
 *                                                just the request)
 *   - the system CA bundle file, for drivers     dsql_ca_bundle_find
 *     that cannot ask for the system roots
 *   - the conflict classifier                    conflict.h
 *   - the retry options, backoff schedule and    retry.h
 *     the steps of the retry loop
 * The libpq and ODBC adapters are built on it; doc/ADAPTERS.md and
 * examples/adapter-skeleton show a new adapter using it.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth). */
#ifndef DSQLAUTH_ADAPTER_H
#define DSQLAUTH_ADAPTER_H

#include "common.h"
#include "config.h"
#include "conflict.h"
#include "retry.h"
#include "token.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills err (when not NULL): status st, no SQLSTATE, the formatted message
 * (cut to fit). Returns st, so "return dsql_error_set(err, ...);" works.
 * Never put a secret or a token in the message. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
DSQL_API dsql_status dsql_error_set(dsql_error *err, dsql_status st, const char *fmt, ...);

/* For functions that take a const configuration and connect: *view is
 * cfg itself when it is resolved, else a resolved private copy that is
 * also in *own (dsql_config_free it after the call; *own is NULL when cfg
 * itself is used). So connecting never writes to the caller's
 * configuration, and threads may share one. On error both are NULL and
 * err says why: DSQL_EINVAL for a NULL cfg, view or own, else
 * dsql_config_resolve's status (the TLS rule included). */
DSQL_API dsql_status dsql_config_resolve_view(const dsql_config *cfg, const dsql_config **view,
                                              dsql_config **own, dsql_error *err);

/* The token request for host number host_index of the resolved cfg: the
 * host's signing_host and region, cfg's "user" and "token_duration_secs",
 * now 0. The strings are borrowed from cfg. DSQL_EINVAL when cfg is not
 * resolved or host_index is out of range. For adapters that hand the
 * request to a provider themselves (another thread, a buffer of their
 * own). */
DSQL_API dsql_status dsql_token_request_for_host(const dsql_config *cfg, size_t host_index,
                                                 dsql_token_request *req, dsql_error *err);

/* A token for host number host_index of the resolved cfg: signed for the
 * host's signing_host and region, for cfg's "user", valid for cfg's
 * "token_duration_secs". provider NULL: dsql_token_provider_shared(cfg).
 * On success *token is a NUL-terminated token (and *len, len may be NULL,
 * its length) to release with dsql_token_free, which wipes it; on error
 * *token is NULL (never part of a token) and err says why:
 * DSQL_EINVAL when cfg is not resolved or host_index is out of range, else
 * the provider's status. Ask right before connecting to that host: a
 * token is valid for one host. */
DSQL_API dsql_status dsql_token_get_for_host(dsql_token_provider *provider,
                                             const dsql_config *cfg, size_t host_index,
                                             char **token, size_t *len, dsql_error *err);

/* The path of the system's CA bundle file (SSL_CERT_FILE when readable,
 * else the first readable of the Debian/Ubuntu/Alpine, Fedora/RHEL/Amazon
 * Linux, openSUSE and BSD/macOS locations), or NULL when none is found.
 * For drivers that need a file to verify the server (libpq before 16,
 * psqlODBC). A static string or the environment's: do not free it. */
DSQL_API const char *dsql_ca_bundle_find(void);

#ifdef __cplusplus
}
#endif
#endif
