/* The token provider handle, and the default implementation: a caching
 * signer over a credentials provider. */
#include "internal.h"
#include "creds/cache.h"

#include <string.h>

dsql_token_provider *dsql_token_provider_new(const dsql_token_provider_vtable *vtable,
                                             void *self, dsql_error *err)
{
    if (!vtable || !vtable->token || vtable->version != DSQL_STRUCT_VERSION) {
        dsql__error(err, DSQL_EINVAL,
                    "token provider vtable is NULL, has no token(), or has a version "
                    "other than %d",
                    DSQL_STRUCT_VERSION);
        return NULL;
    }
    dsql_token_provider *p = dsql__malloc(sizeof *p);
    if (!p) {
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a token provider");
        return NULL;
    }
    p->vtable = vtable;
    p->self = self;
    p->shared = 0;
    return p;
}

void dsql__token_provider_mark_shared(dsql_token_provider *p) { p->shared = 1; }

dsql_status dsql_token_provider_get(dsql_token_provider *p, const dsql_token_request *req,
                                      char *buf, size_t cap, size_t *len, dsql_error *err)
{
    if (buf && cap)
        buf[0] = '\0';
    if (!p)
        return dsql__error(err, DSQL_EINVAL, "token provider is NULL");
    if (!req || req->version != DSQL_STRUCT_VERSION)
        return dsql__error(err, DSQL_EINVAL, "token request is NULL or has a version other "
                           "than %d", DSQL_STRUCT_VERSION);
    dsql_status st = p->vtable->token(p->self, req, buf, cap, len, err);
    if (st != DSQL_OK && buf && cap)
        buf[0] = '\0'; /* never hand out part of a token */
    return st;
}

void dsql_token_provider_free(dsql_token_provider *p)
{
    if (!p || p->shared) /* shared ones live as long as the process */
        return;
    if (p->vtable->destroy)
        p->vtable->destroy(p->self);
    dsql__free(p);
}

typedef struct signing_provider {
    dsql_signer *signer;
    dsql_credentials_provider *creds;
    int cached; /* creds is a caching provider: borrow, do not copy */
    char *region;
    uint32_t expires_in;
} signing_provider;

static dsql_status signing_token(void *self, const dsql_token_request *req, char *buf,
                                 size_t cap, size_t *len, dsql_error *err)
{
    signing_provider *sp = self;
    /* a caching provider (the default chain is one) lends its current
     * credentials for the signature; any other provider's are copied */
    dsql_credentials copy;
    const dsql_credentials *creds = &copy;
    dsql__creds_snapshot *snap = NULL;
    dsql_status st = sp->cached ? dsql__cached_borrow(sp->creds, &snap, &creds, err)
                                : dsql_credentials_provider_get(sp->creds, &copy, err);
    if (st != DSQL_OK)
        return st;
    dsql_token_request params = {DSQL_STRUCT_VERSION,
                                req->hostname,
                                req->user,
                                req->region && req->region[0] ? req->region : NULL,
                                req->expires_in ? req->expires_in : sp->expires_in,
                                req->now};
    /* the provider's region applies only when the hostname names none */
    char discovered[DSQL_REGION_MAX + 1];
    if (!params.region && sp->region &&
        dsql_region_from_hostname(req->hostname, discovered, sizeof discovered, NULL) !=
            DSQL_OK)
        params.region = sp->region;
    dsql__session_known known = {NULL, 0, 0};
    if (snap)
        dsql__snapshot_session(snap, &known);
    st = dsql__signer_token_enc(sp->signer, &params, creds, &known, buf, cap, len, err);
    if (snap)
        dsql__cached_return(snap);
    else
        dsql_credentials_clear(&copy);
    return st;
}

static void signing_destroy(void *self)
{
    signing_provider *sp = self;
    dsql__signer_free(sp->signer);
    dsql_credentials_provider_free(sp->creds);
    dsql__free(sp->region);
    dsql__free(sp);
}

static const dsql_token_provider_vtable SIGNING_VTABLE = {DSQL_STRUCT_VERSION, signing_token,
                                                          signing_destroy};

dsql_token_provider *dsql_token_provider_signing(dsql_credentials_provider *creds,
                                                 const dsql_token_provider_options *opt,
                                                 dsql_error *err)
{
    if (!creds) {
        dsql__error(err, DSQL_EINVAL, "credentials provider is NULL");
        return NULL;
    }
    if (opt && opt->version != DSQL_STRUCT_VERSION) {
        dsql_credentials_provider_free(creds);
        dsql__error(err, DSQL_EINVAL, "token provider options have version %d; expected %d",
                    opt->version, DSQL_STRUCT_VERSION);
        return NULL;
    }
    if (opt && opt->expires_in > DSQL_TOKEN_MAX_EXPIRES) {
        dsql_credentials_provider_free(creds);
        dsql__error(err, DSQL_EINVAL, "expires_in %u is outside 1..%u", opt->expires_in,
                    DSQL_TOKEN_MAX_EXPIRES);
        return NULL;
    }
    signing_provider *sp = dsql__calloc(1, sizeof *sp);
    if (!sp) {
        dsql_credentials_provider_free(creds);
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a token provider");
        return NULL;
    }
    sp->creds = creds;
    sp->cached = dsql__is_cached(creds);
    sp->expires_in = opt && opt->expires_in ? opt->expires_in : DSQL_TOKEN_DEFAULT_EXPIRES;
    if (opt && opt->region && opt->region[0] && !(sp->region = dsql__strdup(opt->region))) {
        signing_destroy(sp);
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a token provider");
        return NULL;
    }
    if (!(sp->signer = dsql__signer_new(err))) {
        signing_destroy(sp);
        return NULL;
    }
    dsql_token_provider *p = dsql_token_provider_new(&SIGNING_VTABLE, sp, err);
    if (!p)
        signing_destroy(sp);
    return p;
}
