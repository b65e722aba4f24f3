/* libdsqlauth: one resolved connection configuration from any input form.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth).
 *
 * A dsql_config collects connection settings from any mix of
 *   - a cluster endpoint "<id>.dsql.<region>.on.aws" (region discovered),
 *   - a bare cluster id plus a region (the endpoint is built),
 *   - a postgresql:// or postgres:// URI,
 *   - a libpq key=value conninfo string,
 *   - the PG* / AWS_REGION environment (only when asked for),
 *   - explicit settings made in code.
 * Every setting remembers where it came from; a setting from a stronger
 * source is never replaced by a weaker one (explicit > parsed > environment),
 * and among equals the later one wins. So "parse the user's URI, then force
 * the user name in code" and "force it, then parse" give the same result.
 *
 * Keys are libpq connection parameter names (passed to libpq untouched) plus
 * the connector's own, which libpq never sees:
 *   region               AWS region for hosts whose name names none
 *   profile              AWS profile for the credentials: an adapter given
 *                        a NULL provider signs with the shared default
 *                        chain for it (dsql_token_provider_shared). Set in
 *                        code or a connection string it is an explicit
 *                        request (environment keys skipped); from
 *                        AWS_PROFILE (dsql_config_load_env) it is not
 *   token_duration_secs  token lifetime, 1..604800 (default 900)
 *   cluster_id           builds host "<id>.dsql.<region>.on.aws"
 *   signing_host         the name tokens are signed for when it differs from
 *                        the host connected to (PrivateLink, SSH tunnels);
 *                        one name, or a comma list matching "host"
 *   application_name_prefix   prepended to "libdsqlauth/<version>"
 *   connect_retries      retries per host on transient errors (default 3)
 *   connect_retry_delay_ms    first backoff delay (default 100, doubles,
 *                        capped at 5000 with jitter)
 *   allow_insecure_tls   0 (default) or 1: accept an sslmode weaker than
 *                        verify-full (see dsql_config_resolve)
 * "host", "hostaddr" and "port" may be comma lists as in libpq; the
 * configuration resolves them into one entry per host, each with its own
 * signing host and region. A "password" is refused: the password is always
 * a freshly signed token.
 *
 * Pure parsing: nothing here touches the network or libpq.
 *
 * Threads: a configuration is not locked. The adapters take it as const
 * and only read it (an unresolved one is resolved into a private copy per
 * call), so any number of threads may connect with one configuration; do
 * not change it while they do. Resolving it once (dsql_config_resolve)
 * reports errors early and saves the copy. */
#ifndef DSQLAUTH_CONFIG_H
#define DSQLAUTH_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSQL_CONFIG_DEFAULT_USER "admin"
#define DSQL_CONFIG_DEFAULT_DBNAME "postgres"
#define DSQL_CONFIG_DEFAULT_PORT 5432u
#define DSQL_CONFIG_DEFAULT_RETRIES 3u
#define DSQL_CONFIG_DEFAULT_RETRY_DELAY_MS 100u

typedef struct dsql_config dsql_config;

/* Where a setting came from; stronger sources win. */
typedef enum dsql_config_source {
    DSQL_SOURCE_ENV = 1,      /* dsql_config_load_env */
    DSQL_SOURCE_PARSED = 2,   /* dsql_config_parse */
    DSQL_SOURCE_EXPLICIT = 3  /* dsql_config_set */
} dsql_config_source;

/* An empty configuration. NULL on allocation failure. */
DSQL_API dsql_config *dsql_config_new(dsql_error *err);
/* A deep copy (resolved state included). */
DSQL_API dsql_config *dsql_config_dup(const dsql_config *cfg, dsql_error *err);
/* NULL is allowed. */
DSQL_API void dsql_config_free(dsql_config *cfg);

/* Any input form, detected: a URI when it starts with postgresql:// or
 * postgres://, a conninfo string when it contains '=', a cluster id when it
 * is 26 lowercase letters and digits, else a host name or address (with an
 * optional ":port"; a leading https:// and trailing '/' are dropped).
 * URI: postgresql://[user[:password]@][host[:port]][,...][/dbname][?key=value&...]
 * with %XX decoding, [IPv6] literals and several hosts; the JDBC-style
 * ssl=true means sslmode=verify-full (as in pgjdbc), any other ssl value is
 * DSQL_EINVAL. Conninfo: "key=value key='quoted \' value' ..." as libpq
 * reads it. */
DSQL_API dsql_status dsql_config_parse(dsql_config *cfg, const char *input, dsql_error *err);
/* Set one key explicitly (wins over parsed input). value NULL removes an
 * explicit setting. Keys: see above; unknown keys go to libpq as given.
 * "region", "cluster_id" and "token_duration_secs" are checked here
 * (DSQL_EINVAL naming the key), the rest when the configuration is
 * resolved. */
DSQL_API dsql_status dsql_config_set(dsql_config *cfg, const char *key, const char *value,
                                     dsql_error *err);
/* Same with a chosen source (for tools layering their own inputs). */
DSQL_API dsql_status dsql_config_set_from(dsql_config *cfg, dsql_config_source source,
                                          const char *key, const char *value,
                                          dsql_error *err);
/* Fill unset keys from PGHOST, PGHOSTADDR, PGPORT, PGUSER, PGDATABASE,
 * PGSSLMODE, PGSSLROOTCERT, PGAPPNAME, PGCONNECT_TIMEOUT, AWS_PROFILE and
 * AWS_REGION (else AWS_DEFAULT_REGION), as the weakest source. Opt-in:
 * nothing reads the environment unless you call this. */
DSQL_API dsql_status dsql_config_load_env(dsql_config *cfg, dsql_error *err);

/* Validate and resolve: apply defaults, build the endpoint from a cluster
 * id, split the host lists, pick each host's signing host and region.
 * A host that is not a DSQL endpoint (localhost, an IP address, custom
 * DNS) is never rewritten; it needs a region (or a DSQL signing_host), or
 * this fails with DSQL_ECONFIG saying so. The adapters resolve a private
 * copy of an unresolved configuration; call it yourself to report errors
 * early. Getters below need a resolved config;
 * any later change un-resolves it.
 * TLS: a token is a bearer credential, so an sslmode weaker than
 * verify-full (disable, allow, prefer, require, verify-ca), from any
 * source (conninfo, URI, PGSSLMODE via dsql_config_load_env, explicit), is
 * refused here with DSQL_ECONFIG naming the mode and the opt-in, before
 * any adapter signs a token or opens a socket; with allow_insecure_tls=1
 * it is accepted and a warning goes to the log handler. An unknown
 * sslmode is DSQL_ECONFIG too. */
DSQL_API dsql_status dsql_config_resolve(dsql_config *cfg, dsql_error *err);

/* The value of a key after resolution, or NULL when unset. Works on
 * unresolved configs too (then without defaults). A resolved configuration
 * always has "user" (default admin), "dbname" (default postgres) and
 * "token_duration_secs" (default 900, a number in 1..604800). */
DSQL_API const char *dsql_config_get(const dsql_config *cfg, const char *key);

/* Number of resolved hosts; 0 when not resolved. */
DSQL_API size_t dsql_config_host_count(const dsql_config *cfg);

typedef struct dsql_config_host {
    const char *host;         /* connect host as given (libpq "host") */
    const char *hostaddr;     /* libpq "hostaddr" for it, or NULL */
    unsigned port;            /* 5432 unless given */
    const char *signing_host; /* the name the token is signed for */
    const char *region;       /* region the token is signed in */
} dsql_config_host;

/* Resolved host i (0-based); the strings live as long as the unchanged
 * config. DSQL_EINVAL when i is out of range or cfg is not resolved. */
DSQL_API dsql_status dsql_config_host_at(const dsql_config *cfg, size_t i,
                                         dsql_config_host *out, dsql_error *err);

/* Pass-through libpq parameters, in first-set order: every key except the
 * connector's own and host/hostaddr/port/user/dbname. Returns the count;
 * fills key and value for index i < count. */
DSQL_API size_t dsql_config_param_count(const dsql_config *cfg);
DSQL_API dsql_status dsql_config_param_at(const dsql_config *cfg, size_t i, const char **key,
                                          const char **value);

/* 1 when key is one of the connector's own keys (never sent to libpq). */
DSQL_API int dsql_config_is_connector_key(const char *key);

#ifdef __cplusplus
}
#endif
#endif
