/* Region resolution for hosts that name none: explicit, AWS_REGION,
 * AWS_DEFAULT_REGION, then the profile's `region`. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds/profile_parser.h"

static dsql_status put(const char *value, const char *source, char *buf, size_t cap,
                       dsql_error *err)
{
    size_t n = strlen(value);
    if (!buf || cap < n + 1) {
        if (buf && cap)
            buf[0] = '\0';
        return dsql__error(err, DSQL_EBUFSIZE, "region: buffer of %zu bytes is too small for "
                           "%zu", cap, n + 1);
    }
    memcpy(buf, value, n + 1);
    dsql__log(DSQL_LOG_DEBUG, "region: using %s from %s", value, source);
    return DSQL_OK;
}

dsql_status dsql_region_resolve(const char *explicit_region, const char *profile, char *buf,
                                size_t cap, dsql_error *err)
{
    if (buf && cap)
        buf[0] = '\0';
    if (explicit_region && explicit_region[0])
        return put(explicit_region, "the explicit setting", buf, cap, err);
    const char *v = getenv("AWS_REGION");
    if (v && v[0])
        return put(v, "AWS_REGION", buf, cap, err);
    v = getenv("AWS_DEFAULT_REGION");
    if (v && v[0])
        return put(v, "AWS_DEFAULT_REGION", buf, cap, err);
    const char *name = dsql__profile_name(profile);
    dsql__profiles set;
    dsql_status st = dsql__profiles_load(&set, err);
    if (st != DSQL_OK)
        return st;
    const dsql__section *s = dsql__profiles_find(&set, DSQL__SECTION_PROFILE, name);
    v = dsql__section_get_nonempty(s, "region");
    if (v) {
        char source[300];
        snprintf(source, sizeof source, "profile `%s`", name);
        st = put(v, source, buf, cap, err);
    } else {
        st = dsql__error(err, DSQL_ECONFIG,
                         "no region: none given, AWS_REGION and AWS_DEFAULT_REGION are not "
                         "set, and profile `%s` %s",
                         name, s ? "has no region" : "does not exist");
    }
    dsql__profiles_free(&set);
    return st;
}
