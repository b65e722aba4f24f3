/* The adapter kit (include/dsqlauth/adapter.h): the pieces every database
 * adapter needs, written once for the libpq and ODBC adapters and any
 * adapter written after doc/ADAPTERS.md. */
#include "internal.h"
#include "dsqlauth/adapter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

dsql_status dsql_error_set(dsql_error *err, dsql_status st, const char *fmt, ...)
{
    if (err) {
        err->status = st;
        err->sqlstate[0] = '\0';
        err->message[0] = '\0';
        if (fmt) { /* a NULL format leaves an empty message */
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err->message, sizeof err->message, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

dsql_status dsql_config_resolve_view(const dsql_config *cfg, const dsql_config **view,
                                     dsql_config **own, dsql_error *err)
{
    if (!view || !own)
        return dsql__error(err, DSQL_EINVAL, "view or own is NULL");
    *view = NULL;
    *own = NULL;
    if (!cfg)
        return dsql__error(err, DSQL_EINVAL, "configuration is NULL");
    if (dsql_config_host_count(cfg) > 0) { /* resolved: it always has a host */
        *view = cfg;
        return DSQL_OK;
    }
    dsql_error e = {DSQL_ENOMEM, "", "out of memory copying the configuration"};
    dsql_config *copy = dsql_config_dup(cfg, &e);
    dsql_status st = copy ? dsql_config_resolve(copy, &e) : e.status;
    if (st != DSQL_OK) {
        dsql_config_free(copy);
        if (err)
            *err = e;
        return st;
    }
    *view = *own = copy;
    return DSQL_OK;
}

dsql_status dsql_token_request_for_host(const dsql_config *cfg, size_t host_index,
                                        dsql_token_request *req, dsql_error *err)
{
    if (!req)
        return dsql__error(err, DSQL_EINVAL, "req is NULL");
    dsql_config_host h;
    dsql_status st = dsql_config_host_at(cfg, host_index, &h, err);
    if (st != DSQL_OK)
        return st;
    /* resolved: "token_duration_secs" is a number in 1..604800 */
    const char *secs = dsql_config_get(cfg, "token_duration_secs");
    *req = (dsql_token_request){DSQL_STRUCT_VERSION,
                                h.signing_host,
                                dsql_config_get(cfg, "user"),
                                h.region,
                                secs ? (uint32_t)strtoul(secs, NULL, 10) : 0,
                                0};
    return DSQL_OK;
}

dsql_status dsql_token_get_for_host(dsql_token_provider *provider, const dsql_config *cfg,
                                    size_t host_index, char **token, size_t *len,
                                    dsql_error *err)
{
    if (len)
        *len = 0;
    if (!token)
        return dsql__error(err, DSQL_EINVAL, "token is NULL");
    *token = NULL;
    dsql_token_request req;
    dsql_status st = dsql_token_request_for_host(cfg, host_index, &req, err);
    if (st != DSQL_OK)
        return st;
    /* NULL: the process-wide default for the profile, fetched once */
    if (!provider && !(provider = dsql_token_provider_shared(cfg, err)))
        return err ? err->status : DSQL_ENOMEM;
    return dsql_token_provider_get_alloc(provider, &req, token, len, err);
}

const char *dsql_ca_bundle_find(void)
{
    static const char *const paths[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, Arch */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL, Amazon Linux */
        "/etc/ssl/ca-bundle.pem",             /* openSUSE */
        "/etc/ssl/cert.pem",                  /* macOS, BSDs */
        NULL};
    const char *env = getenv("SSL_CERT_FILE");
    if (env && *env && access(env, R_OK) == 0)
        return env;
    for (size_t i = 0; paths[i]; i++)
        if (access(paths[i], R_OK) == 0)
            return paths[i];
    return NULL;
}
