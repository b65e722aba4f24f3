/* libdsqlauth: status codes, errors, version, allocator and logging.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth). */
#ifndef DSQLAUTH_COMMON_H
#define DSQLAUTH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DSQL_VERSION_MAJOR 0
#define DSQL_VERSION_MINOR 1
#define DSQL_VERSION_PATCH 0
#define DSQL_VERSION_STRING "0.1.0"

#if defined(__GNUC__) && __GNUC__ >= 4
#define DSQL_API __attribute__((visibility("default")))
#else
#define DSQL_API
#endif

/* Version of the caller-filled structs and vtables in this header set. */
#define DSQL_STRUCT_VERSION 1

typedef enum dsql_status {
    DSQL_OK = 0,
    DSQL_EINVAL,        /* an argument or input value is invalid */
    DSQL_ENOMEM,        /* an allocation failed */
    DSQL_EBUFSIZE,      /* output buffer too small; the needed size is reported */
    DSQL_ECREDENTIALS,  /* no usable credentials, or credentials are malformed */
    DSQL_EEXPIRED,      /* credentials or token have expired */
    DSQL_ECONFIG,       /* configuration file or setting is malformed */
    DSQL_EIO,           /* local I/O error (file, process) */
    DSQL_ENETWORK,      /* network or HTTP error */
    DSQL_ETIMEOUT,      /* an operation timed out */
    DSQL_EPARSE,        /* a response could not be parsed */
    DSQL_ETLS,          /* TLS handshake or certificate verification failed */
    DSQL_EAUTH,         /* the server refused the login */
    DSQL_ESERVER,       /* the server reported an error */
    DSQL_ECONFLICT,     /* optimistic concurrency conflict (SQLSTATE 40001) */
    DSQL_EUNKNOWN_COMMIT, /* connection lost after COMMIT was sent */
    DSQL_EINTERNAL,     /* a bug: please report it */
    DSQL_ECANCELLED     /* the caller's cancel callback stopped the operation
                           (DSQL_ETIMEOUT: its deadline passed) */
} dsql_status;

/* Caller-owned error detail; pass NULL wherever you do not want it. */
typedef struct dsql_error {
    dsql_status status;
    char sqlstate[6];   /* SQLSTATE from the server, "" when none */
    char message[512];  /* never contains a secret, signature or token */
} dsql_error;

/* Short constant name for a status, e.g. "DSQL_EINVAL". */
DSQL_API const char *dsql_status_name(dsql_status status);
/* "0.1.0": the version of the library actually linked. */
DSQL_API const char *dsql_version(void);

/* Replace the allocator used for every allocation the library makes.
 * Call before any other dsql_ function; not thread-safe. NULL restores libc. */
typedef void *(*dsql_malloc_fn)(size_t size);
typedef void *(*dsql_realloc_fn)(void *ptr, size_t size);
typedef void (*dsql_free_fn)(void *ptr);
DSQL_API void dsql_set_allocator(dsql_malloc_fn m, dsql_realloc_fn r, dsql_free_fn f);

typedef enum dsql_log_level {
    DSQL_LOG_ERROR = 0,
    DSQL_LOG_WARN = 1,
    DSQL_LOG_INFO = 2,
    DSQL_LOG_DEBUG = 3
} dsql_log_level;

/* Log messages never contain secrets, signatures or tokens. */
typedef void (*dsql_log_fn)(dsql_log_level level, const char *message, void *userdata);
/* Install a log callback (NULL disables logging) that receives messages at
 * or below max_level. Set it before using the library from several threads. */
DSQL_API void dsql_set_log_handler(dsql_log_fn fn, dsql_log_level max_level, void *userdata);

#ifdef __cplusplus
}
#endif
#endif
