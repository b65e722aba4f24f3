/* Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, read at every get() so a changed environment is seen. */
#include "../internal.h"

#include <stdlib.h>

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static dsql_status env_get(void *self, dsql_credentials *out, dsql_error *err)
{
    (void)self;
    const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
    const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
    if (!akid && !secret)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are "
                           "not set");
    if (!secret)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "environment: AWS_ACCESS_KEY_ID is set but "
                           "AWS_SECRET_ACCESS_KEY is not");
    if (!akid)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "environment: AWS_SECRET_ACCESS_KEY is set but "
                           "AWS_ACCESS_KEY_ID is not");
    dsql_credentials view = {(char *)akid, (char *)secret,
                             (char *)env_nonempty("AWS_SESSION_TOKEN"), 0};
    return dsql_credentials_copy(out, &view, err);
}

static const dsql_credentials_provider_vtable ENV_VTABLE = {DSQL_STRUCT_VERSION, env_get,
                                                            NULL};

dsql_credentials_provider *dsql_credentials_provider_env(dsql_error *err)
{
    return dsql_credentials_provider_new(&ENV_VTABLE, NULL, err);
}
