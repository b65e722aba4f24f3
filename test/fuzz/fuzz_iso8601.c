/* Fuzz target: the ISO-8601 parser used for credential expirations, and
 * the UTC formatter on whatever it accepts (round trip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *in = fuzz_cstring(data, size);
    if (!in)
        return 0;
    int64_t t;
    if (dsql__utc_parse_iso8601(in, &t) && t >= 0 && t <= INT64_C(253402300799)) {
        char date[9], datetime[17], iso[32];
        dsql__utc_format(t, date, datetime);
        snprintf(iso, sizeof iso, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", datetime, datetime + 4,
                 datetime + 6, datetime + 9, datetime + 11, datetime + 13);
        int64_t back;
        if (!dsql__utc_parse_iso8601(iso, &back) || back != t)
            abort();
    }
    free(in);
    return 0;
}
