/* libdsqlauth: AWS credentials and credentials providers. */
#ifndef DSQLAUTH_CREDENTIALS_H
#define DSQLAUTH_CREDENTIALS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A set of AWS credentials. When filled by a provider the strings are heap
 * copies owned by the struct: release them with dsql_credentials_clear().
 * When you fill it yourself to sign a token, point at your own strings and
 * do not call dsql_credentials_clear(). */
typedef struct dsql_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;  /* NULL or "" when the credentials are long-term */
    int64_t expiration;   /* Unix seconds; 0 when they do not expire */
} dsql_credentials;

/* Wipe the secrets, free the strings and zero the struct. NULL is allowed. */
DSQL_API void dsql_credentials_clear(dsql_credentials *creds);
/* Deep copy (for providers): dst receives heap copies of src's strings. */
DSQL_API dsql_status dsql_credentials_copy(dsql_credentials *dst,
                                           const dsql_credentials *src,
                                           dsql_error *err);

/* A credentials source. get() fills *out (heap strings, caller clears) or
 * returns an error; it may be called from several threads at once. */
typedef struct dsql_credentials_provider_vtable {
    int version; /* DSQL_STRUCT_VERSION */
    dsql_status (*get)(void *self, dsql_credentials *out, dsql_error *err);
    void (*destroy)(void *self);
} dsql_credentials_provider_vtable;

typedef struct dsql_credentials_provider dsql_credentials_provider;

/* Wrap your own implementation; destroy(self) is called by _free. */
DSQL_API dsql_credentials_provider *
dsql_credentials_provider_new(const dsql_credentials_provider_vtable *vtable,
                              void *self, dsql_error *err);
DSQL_API dsql_status dsql_credentials_provider_get(dsql_credentials_provider *p,
                                                   dsql_credentials *out,
                                                   dsql_error *err);
DSQL_API void dsql_credentials_provider_free(dsql_credentials_provider *p);

/* Always returns a copy of the given credentials. */
DSQL_API dsql_credentials_provider *
dsql_credentials_provider_static(const dsql_credentials *creds, dsql_error *err);

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, read on
 * every get(). Empty values count as unset; a key id without a secret
 * (or the reverse) is DSQL_ECREDENTIALS. */
DSQL_API dsql_credentials_provider *dsql_credentials_provider_env(dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
