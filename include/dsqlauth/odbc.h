/* libdsqlauth ODBC adapter: connect psqlODBC to Aurora DSQL with IAM tokens.
 * Library: libdsqlauth-odbc (pkg-config dsqlauth-odbc, CMake dsqlauth::odbc),
 *          which links libdsqlauth and unixODBC.
 *
 * Not included by <dsqlauth.h>: it needs <sql.h> (unixODBC). Build with
 *     cc app.c $(pkg-config --cflags --libs dsqlauth-odbc)
 * Its functions are marked DSQL_ODBC_API (not DSQL_API): libdsqlauth-odbc
 * exports them, libdsqlauth does not.
 *
 * Every connection attempt signs a fresh token for the host being tried and
 * passes it to the driver only as PWD. The connection string is written for
 * psqlODBC (Debian odbc-postgresql), which keeps only some values' braces:
 *   Driver={...}                 from the options (default
 *                                "PostgreSQL Unicode", see odbcinst.ini)
 *   Server, Port, Database, UID  as plain values when they are made of
 *                                letters, digits, '.', '_' and '-' only
 *                                (psqlODBC copies these raw); otherwise the
 *                                value goes to libpq through pqopt instead
 *   SSLmode=verify-full          unless the configuration sets sslmode
 *                                (a weaker one needs allow_insecure_tls=1:
 *                                dsql_config_resolve)
 *   CommLog=0;Debug=0            the driver's logs would hold the password
 *   pqopt={...}                  libpq parameters, each value single-quoted
 *                                for libpq: hostaddr (the signing host and
 *                                SNI name stay Server's), sslrootcert (else
 *                                the system CA bundle unless PGSSLROOTCERT
 *                                is set), gssencmode=disable,
 *                                application_name=[prefix:]libdsqlauth/<v>,
 *                                and every pass-through configuration key
 *   PWD={token}                  the token
 * Every value that may hold ';', '{', '}' or '=' is enclosed in braces
 * with '}' doubled, so no value can add or change an attribute.
 *
 * Errors: err->status names the step that failed, as in the libpq adapter:
 * DSQL_ECONFIG (configuration, driver not found, an option the driver
 * refused), DSQL_ECREDENTIALS / DSQL_EEXPIRED / other provider statuses
 * (token), DSQL_ENETWORK, DSQL_ETIMEOUT, DSQL_ETLS, DSQL_EAUTH (the server
 * refused the login; its reason is in the message) and DSQL_ESERVER.
 * err->sqlstate is the ODBC SQLSTATE of the first diagnostic record (for
 * psqlODBC usually 08001); err->message names the host and quotes the
 * driver's diagnostics, with anything that looks like a token removed. */
#ifndef DSQLAUTH_ODBC_H
#define DSQLAUTH_ODBC_H

#include <sql.h>
#include <sqlext.h>

#include "config.h"
#include "retry.h"
#include "token.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define DSQL_ODBC_API __attribute__((visibility("default")))
#else
#define DSQL_ODBC_API
#endif

#define DSQL_ODBC_DEFAULT_DRIVER "PostgreSQL Unicode"

typedef struct dsql_odbc_options {
    int version;        /* DSQL_STRUCT_VERSION */
    const char *driver; /* odbcinst.ini name or path of the driver library;
                           NULL: DSQL_ODBC_DEFAULT_DRIVER */
    const char *extra;  /* NULL, or more "Key=value;..." attributes for the
                           driver, placed before the adapter's own (which
                           win); the caller quotes them */
} dsql_odbc_options;

/* Connect the allocated, unconnected connection handle dbc: for each
 * resolved host in turn, sign a token, build the connection string and
 * call SQLDriverConnect (SQL_DRIVER_NOPROMPT); the first success wins.
 * cfg is only read (an unresolved one is resolved into a private copy for
 * the call, so threads may share it); provider is borrowed (NULL: the
 * process-wide dsql_token_provider_shared(cfg), one cached default chain
 * per profile shared by every connection); opts
 * may be NULL. Set SQL_ATTR_LOGIN_TIMEOUT on dbc to bound each attempt. */
DSQL_ODBC_API dsql_status dsql_odbc_connect(SQLHDBC dbc, const dsql_config *cfg,
                                            dsql_token_provider *provider,
                                            const dsql_odbc_options *opts,
                                            dsql_error *err);

/* Disconnect dbc if it is connected and connect it again with a new token
 * (an ODBC connection must never be re-opened with the old PWD: the token
 * will have expired). On failure dbc is left disconnected. */
DSQL_ODBC_API dsql_status dsql_odbc_reconnect(SQLHDBC dbc, const dsql_config *cfg,
                                              dsql_token_provider *provider,
                                              const dsql_odbc_options *opts,
                                              dsql_error *err);

/* The connection string dsql_odbc_connect would use for host host_index of
 * cfg (only read, as above), with a fresh token as PWD, for your own
 * SQLDriverConnect. *out is a heap string of *len bytes (len may be NULL);
 * free it with dsql_odbc_string_free, which wipes the token. */
DSQL_ODBC_API dsql_status dsql_odbc_connection_string(const dsql_config *cfg,
                                                      dsql_token_provider *provider,
                                                      size_t host_index,
                                                      const dsql_odbc_options *opts,
                                                      char **out, size_t *len,
                                                      dsql_error *err);

/* Wipe and free a string from dsql_odbc_connection_string. NULL is allowed. */
DSQL_ODBC_API void dsql_odbc_string_free(char *s);

/* Quote one attribute value the ODBC way: "{" value "}" with every '}'
 * doubled. Follows dsql_token_generate's buffer contract (DSQL_EBUFSIZE with
 * the needed length in *len, cap must be at least *len + 1). */
DSQL_ODBC_API dsql_status dsql_odbc_quote(const char *value, char *buf, size_t cap,
                                          size_t *len, dsql_error *err);

/* After an ODBC call on handle (SQL_HANDLE_STMT or SQL_HANDLE_DBC) failed:
 * DSQL_ECONFLICT for an optimistic concurrency conflict (a record with
 * SQLSTATE 40001, whatever the messages say: dsql_conflict_classify),
 * DSQL_ENETWORK when the connection is gone (SQLSTATE 08xxx), else
 * DSQL_ESERVER; DSQL_OK when the handle holds no diagnostic record.
 * err gets the SQLSTATE and the driver's messages, one record after the
 * other ("[SQLSTATE] primary message | more lines; [SQLSTATE] ..."), a
 * conflict's record first: so dsql_odbc_run_transaction reads the
 * conflict's kind from its primary message alone. */
DSQL_ODBC_API dsql_status dsql_odbc_diag_status(SQLSMALLINT handle_type, SQLHANDLE handle,
                                                dsql_error *err);

/* One attempt of a transaction body: run statements on dbc, return
 * DSQL_OK to commit, or a status (from dsql_odbc_diag_status for a failed
 * statement) to roll back. info says which attempt this is and why the
 * previous one failed (its conflict kind included). It may run several
 * times: keep side effects outside the database out of it. */
typedef dsql_status (*dsql_odbc_txn_fn)(SQLHDBC dbc, const dsql_retry_info *info, void *arg,
                                        dsql_error *err);

/* Runs fn in a transaction (autocommit off, restored afterwards) and
 * commits it; on a conflict (DSQL_ECONFLICT or SQLSTATE 40001 from fn, or
 * at COMMIT) rolls back, waits (dsql_retry_after_conflict: the loop every
 * adapter shares) and runs fn again on a fresh snapshot, at most 1 +
 * opts->max_retries times. Any other failure rolls back and is returned
 * at once. A connection lost at COMMIT is DSQL_EUNKNOWN_COMMIT (the commit
 * may or may not have happened). opts NULL: dsql_retry_options_init's
 * defaults. result (may be NULL) gets the attempts and the conflicts by
 * kind (data OC000, schema OC001, unknown), as the libpq adapter's
 * dsql_pq_txn_result does. A connection in manual-commit mode (autocommit
 * off: a transaction of the caller's may be open; also a call from inside
 * another run on dbc) is refused with DSQL_EINVAL and left as it was. One
 * connection must not be used by two threads at once: two transactions on
 * it would interleave. */
DSQL_ODBC_API dsql_status dsql_odbc_run_transaction(SQLHDBC dbc, dsql_odbc_txn_fn fn,
                                                    void *arg,
                                                    const dsql_retry_options *opts,
                                                    dsql_retry_result *result,
                                                    dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
