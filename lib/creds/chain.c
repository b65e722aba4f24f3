/* The chain provider and the default chain.
 *
 * Default order (botocore's, see dsql_credentials_provider_default(3)):
 *   1. environment keys          (skipped for an explicitly given profile)
 *   2. the profile               (role_arn / web identity / SSO / static keys /
 *                                 credential_process, lib/creds/profile.c)
 *   3. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *   4. container (ECS / EKS Pod Identity)
 *   5. EC2 IMDSv2
 * A source that is configured (its variables set, its profile present with
 * credential settings) but fails ends the chain with its error; botocore
 * does the same. Divergence: botocore tries the environment's web identity
 * before the profile's SSO / static keys / credential_process; we only
 * after the profile, so a profile the user wrote wins. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

typedef struct chain {
    dsql_credentials_provider **p;
    size_t n;
} chain;

static dsql_status chain_get(void *self, dsql_credentials *out, dsql_error *err)
{
    chain *c = self;
    char msg[sizeof err->message] = "no credentials in the chain:";
    size_t used = strlen(msg);
    for (size_t i = 0; i < c->n; i++) {
        dsql_error e;
        memset(&e, 0, sizeof e);
        dsql_status st = dsql_credentials_provider_get(c->p[i], out, &e);
        if (st == DSQL_OK) {
            dsql__log(DSQL_LOG_DEBUG, "chain: credentials from provider %zu", i + 1);
            return DSQL_OK;
        }
        if (st != DSQL_ECREDENTIALS) {
            if (err)
                *err = e;
            return st;
        }
        if (used < sizeof msg - 1) {
            int w = snprintf(msg + used, sizeof msg - used, "%s%s", i ? "; " : " ", e.message);
            used = w < 0 ? used : used + (size_t)w;
        }
    }
    return dsql__error(err, DSQL_ECREDENTIALS, "%s", msg);
}

static void chain_destroy(void *self)
{
    chain *c = self;
    for (size_t i = 0; i < c->n; i++)
        dsql_credentials_provider_free(c->p[i]);
    dsql__free(c->p);
    dsql__free(c);
}

static const dsql_credentials_provider_vtable CHAIN_VTABLE = {DSQL_STRUCT_VERSION, chain_get,
                                                              chain_destroy};

dsql_credentials_provider *
dsql_credentials_provider_chain(dsql_credentials_provider *const *providers, size_t n,
                                dsql_error *err)
{
    if (!providers && n) {
        dsql__error(err, DSQL_EINVAL, "chain provider: providers is NULL");
        return NULL;
    }
    chain *c = dsql__calloc(1, sizeof *c);
    dsql_credentials_provider **arr = dsql__calloc(n ? n : 1, sizeof *arr);
    if (!c || !arr) {
        dsql__free(c);
        dsql__free(arr);
        for (size_t i = 0; i < n; i++)
            dsql_credentials_provider_free(providers[i]);
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a chain provider");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!providers[i]) {
            for (size_t j = 0; j < n; j++)
                dsql_credentials_provider_free(providers[j]);
            dsql__free(arr);
            dsql__free(c);
            dsql__error(err, DSQL_EINVAL, "chain provider: provider %zu is NULL", i);
            return NULL;
        }
        arr[i] = providers[i];
    }
    c->p = arr;
    c->n = n;
    dsql_credentials_provider *p = dsql_credentials_provider_new(&CHAIN_VTABLE, c, err);
    if (!p)
        chain_destroy(c);
    return p;
}

/* ---- the default chain ------------------------------------------------ */

typedef struct defchain {
    char *profile; /* explicit profile or NULL */
    dsql_credentials_provider *env, *web_identity, *container, *imds;
} defchain;

static int env_set(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return 0;
    while (*v == ' ' || *v == '\t') /* blank counts as unset, as in the SDKs */
        v++;
    return *v != '\0';
}

static dsql_status def_get(void *self, dsql_credentials *out, dsql_error *err)
{
    defchain *d = self;
    if (!d->profile && (env_set("AWS_ACCESS_KEY_ID") || env_set("AWS_SECRET_ACCESS_KEY"))) {
        dsql__log(DSQL_LOG_DEBUG, "default chain: using environment keys");
        return dsql_credentials_provider_get(d->env, out, err);
    }
    int absent = 0;
    dsql_error pe;
    memset(&pe, 0, sizeof pe);
    dsql_status st = dsql__profile_resolve(d->profile, out, &absent, &pe);
    if (st == DSQL_OK)
        return DSQL_OK;
    int named = d->profile || env_set("AWS_PROFILE");
    if (!absent || (st == DSQL_ECONFIG && named)) {
        if (err)
            *err = pe;
        return st;
    }
    dsql__log(DSQL_LOG_DEBUG, "default chain: %s", pe.message);
    if (env_set("AWS_WEB_IDENTITY_TOKEN_FILE")) {
        dsql__log(DSQL_LOG_DEBUG, "default chain: using web identity (environment)");
        return dsql_credentials_provider_get(d->web_identity, out, err);
    }
    if (env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ||
        env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        dsql__log(DSQL_LOG_DEBUG, "default chain: using container credentials");
        return dsql_credentials_provider_get(d->container, out, err);
    }
    dsql_error ie;
    memset(&ie, 0, sizeof ie);
    st = dsql_credentials_provider_get(d->imds, out, &ie);
    if (st == DSQL_OK)
        return DSQL_OK;
    return dsql__error(err, st == DSQL_ENOMEM ? DSQL_ENOMEM : DSQL_ECREDENTIALS,
                       "no credentials found: environment keys %s; %s; web identity and "
                       "container variables not set; IMDS: %s",
                       d->profile ? "skipped (explicit profile)" : "not set", pe.message,
                       ie.message);
}

static void def_destroy(void *self)
{
    defchain *d = self;
    dsql_credentials_provider_free(d->env);
    dsql_credentials_provider_free(d->web_identity);
    dsql_credentials_provider_free(d->container);
    dsql_credentials_provider_free(d->imds);
    dsql__free(d->profile);
    dsql__free(d);
}

static const dsql_credentials_provider_vtable DEFAULT_VTABLE = {DSQL_STRUCT_VERSION, def_get,
                                                                def_destroy};

dsql_credentials_provider *dsql_credentials_provider_default(const char *profile,
                                                             dsql_error *err)
{
    defchain *d = dsql__calloc(1, sizeof *d);
    if (!d) {
        dsql__error(err, DSQL_ENOMEM, "out of memory creating the default chain");
        return NULL;
    }
    if ((profile && profile[0] && !(d->profile = dsql__strdup(profile)))) {
        def_destroy(d);
        dsql__error(err, DSQL_ENOMEM, "out of memory creating the default chain");
        return NULL;
    }
    if (!(d->env = dsql_credentials_provider_env(err)) ||
        !(d->web_identity = dsql_credentials_provider_web_identity(err)) ||
        !(d->container = dsql_credentials_provider_container(err)) ||
        !(d->imds = dsql_credentials_provider_imds(err))) {
        def_destroy(d);
        return NULL;
    }
    dsql_credentials_provider *p = dsql_credentials_provider_new(&DEFAULT_VTABLE, d, err);
    if (!p) {
        def_destroy(d);
        return NULL;
    }
    return dsql_credentials_provider_cached(p, err);
}
