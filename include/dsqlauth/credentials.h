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

/* ECS task role / EKS Pod Identity credentials over HTTP, read from the
 * environment at every get(): AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * (http://169.254.170.2 + the path) or else AWS_CONTAINER_CREDENTIALS_FULL_URI
 * (plain http only for loopback, 169.254.170.2, 169.254.170.23 and
 * [fd00:ec2::23]; https anywhere), with the Authorization header from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read at every get()) or
 * AWS_CONTAINER_AUTHORIZATION_TOKEN. Neither URI set: DSQL_ECREDENTIALS.
 * Timeout AWS_METADATA_SERVICE_TIMEOUT (seconds, default 2), attempts
 * AWS_METADATA_SERVICE_NUM_ATTEMPTS (default 3). */
DSQL_API dsql_credentials_provider *dsql_credentials_provider_container(dsql_error *err);

/* EC2 instance role credentials from IMDSv2: a session token (PUT
 * /latest/api/token), the role name, then the role's credentials.
 * AWS_EC2_METADATA_DISABLED=true makes get() fail at once;
 * AWS_EC2_METADATA_SERVICE_ENDPOINT replaces http://169.254.169.254.
 * Timeout AWS_METADATA_SERVICE_TIMEOUT (seconds, default 1) per request,
 * attempts AWS_METADATA_SERVICE_NUM_ATTEMPTS (default 2). */
DSQL_API dsql_credentials_provider *dsql_credentials_provider_imds(dsql_error *err);

/* STS AssumeRoleWithWebIdentity (EKS IRSA and the like) from the
 * environment, read at every get(): AWS_WEB_IDENTITY_TOKEN_FILE (re-read at
 * every get()), AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME (optional). The STS
 * region is AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1; the
 * endpoint AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else
 * https://sts.<region>.amazonaws.com. */
DSQL_API dsql_credentials_provider *dsql_credentials_provider_web_identity(dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
