/* libdsqlauth: AWS credentials and credentials providers.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth). */
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

/* Credentials from a named profile in the shared files: AWS_CONFIG_FILE
 * (default ~/.aws/config, sections `[profile x]`, bare only `[default]`) and
 * AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials, sections `[x]`;
 * it wins for the same key). profile NULL or "": AWS_PROFILE, else
 * "default", looked up at every get(). Handles static keys (with
 * aws_session_token), credential_process, role_arn with source_profile
 * (any number of hops; a cycle is an error naming it) or credential_source
 * (Environment, Ec2InstanceMetadata, EcsContainer), external_id,
 * role_session_name, duration_seconds, web_identity_token_file, and SSO
 * (sso_session or legacy sso_start_url, with the token cached by
 * `aws sso login`). A missing profile is DSQL_ECONFIG; a profile without
 * credential settings is DSQL_ECREDENTIALS. */
DSQL_API dsql_credentials_provider *dsql_credentials_provider_profile(const char *profile,
                                                                      dsql_error *err);

/* Tries providers[0..n-1] in order and returns the first success. A
 * provider failing with DSQL_ECREDENTIALS ("nothing here") passes on to the
 * next; any other failure stops the chain and is returned. When all pass,
 * the error lists every provider's message. Takes ownership of the n
 * providers (freed with the chain, also when this call fails); the array
 * itself stays the caller's. */
DSQL_API dsql_credentials_provider *
dsql_credentials_provider_chain(dsql_credentials_provider *const *providers, size_t n,
                                dsql_error *err);

/* The default chain, in botocore's order: environment keys (skipped when
 * `profile` is given explicitly) -> the profile (role_arn / web identity /
 * SSO / static keys / credential_process) -> AWS_WEB_IDENTITY_TOKEN_FILE ->
 * container (ECS/EKS) -> EC2 IMDSv2. A provider that is configured but
 * fails stops the chain with its error (a key id without a secret, an
 * explicitly requested or AWS_PROFILE profile that does not exist, an
 * expired SSO token). The result is already cached
 * (dsql_credentials_provider_cached); profile NULL or "": AWS_PROFILE, else
 * "default". */
DSQL_API dsql_credentials_provider *dsql_credentials_provider_default(const char *profile,
                                                                      dsql_error *err);

/* What dsql_credentials_provider_assume_role assumes. Fill with
 * dsql_assume_role_options_init, then set role_arn and what you need. */
typedef struct dsql_assume_role_options {
    int version;                   /* DSQL_STRUCT_VERSION */
    const char *role_arn;          /* required: arn:aws:iam::<account>:role/<name> */
    const char *role_session_name; /* NULL: "dsqlauth-<unix time>"; else 2..64
                                      of A-Za-z0-9_+=,.@- (shows in CloudTrail) */
    const char *external_id;       /* NULL: none (a third party's role asks for one) */
    int duration_seconds;          /* 0: STS's default (3600); else 900..43200 */
    const char *const *policy_arns; /* managed session policies (NULL: none):
                                       policy_arn_count ARNs, at most 10 */
    size_t policy_arn_count;
    const char *region;            /* STS region; NULL: AWS_REGION, else
                                      AWS_DEFAULT_REGION, else us-east-1. The
                                      endpoint: AWS_ENDPOINT_URL_STS, else
                                      AWS_ENDPOINT_URL, else
                                      https://sts.<region>.amazonaws.com */
} dsql_assume_role_options;

/* Fill *opts with no role and the defaults above. NULL is allowed. */
DSQL_API void dsql_assume_role_options_init(dsql_assume_role_options *opts);

/* Credentials of an assumed role: STS AssumeRole signed with source's
 * credentials (borrowed: it must outlive the result; NULL: a default chain
 * of its own, dsql_credentials_provider_default(NULL)). The options are
 * checked and copied here (bad ones: NULL with DSQL_EINVAL/DSQL_ECONFIG
 * naming the field). The result is cached and refreshed ahead of expiry
 * exactly as dsql_credentials_provider_cached does; every provider made
 * here has its own cache, so a process assuming many roles keeps each
 * role's credentials apart (share one source between them: its own
 * cache then serves every role). Thread-safe. */
DSQL_API dsql_credentials_provider *
dsql_credentials_provider_assume_role(dsql_credentials_provider *source,
                                      const dsql_assume_role_options *opts, dsql_error *err);

/* Caches what `inner` returns (takes ownership; freed with the cache, also
 * when this call fails). Credentials without an expiration are kept for
 * ever. Within the advisory window (5 minutes before expiry) one caller
 * refreshes while the others keep using the cached value, and a failed
 * refresh keeps the still-valid credentials; within the mandatory window
 * (1 minute) callers wait for the refresh and its failure is returned.
 * Only one fetch runs at a time (single-flight); failures are not cached.
 * Thread-safe. */
DSQL_API dsql_credentials_provider *
dsql_credentials_provider_cached(dsql_credentials_provider *inner, dsql_error *err);

/* The region to use when a hostname names none: explicit_region when
 * non-empty, else AWS_REGION, else AWS_DEFAULT_REGION, else the `region`
 * of the profile (profile NULL or "": AWS_PROFILE, else "default") in the
 * shared files. Copies it with its NUL into buf; DSQL_EBUFSIZE when cap is
 * too small, DSQL_ECONFIG when none is set. Logs at debug level which
 * source was used. */
DSQL_API dsql_status dsql_region_resolve(const char *explicit_region, const char *profile,
                                         char *buf, size_t cap, dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
