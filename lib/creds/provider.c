/* dsql_credentials helpers, the provider handle, and the static provider. */
#include "../internal.h"

#include <string.h>

void dsql_credentials_clear(dsql_credentials *c)
{
    if (!c)
        return;
    dsql__free_secret(c->access_key_id);
    dsql__free_secret(c->secret_access_key);
    dsql__free_secret(c->session_token);
    memset(c, 0, sizeof *c);
}

dsql_status dsql_credentials_copy(dsql_credentials *dst, const dsql_credentials *src,
                                  dsql_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (!src || !src->access_key_id || !src->secret_access_key)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "credentials need an access key id and a secret access key");
    dst->access_key_id = dsql__strdup(src->access_key_id);
    dst->secret_access_key = dsql__strdup(src->secret_access_key);
    if (src->session_token && src->session_token[0])
        dst->session_token = dsql__strdup(src->session_token);
    dst->expiration = src->expiration;
    if (!dst->access_key_id || !dst->secret_access_key ||
        (src->session_token && src->session_token[0] && !dst->session_token)) {
        dsql_credentials_clear(dst);
        return dsql__error(err, DSQL_ENOMEM, "out of memory copying credentials");
    }
    return DSQL_OK;
}

dsql_credentials_provider *
dsql_credentials_provider_new(const dsql_credentials_provider_vtable *vtable, void *self,
                              dsql_error *err)
{
    if (!vtable || !vtable->get || vtable->version != DSQL_STRUCT_VERSION) {
        dsql__error(err, DSQL_EINVAL,
                    "credentials provider vtable is NULL, has no get(), or has a version "
                    "other than %d",
                    DSQL_STRUCT_VERSION);
        return NULL;
    }
    dsql_credentials_provider *p = dsql__malloc(sizeof *p);
    if (!p) {
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a credentials provider");
        return NULL;
    }
    p->vtable = vtable;
    p->self = self;
    return p;
}

dsql_status dsql_credentials_provider_get(dsql_credentials_provider *p, dsql_credentials *out,
                                          dsql_error *err)
{
    if (!out)
        return dsql__error(err, DSQL_EINVAL, "credentials output is NULL");
    memset(out, 0, sizeof *out);
    if (!p)
        return dsql__error(err, DSQL_EINVAL, "credentials provider is NULL");
    dsql_status st = p->vtable->get(p->self, out, err);
    if (st != DSQL_OK)
        dsql_credentials_clear(out);
    return st;
}

void dsql_credentials_provider_free(dsql_credentials_provider *p)
{
    if (!p)
        return;
    if (p->vtable->destroy)
        p->vtable->destroy(p->self);
    dsql__free(p);
}

static dsql_status static_get(void *self, dsql_credentials *out, dsql_error *err)
{
    return dsql_credentials_copy(out, self, err);
}

static void static_destroy(void *self)
{
    dsql_credentials_clear(self);
    dsql__free(self);
}

static const dsql_credentials_provider_vtable STATIC_VTABLE = {
    DSQL_STRUCT_VERSION, static_get, static_destroy};

dsql_credentials_provider *dsql_credentials_provider_static(const dsql_credentials *creds,
                                                            dsql_error *err)
{
    dsql_credentials *copy = dsql__malloc(sizeof *copy);
    if (!copy) {
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a static provider");
        return NULL;
    }
    if (dsql_credentials_copy(copy, creds, err) != DSQL_OK) {
        dsql__free(copy);
        return NULL;
    }
    dsql_credentials_provider *p = dsql_credentials_provider_new(&STATIC_VTABLE, copy, err);
    if (!p)
        static_destroy(copy);
    return p;
}
