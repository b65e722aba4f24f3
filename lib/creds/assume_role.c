/* dsql_credentials_provider_assume_role: STS AssumeRole from code, signed
 * with a source provider's credentials, cached per provider (so per role). */
#include <string.h>

#include "remote.h"
#include "remote_util.h"

#define AR "assume role"
#define MAX_POLICY_ARNS 10 /* STS AssumeRole: PolicyArns, at most 10 */

typedef struct assume_role {
    dsql_credentials_provider *source;
    int owns_source;
    char *role_arn, *session_name, *external_id, *region;
    char **policy_arns;
    size_t policy_arn_count;
    int duration_seconds;
} assume_role;

void dsql_assume_role_options_init(dsql_assume_role_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = DSQL_STRUCT_VERSION;
}

static void ar_destroy(void *self)
{
    assume_role *a = self;
    if (!a)
        return;
    if (a->owns_source)
        dsql_credentials_provider_free(a->source);
    dsql__free(a->role_arn);
    dsql__free(a->session_name);
    dsql__free_secret(a->external_id);
    dsql__free(a->region);
    for (size_t i = 0; a->policy_arns && i < a->policy_arn_count; i++)
        dsql__free(a->policy_arns[i]);
    dsql__free(a->policy_arns);
    dsql__free(a);
}

static dsql_status ar_get(void *self, dsql_credentials *out, dsql_error *err)
{
    assume_role *a = self;
    dsql_credentials src;
    dsql_status st = dsql_credentials_provider_get(a->source, &src, err);
    if (st != DSQL_OK)
        return st;
    const char *region = a->region;
    if (!region)
        region = dsql__env_nonempty("AWS_REGION");
    if (!region)
        region = dsql__env_nonempty("AWS_DEFAULT_REGION");
    dsql__assume_role_params p = {.role_arn = a->role_arn,
                                  .role_session_name = a->session_name,
                                  .external_id = a->external_id,
                                  .duration_seconds = a->duration_seconds,
                                  .region = region,
                                  .policy_arns = (const char *const *)a->policy_arns,
                                  .policy_arn_count = a->policy_arn_count};
    st = dsql__sts_assume_role(&src, &p, out, err);
    dsql_credentials_clear(&src);
    return st;
}

static const dsql_credentials_provider_vtable AR_VTABLE = {DSQL_STRUCT_VERSION, ar_get,
                                                           ar_destroy};

/* A heap copy of s, or NULL for NULL/"" (*ok cleared when out of memory). */
static char *dup_opt(const char *s, int *ok)
{
    if (!s || !*s)
        return NULL;
    char *d = dsql__strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

static dsql_status check_options(const dsql_assume_role_options *o, dsql_error *err)
{
    if (!o)
        return dsql__error(err, DSQL_EINVAL, AR ": options are NULL (role_arn is required)");
    if (o->version != DSQL_STRUCT_VERSION)
        return dsql__error(err, DSQL_EINVAL, AR ": options version %d is not %d (use "
                           "dsql_assume_role_options_init)", o->version, DSQL_STRUCT_VERSION);
    if (!o->role_arn || strncmp(o->role_arn, "arn:", 4) != 0)
        return dsql__error(err, DSQL_EINVAL, AR ": role_arn must be a role ARN "
                           "(arn:aws:iam::<account>:role/<name>)");
    if (o->policy_arn_count > MAX_POLICY_ARNS || (o->policy_arn_count && !o->policy_arns))
        return dsql__error(err, DSQL_EINVAL, AR ": policy_arn_count %zu: at most %d ARNs, "
                           "in policy_arns", o->policy_arn_count, MAX_POLICY_ARNS);
    for (size_t i = 0; i < o->policy_arn_count; i++)
        if (!o->policy_arns[i] || strncmp(o->policy_arns[i], "arn:", 4) != 0)
            return dsql__error(err, DSQL_EINVAL, AR ": policy_arns[%zu] is not an ARN", i);
    if (o->region && *o->region && !dsql__region_is_valid(o->region))
        return dsql__error(err, DSQL_ECONFIG, AR ": region \"%.63s\" is not a valid AWS "
                           "region name", o->region);
    dsql__assume_role_params p = {.role_arn = o->role_arn,
                                  .role_session_name = o->role_session_name,
                                  .duration_seconds = o->duration_seconds};
    return dsql__sts_check_params(AR, &p, err);
}

static assume_role *ar_new(const dsql_assume_role_options *o)
{
    assume_role *a = dsql__calloc(1, sizeof *a);
    if (!a)
        return NULL;
    int ok = 1;
    a->role_arn = dup_opt(o->role_arn, &ok);
    a->session_name = dup_opt(o->role_session_name, &ok);
    a->external_id = dup_opt(o->external_id, &ok);
    a->region = dup_opt(o->region, &ok);
    a->duration_seconds = o->duration_seconds;
    if (ok && o->policy_arn_count) {
        a->policy_arns = dsql__calloc(o->policy_arn_count, sizeof *a->policy_arns);
        ok = a->policy_arns != NULL;
        for (size_t i = 0; ok && i < o->policy_arn_count; i++, a->policy_arn_count++)
            a->policy_arns[i] = dup_opt(o->policy_arns[i], &ok);
    }
    if (!ok) {
        ar_destroy(a);
        return NULL;
    }
    return a;
}

dsql_credentials_provider *dsql_credentials_provider_assume_role(
    dsql_credentials_provider *source, const dsql_assume_role_options *opts, dsql_error *err)
{
    if (check_options(opts, err) != DSQL_OK)
        return NULL;
    assume_role *a = ar_new(opts);
    if (!a) {
        dsql__error(err, DSQL_ENOMEM, AR ": out of memory");
        return NULL;
    }
    if (!source) {
        if (!(source = dsql_credentials_provider_default(NULL, err))) {
            ar_destroy(a);
            return NULL;
        }
        a->owns_source = 1;
    }
    a->source = source;
    dsql_credentials_provider *inner = dsql_credentials_provider_new(&AR_VTABLE, a, err);
    if (!inner) {
        ar_destroy(a);
        return NULL;
    }
    return dsql_credentials_provider_cached(inner, err);
}
