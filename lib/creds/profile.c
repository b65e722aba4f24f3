/* The shared-profile credentials provider. A profile becomes a plan: one
 * base source (static keys, credential_source, web identity, SSO,
 * credential_process) plus the AssumeRole hops of a role_arn /
 * source_profile chain, resolved the way botocore and smithy-rs do:
 * - the selected profile's role_arn wins over its own static keys;
 * - a source profile's static keys win over its role_arn (the chain stops);
 * - source_profile naming the profile itself uses that profile's keys;
 * - any other revisit is a loop, reported with the whole cycle. */
#include "profile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../strbuf.h"
#include "remote.h"
#include "remote_util.h"

#define MAX_HOPS 64

void dsql__profile_plan_free(dsql__profile_plan *plan)
{
    if (!plan)
        return;
    dsql__free((void *)plan->hops);
    memset(plan, 0, sizeof *plan);
}

static const char *get(const dsql__section *s, const char *k)
{
    return dsql__section_get_nonempty(s, k);
}

static dsql_status static_keys_check(const dsql__section *s, dsql_error *err)
{
    const char *akid = get(s, "aws_access_key_id"), *secret = get(s, "aws_secret_access_key");
    if (akid && !secret)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "profile `%s`: aws_access_key_id is set but aws_secret_access_key "
                           "is not (profile missing aws_secret_access_key)",
                           s->name);
    if (!akid && secret)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "profile `%s`: aws_secret_access_key is set but aws_access_key_id "
                           "is not (profile missing aws_access_key_id)",
                           s->name);
    return DSQL_OK;
}

static int has_static(const dsql__section *s)
{
    return get(s, "aws_access_key_id") || get(s, "aws_secret_access_key");
}

static dsql_status sso_check(const dsql__profiles *set, const dsql__section *s,
                             dsql__profile_plan *plan, dsql_error *err)
{
    const char *session = get(s, "sso_session");
    const char *account = get(s, "sso_account_id"), *role = get(s, "sso_role_name");
    if (role && !account)
        return dsql__error(err, DSQL_ECONFIG,
                           "profile `%s`: if `sso_role_name` is set, then `sso_account_id` "
                           "must also be set",
                           s->name);
    if (account && !role)
        return dsql__error(err, DSQL_ECONFIG,
                           "profile `%s`: if `sso_account_id` is set, then `sso_role_name` "
                           "must also be set",
                           s->name);
    if (session) {
        const dsql__section *ss =
            dsql__profiles_find(set, DSQL__SECTION_SSO_SESSION, session);
        if (!ss)
            return dsql__error(err, DSQL_ECONFIG,
                               "sso-session named `%s` (referenced by profile `%s`) was not "
                               "found",
                               session, s->name);
        static const char *const shared[] = {"sso_region", "sso_start_url"};
        for (int i = 0; i < 2; i++) {
            const char *pv = get(s, shared[i]), *sv = get(ss, shared[i]);
            if (pv && (!sv || strcmp(pv, sv) != 0))
                return dsql__error(err, DSQL_ECONFIG,
                                   "profile `%s`: `%s` can only be specified in the "
                                   "[sso-session] config when a session name is given (and "
                                   "must match it)",
                                   s->name, shared[i]);
            if (!sv)
                return dsql__error(err, DSQL_ECONFIG, "sso-session `%s` has no %s", session,
                                   shared[i]);
        }
        plan->sso_session = ss;
    } else {
        static const char *const need[] = {"sso_start_url", "sso_region"};
        for (int i = 0; i < 2; i++)
            if (!get(s, need[i]))
                return dsql__error(err, DSQL_ECONFIG, "profile `%s`: SSO profile has no %s",
                                   s->name, need[i]);
    }
    return DSQL_OK; /* sso_account_id / sso_role_name are checked when run */
}

/* The base source of one profile; *absent when it has no credential settings. */
static dsql_status base_of(const dsql__profiles *set, const dsql__section *s,
                           dsql__profile_plan *plan, int *absent, dsql_error *err)
{
    plan->base_profile = s;
    if (get(s, "web_identity_token_file")) {
        if (!get(s, "role_arn"))
            return dsql__error(err, DSQL_ECONFIG,
                               "profile `%s`: web_identity_token_file is set but `role_arn` was "
                               "missing",
                               s->name);
        plan->base = DSQL__BASE_WEB_IDENTITY;
        return DSQL_OK;
    }
    if (get(s, "sso_session") || get(s, "sso_start_url") || get(s, "sso_account_id") ||
        get(s, "sso_role_name")) {
        plan->base = DSQL__BASE_SSO;
        return sso_check(set, s, plan, err);
    }
    if (has_static(s)) {
        plan->base = DSQL__BASE_STATIC;
        return static_keys_check(s, err);
    }
    if (get(s, "credential_process")) {
        plan->base = DSQL__BASE_PROCESS;
        return DSQL_OK;
    }
    if (absent)
        *absent = 1;
    return dsql__error(err, DSQL_ECREDENTIALS,
                       "profile `%s` did not contain credential information (no keys, "
                       "role_arn, web identity, SSO or credential_process)",
                       s->name);
}

static dsql_status loop_error(const dsql__profile_plan *plan, const dsql__section **visited,
                              size_t n, const char *again, dsql_error *err)
{
    (void)plan;
    dsql__strbuf sb = {0};
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(visited[i]->name, again) == 0)
            start = i;
    for (size_t i = start; i < n; i++) {
        dsql__sb_puts(&sb, visited[i]->name);
        dsql__sb_puts(&sb, " -> ");
    }
    dsql__sb_puts(&sb, again);
    char *cycle = dsql__sb_take(&sb);
    dsql__sb_free(&sb);
    if (!cycle)
        return dsql__error(err, DSQL_ENOMEM,
                           "out of memory reporting a source_profile loop at `%s`", again);
    dsql_status st = dsql__error(err, DSQL_ECONFIG,
                                 "profile formed an infinite loop in source_profile: %s", cycle);
    dsql__free(cycle);
    return st;
}

dsql_status dsql__profile_plan_build(const dsql__profiles *set, const char *name,
                                     dsql__profile_plan *plan, int *absent, dsql_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (absent)
        *absent = 0;
    const dsql__section *s = dsql__profiles_find(set, DSQL__SECTION_PROFILE, name);
    if (!s) {
        if (absent)
            *absent = 1;
        return dsql__error(err, DSQL_ECONFIG,
                           "profile `%s` not found in the shared config or credentials file",
                           name);
    }
    const dsql__section *visited[MAX_HOPS];
    size_t nv = 0;
    plan->hops = dsql__calloc(MAX_HOPS, sizeof *plan->hops);
    if (!plan->hops)
        return dsql__error(err, DSQL_ENOMEM, "out of memory resolving profile `%s`", name);
    dsql_status st = DSQL_OK;
    for (;;) {
        for (size_t i = 0; i < nv; i++)
            if (visited[i] == s) {
                st = loop_error(plan, visited, nv, s->name, err);
                goto out;
            }
        if (nv == MAX_HOPS) {
            st = dsql__error(err, DSQL_ECONFIG, "profile `%s`: source_profile chain longer "
                             "than %d", name, MAX_HOPS);
            goto out;
        }
        visited[nv++] = s;
        if (nv > 1 && has_static(s)) {
            plan->base_profile = s;
            plan->base = DSQL__BASE_STATIC;
            st = static_keys_check(s, err);
            goto out;
        }
        if (!get(s, "role_arn") || get(s, "web_identity_token_file")) {
            st = base_of(set, s, plan, nv == 1 ? absent : NULL, err);
            goto out;
        }
        plan->hops[plan->n_hops++] = s;
        const char *src = get(s, "source_profile"), *cs = get(s, "credential_source");
        if (src && cs) {
            st = dsql__error(err, DSQL_ECONFIG,
                             "profile `%s`: profile contained both source_profile and "
                             "credential_source",
                             s->name);
            goto out;
        }
        if (cs) {
            if (strcmp(cs, "Environment") && strcmp(cs, "Ec2InstanceMetadata") &&
                strcmp(cs, "EcsContainer")) {
                st = dsql__error(err, DSQL_ECONFIG,
                                 "profile `%s`: credential_source `%s` is not one of "
                                 "Environment, Ec2InstanceMetadata, EcsContainer",
                                 s->name, cs);
                goto out;
            }
            plan->base = DSQL__BASE_NAMED;
            plan->base_profile = s;
            plan->named_source = cs;
            goto out;
        }
        if (!src) {
            st = dsql__error(err, DSQL_ECONFIG,
                             "profile `%s`: role_arn is set, so the profile must contain "
                             "`source_profile` or `credential_source`",
                             s->name);
            goto out;
        }
        if (strcmp(src, s->name) == 0) { /* self reference: this profile's keys */
            plan->base_profile = s;
            plan->base = DSQL__BASE_STATIC;
            if (!has_static(s))
                st = dsql__error(err, DSQL_ECONFIG,
                                 "profile `%s` names itself as source_profile but has no "
                                 "static keys",
                                 s->name);
            else
                st = static_keys_check(s, err);
            goto out;
        }
        const dsql__section *next = dsql__profiles_find(set, DSQL__SECTION_PROFILE, src);
        if (!next) {
            st = dsql__error(err, DSQL_ECONFIG,
                             "could not find source profile %s referenced from %s", src,
                             s->name);
            goto out;
        }
        s = next;
    }
out:
    if (st != DSQL_OK)
        dsql__profile_plan_free(plan);
    return st;
}

/* ---- carrying out a plan ---------------------------------------------- */

static char *read_small_file(const char *path, size_t max, dsql_status *st, const char *what,
                             dsql_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = dsql__error(err, DSQL_EIO, "%s: cannot open %s: %s", what, path, strerror(errno));
        return NULL;
    }
    dsql__strbuf sb = {0};
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        dsql__sb_append(&sb, buf, got);
        if (sb.len > max)
            break;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    int bad = ferror(f);
    fclose(f);
    if (sb.len > max || bad) {
        dsql__sb_free(&sb);
        *st = dsql__error(err, DSQL_EIO, "%s: %s is %s", what, path,
                          bad ? "unreadable" : "too large");
        return NULL;
    }
    int failed = sb.failed; /* dsql__sb_take clears sb, failure flag too */
    char *text = dsql__sb_take(&sb);
    if (!text && !failed)
        text = dsql__strdup(""); /* an empty file (nothing was allocated) */
    dsql__sb_free(&sb);
    if (!text)
        *st = dsql__error(err, DSQL_ENOMEM, "%s: out of memory reading %s", what, path);
    return text;
}

static dsql_status static_creds(const dsql__section *s, dsql_credentials *out, dsql_error *err)
{
    dsql_credentials view = {(char *)get(s, "aws_access_key_id"),
                             (char *)get(s, "aws_secret_access_key"),
                             (char *)get(s, "aws_session_token"), 0};
    return dsql_credentials_copy(out, &view, err);
}

static dsql_status role_params(const dsql__section *s, dsql__assume_role_params *p,
                               dsql_error *err)
{
    memset(p, 0, sizeof *p);
    p->role_arn = get(s, "role_arn");
    p->role_session_name = get(s, "role_session_name");
    p->external_id = get(s, "external_id");
    p->region = get(s, "region");
    const char *d = get(s, "duration_seconds");
    if (d) {
        char *end;
        errno = 0;
        long v = strtol(d, &end, 10);
        if (errno || *end || end == d || v < 900 || v > 43200)
            return dsql__error(err, DSQL_ECONFIG,
                               "profile `%s`: duration_seconds `%s` is not a number of seconds "
                               "in 900..43200",
                               s->name, d);
        p->duration_seconds = (int)v;
    }
    return DSQL_OK;
}

static dsql_status named_source(const char *name, dsql_credentials *out, dsql_error *err)
{
    dsql_credentials_provider *p;
    if (strcmp(name, "Environment") == 0)
        p = dsql_credentials_provider_env(err);
    else if (strcmp(name, "Ec2InstanceMetadata") == 0)
        p = dsql_credentials_provider_imds(err);
    else
        p = dsql_credentials_provider_container(err);
    if (!p)
        return err ? err->status : DSQL_ENOMEM;
    dsql_status st = dsql_credentials_provider_get(p, out, err);
    dsql_credentials_provider_free(p);
    return st;
}

static dsql_status web_identity(const dsql__section *s, dsql_credentials *out, dsql_error *err)
{
    dsql__assume_role_params p;
    dsql_status st = role_params(s, &p, err);
    if (st != DSQL_OK)
        return st;
    const char *file = get(s, "web_identity_token_file");
    char what[300];
    snprintf(what, sizeof what, "profile `%s` web identity", s->name);
    char *token = read_small_file(file, 1u << 20, &st, what, err);
    if (!token)
        return st;
    st = dsql__sts_assume_role_with_web_identity(&p, token, out, err);
    dsql__free_secret(token);
    return st;
}

/* ~/.aws/sso/cache/<sha1 hex of key>.json */
static char *sso_cache_path(const char *key)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (!EVP_Digest(key, strlen(key), md, &mdn, EVP_sha1(), NULL) || mdn != 20)
        return NULL;
    char hex[41];
    dsql__hex(hex, md, 20);
    hex[40] = '\0';
    const char *home = getenv("HOME");
    if (!home || !home[0])
        home = "";
    size_t n = strlen(home) + sizeof "/.aws/sso/cache/" + 40 + sizeof ".json";
    char *path = dsql__malloc(n);
    if (path)
        snprintf(path, n, "%s/.aws/sso/cache/%s.json", home, hex);
    return path;
}

static dsql_status sso_creds(const dsql__profile_plan *plan, dsql_credentials *out,
                             dsql_error *err)
{
    const dsql__section *s = plan->base_profile, *ss = plan->sso_session;
    if (!get(s, "sso_account_id"))
        return dsql__error(err, DSQL_ECONFIG,
                           "profile `%s`: SSO profile has no sso_account_id / sso_role_name",
                           s->name);
    const char *key = ss ? ss->name : get(s, "sso_start_url");
    const char *region = ss ? get(ss, "sso_region") : get(s, "sso_region");
    char *path = sso_cache_path(key);
    if (!path)
        return dsql__error(err, DSQL_ENOMEM, "SSO: out of memory");
    dsql_status st = DSQL_OK;
    char what[300];
    snprintf(what, sizeof what, "SSO (profile `%s`)", s->name);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        st = dsql__error(err, DSQL_ECREDENTIALS,
                         "SSO (profile `%s`): no cached access token for %s `%s` (%s); run "
                         "`aws sso login`%s%s",
                         s->name, ss ? "sso-session" : "start URL", key, path,
                         ss ? " --sso-session " : "", ss ? ss->name : "");
        dsql__free(path);
        return st;
    }
    fclose(probe);
    char *text = read_small_file(path, 1u << 20, &st, what, err);
    if (!text) {
        dsql__free(path);
        return st;
    }
    cJSON *doc = cJSON_Parse(text);
    dsql__free_secret(text);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(doc, "accessToken");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(doc, "expiresAt");
    const cJSON *refresh = cJSON_GetObjectItemCaseSensitive(doc, "refreshToken");
    if ((cJSON_IsString(tok) && tok->valuestring[0]) ||
        (cJSON_IsString(refresh) && refresh->valuestring[0]))
        dsql__warn_if_exposed("SSO token cache file", path, "an SSO token");
    dsql__free(path);
    int64_t expires = 0;
    if (!cJSON_IsObject(doc) || !cJSON_IsString(tok) || !tok->valuestring[0] ||
        !cJSON_IsString(exp)) {
        st = dsql__error(err, DSQL_EPARSE,
                         "SSO (profile `%s`): the cached token file has no accessToken / "
                         "expiresAt; run `aws sso login`",
                         s->name);
    } else if (!dsql__utc_parse_iso8601(exp->valuestring, &expires)) {
        st = dsql__error(err, DSQL_EPARSE,
                         "SSO (profile `%s`): the cached token's expiresAt is not an ISO 8601 "
                         "time; run `aws sso login`",
                         s->name);
    } else if (expires <= dsql__now()) {
        st = dsql__error(err, DSQL_EEXPIRED,
                         "SSO (profile `%s`): the cached access token expired at %s; run `aws "
                         "sso login`%s%s",
                         s->name, exp->valuestring, ss ? " --sso-session " : "",
                         ss ? ss->name : "");
    } else {
        st = dsql__sso_get_role_credentials(region, tok->valuestring, get(s, "sso_account_id"),
                                            get(s, "sso_role_name"), out, err);
    }
    dsql__json_delete_wiped(doc); /* the access and refresh tokens */
    return st;
}

dsql_status dsql__profile_plan_run(const dsql__profiles *set, const dsql__profile_plan *plan,
                                   dsql_credentials *out, dsql_error *err)
{
    (void)set;
    memset(out, 0, sizeof *out);
    dsql_credentials cur = {0};
    dsql_status st;
    const dsql__section *b = plan->base_profile;
    switch (plan->base) {
    case DSQL__BASE_STATIC:
        st = static_creds(b, &cur, err);
        break;
    case DSQL__BASE_NAMED:
        st = named_source(plan->named_source, &cur, err);
        break;
    case DSQL__BASE_WEB_IDENTITY:
        st = web_identity(b, &cur, err);
        break;
    case DSQL__BASE_SSO:
        st = sso_creds(plan, &cur, err);
        break;
    case DSQL__BASE_PROCESS:
        st = dsql__credential_process_run(get(b, "credential_process"),
                                          DSQL__PROCESS_TIMEOUT_MS, &cur, err);
        break;
    default:
        st = dsql__error(err, DSQL_EINTERNAL, "profile: unknown plan");
    }
    for (size_t i = plan->n_hops; st == DSQL_OK && i-- > 0;) {
        const dsql__section *h = plan->hops[i];
        dsql__assume_role_params p;
        st = role_params(h, &p, err);
        if (st != DSQL_OK)
            break;
        dsql__log(DSQL_LOG_DEBUG, "profile `%s`: assuming role %s", h->name, p.role_arn);
        dsql_credentials next;
        memset(&next, 0, sizeof next);
        st = dsql__sts_assume_role(&cur, &p, &next, err);
        dsql_credentials_clear(&cur);
        cur = next;
    }
    if (st != DSQL_OK) {
        dsql_credentials_clear(&cur);
        return st;
    }
    *out = cur;
    return DSQL_OK;
}

dsql_status dsql__profile_resolve(const char *explicit_profile, dsql_credentials *out,
                                  int *absent, dsql_error *err)
{
    memset(out, 0, sizeof *out);
    if (absent)
        *absent = 0;
    const char *name = dsql__profile_name(explicit_profile);
    dsql__profiles set;
    dsql_status st = dsql__profiles_load(&set, err);
    if (st != DSQL_OK)
        return st;
    dsql__profile_plan plan;
    st = dsql__profile_plan_build(&set, name, &plan, absent, err);
    if (st == DSQL_OK) {
        dsql__log(DSQL_LOG_DEBUG, "profile `%s`: credentials from %s%s", name,
                  plan.base == DSQL__BASE_STATIC       ? "static keys"
                  : plan.base == DSQL__BASE_NAMED      ? "credential_source"
                  : plan.base == DSQL__BASE_WEB_IDENTITY ? "web identity"
                  : plan.base == DSQL__BASE_SSO        ? "SSO"
                                                       : "credential_process",
                  plan.n_hops ? " then AssumeRole" : "");
        st = dsql__profile_plan_run(&set, &plan, out, err);
        dsql__profile_plan_free(&plan);
    }
    dsql__profiles_free(&set);
    return st;
}

/* ---- the public provider --------------------------------------------- */

static dsql_status profile_get(void *self, dsql_credentials *out, dsql_error *err)
{
    return dsql__profile_resolve(self, out, NULL, err);
}

static void profile_destroy(void *self) { dsql__free(self); }

static const dsql_credentials_provider_vtable PROFILE_VTABLE = {DSQL_STRUCT_VERSION,
                                                                profile_get, profile_destroy};

dsql_credentials_provider *dsql_credentials_provider_profile(const char *profile,
                                                             dsql_error *err)
{
    char *name = NULL;
    if (profile && profile[0] && !(name = dsql__strdup(profile))) {
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a profile provider");
        return NULL;
    }
    dsql_credentials_provider *p = dsql_credentials_provider_new(&PROFILE_VTABLE, name, err);
    if (!p)
        dsql__free(name);
    return p;
}
