/* Fuzz target: the generic SigV4 signer. Input lines: method, path, then
 * "q name=value" / "h name:value" lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsqlauth.h"
#include "sigv4.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *in = fuzz_cstring(data, size);
    if (!in)
        return 0;
    dsql_sigv4_pair query[32], headers[32];
    size_t nq = 0, nh = 0;
    char *lines[2] = {"GET", "/"};
    int line = 0;
    for (char *save = NULL, *l = strtok_r(in, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (line < 2) {
            lines[line++] = l;
            continue;
        }
        char *sep = strpbrk(l + (l[0] ? 1 : 0), "=:");
        if (!sep)
            continue;
        *sep = '\0';
        if (l[0] == 'q' && nq < 32)
            query[nq++] = (dsql_sigv4_pair){l + 1, sep + 1};
        else if (l[0] == 'h' && nh < 31)
            headers[nh++] = (dsql_sigv4_pair){l + 1, sep + 1};
    }
    headers[nh++] = (dsql_sigv4_pair){"Host", "example.amazonaws.com"};
    dsql_credentials c = {"AKID", "SECRET", "TOKEN", 0};
    for (int mode = 0; mode < 2; mode++) {
        dsql_sigv4_request r = {.version = DSQL_STRUCT_VERSION, .mode = (dsql_sigv4_mode)mode,
                                .method = lines[0], .path = lines[1],
                                .normalize_path = (int)(size & 1), .query = query,
                                .query_count = nq, .headers = headers, .header_count = nh,
                                .region = "us-east-1", .service = "service",
                                .time = 1440938160, .expires = 3600};
        dsql_sigv4_result res;
        dsql_error err;
        if (dsql__sigv4_sign(&r, &c, &res, &err) == DSQL_OK) {
            if (strlen(res.signature) != 64)
                abort();
            dsql__sigv4_result_clear(&res);
        }
    }
    free(in);
    return 0;
}
