/* Fuzz target: the AWS shared config / credentials parser (as either file
 * kind, and both merged) and the profile plan builder over what it
 * accepts (source_profile chains, loops, SSO sessions). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds/profile.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *text = (const char *)data;
    dsql__profiles set = {0};
    dsql_error err;
    if (dsql__profiles_parse(&set, text, size, DSQL__FILE_CONFIG, "fuzz", &err) == DSQL_OK &&
        dsql__profiles_parse(&set, text, size, DSQL__FILE_CREDENTIALS, "fuzz", &err) ==
            DSQL_OK) {
        for (size_t i = 0; i < set.n; i++) {
            const dsql__section *s = &set.secs[i];
            if (!s->name[0] || strchr(s->name, ' '))
                abort();
            for (size_t j = 0; j < s->n; j++)
                if (!s->props[j].key || !s->props[j].value)
                    abort();
            if (s->kind != DSQL__SECTION_PROFILE)
                continue;
            dsql__profile_plan plan;
            if (dsql__profile_plan_build(&set, s->name, &plan, NULL, &err) == DSQL_OK) {
                if (!plan.base_profile)
                    abort();
                dsql__profile_plan_free(&plan);
            }
        }
    }
    dsql__profiles_free(&set);
    return 0;
}
