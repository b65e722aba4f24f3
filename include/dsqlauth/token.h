/* libdsqlauth: Aurora DSQL IAM authentication tokens.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth). */
#ifndef DSQLAUTH_TOKEN_H
#define DSQLAUTH_TOKEN_H

#include "common.h"
#include "config.h"
#include "credentials.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSQL_TOKEN_DEFAULT_EXPIRES 900u
#define DSQL_TOKEN_MAX_EXPIRES 604800u
#define DSQL_HOSTNAME_MAX 253u
#define DSQL_REGION_MAX 64u

/* What to sign a token for: the one request of every token call
 * (dsql_token_generate, dsql_token_provider_get, a provider's token()). */
typedef struct dsql_token_request {
    int version;          /* DSQL_STRUCT_VERSION */
    const char *hostname; /* the host the token is signed for (the DSQL
                             name, not an address); a leading https:// is
                             stripped */
    const char *user;     /* database user; NULL: "admin"; "admin" signs
                             DbConnectAdmin, any other DbConnect */
    const char *region;   /* NULL or "": the hostname's, else a provider's */
    uint32_t expires_in;  /* seconds, 1..604800; 0: 900 (a provider's
                             default) */
    int64_t now;          /* Unix seconds to sign at; 0: the current time */
} dsql_token_request;

/* Sign a token with the given credentials, once (for many tokens use a
 * provider: dsql_token_provider_signing caches the derived key and
 * allocates nothing per token). On success writes the token and
 * a NUL to buf and its length (without the NUL) to *len. When cap is too
 * small returns DSQL_EBUFSIZE, sets *len to the token length (so cap must be
 * at least *len + 1) and writes nothing but an empty string. The expiry is
 * clamped to the credentials' remaining lifetime. Pure and thread-safe. */
DSQL_API dsql_status dsql_token_generate(const dsql_token_request *req,
                                         const dsql_credentials *creds,
                                         char *buf, size_t cap, size_t *len,
                                         dsql_error *err);

/* Region from "<id>.dsql[-suffix].<region>.on.aws"; copies it into buf.
 * Returns DSQL_EINVAL when the hostname names no region. */
DSQL_API dsql_status dsql_region_from_hostname(const char *hostname, char *buf,
                                               size_t cap, dsql_error *err);

/* The seam every adapter consumes: "give me a password for this host/user".
 * token() follows dsql_token_generate's buffer contract.
 *
 * Threads: token() is called on the same self from many threads at once,
 * with no lock held by the library: a pool opening connections, its
 * maintenance thread, every thread that connects with the same provider.
 * A provider must therefore
 *   - be safe for concurrent token() calls on one self (lock, or keep all
 *     per-call state on the stack);
 *   - keep no pointer into req or buf after it returns;
 *   - on error return a status other than DSQL_OK (buf is then emptied for
 *     it) and never log or report a secret or token in err;
 *   - bound any blocking (credentials fetch) with a timeout, since a
 *     connect waits on it, and never call back into the adapter that
 *     called it (a pool acquire from token() can deadlock).
 * destroy() runs once, from dsql_token_provider_free, which the owner calls
 * only after every token() call has returned. */
typedef struct dsql_token_provider_vtable {
    int version; /* DSQL_STRUCT_VERSION */
    dsql_status (*token)(void *self, const dsql_token_request *req, char *buf,
                         size_t cap, size_t *len, dsql_error *err);
    void (*destroy)(void *self);
} dsql_token_provider_vtable;

typedef struct dsql_token_provider dsql_token_provider;

DSQL_API dsql_token_provider *
dsql_token_provider_new(const dsql_token_provider_vtable *vtable, void *self,
                        dsql_error *err);
/* A token from p into the caller's buffer, with token()'s contract
 * (DSQL_EBUFSIZE and the needed length when cap is too small), the request
 * version checked and buf emptied on any error. The form for providers that
 * wrap another provider and for code that must not allocate; adapters use
 * dsql_token_provider_get_alloc. */
DSQL_API dsql_status dsql_token_provider_get(dsql_token_provider *p,
                                             const dsql_token_request *req, char *buf,
                                             size_t cap, size_t *len, dsql_error *err);
DSQL_API void dsql_token_provider_free(dsql_token_provider *p);

/* dsql_token_provider_get into a heap buffer sized for the token: asks
 * again once with the length the provider reports on DSQL_EBUFSIZE. On
 * success *token_out is a NUL-terminated token to release with
 * dsql_token_free and *len_out (len_out may be NULL) its length. On error
 * *token_out is NULL: never a partial token. The buffer comes from the
 * allocator of dsql_set_allocator. */
DSQL_API dsql_status dsql_token_provider_get_alloc(dsql_token_provider *p,
                                                   const dsql_token_request *req,
                                                   char **token_out, size_t *len_out,
                                                   dsql_error *err);
/* Wipes a token from dsql_token_provider_get_alloc (every byte, the NUL
 * included) and frees it with the library's allocator. NULL is allowed. */
DSQL_API void dsql_token_free(char *token);

typedef struct dsql_token_provider_options {
    int version;         /* DSQL_STRUCT_VERSION */
    const char *region;  /* used when the request and hostname name none */
    uint32_t expires_in; /* default token lifetime; 0 means 900 */
} dsql_token_provider_options;

/* A caching signer (the derived key is kept per secret, date and region,
 * so a token costs one HMAC chain instead of five and allocates nothing)
 * over the given credentials provider, of which it takes ownership (it is
 * freed with the token provider, also when this call fails). options may
 * be NULL. A request's "now" is honoured (0: the current time). */
DSQL_API dsql_token_provider *
dsql_token_provider_signing(dsql_credentials_provider *creds,
                            const dsql_token_provider_options *options,
                            dsql_error *err);

/* The process-wide default provider for cfg's profile: a signing provider
 * (region and lifetime from each request) over one cached
 * dsql_credentials_provider_default, made on first use and shared by every
 * caller and thread that asks for the same profile, so many connections
 * make one credentials fetch. The adapters use it when given a NULL
 * provider. cfg's "profile" counts as explicitly requested (environment
 * keys skipped) only when set in code or in a connection string; one from
 * AWS_PROFILE (dsql_config_load_env) does not, as in botocore. cfg NULL:
 * no explicit profile. Borrowed: it lives until the process exits and
 * dsql_token_provider_free ignores it. Thread-safe. NULL with err set when
 * it cannot be made (memory). */
DSQL_API dsql_token_provider *dsql_token_provider_shared(const dsql_config *cfg,
                                                         dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
