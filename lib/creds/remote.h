/* Internal contract between the profile provider and the HTTP-based AWS
 * calls (STS, SSO) in lib/creds/. Every function fills *out with heap
 * credentials (expiration set) on success and never logs a secret. */
#ifndef DSQLAUTH_CREDS_REMOTE_H
#define DSQLAUTH_CREDS_REMOTE_H

#include "../internal.h"

typedef struct dsql__assume_role_params {
    const char *role_arn;          /* required */
    const char *role_session_name; /* NULL: a generated name */
    const char *external_id;       /* NULL: none */
    int duration_seconds;          /* 0: STS default (3600) */
    const char *region;            /* NULL: global endpoint us-east-1 */
    const char *const *policy_arns; /* managed session policies; NULL: none */
    size_t policy_arn_count;
} dsql__assume_role_params;

/* STS AssumeRole, signed (SigV4 header mode) with the source credentials.
 * Endpoint: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else
 * https://sts.<region>.amazonaws.com. */
dsql_status dsql__sts_assume_role(const dsql_credentials *source,
                                  const dsql__assume_role_params *p,
                                  dsql_credentials *out, dsql_error *err);

/* The checks dsql__sts_assume_role makes on p before any request:
 * role_arn set, role_session_name and duration_seconds in range. */
dsql_status dsql__sts_check_params(const char *what, const dsql__assume_role_params *p,
                                   dsql_error *err);

/* STS AssumeRoleWithWebIdentity (unsigned); web_identity_token is the
 * token file's content. */
dsql_status dsql__sts_assume_role_with_web_identity(const dsql__assume_role_params *p,
                                                    const char *web_identity_token,
                                                    dsql_credentials *out,
                                                    dsql_error *err);

/* SSO GetRoleCredentials with a cached access token. Endpoint:
 * AWS_ENDPOINT_URL_SSO, else https://portal.sso.<region>.amazonaws.com. */
dsql_status dsql__sso_get_role_credentials(const char *sso_region, const char *access_token,
                                           const char *account_id, const char *role_name,
                                           dsql_credentials *out, dsql_error *err);

#endif
