/* Fuzz target: credentials from JSON as the container endpoint, IMDS and
 * SSO send them, and the JSON error summary. Input: a JSON document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds/remote_util.h"
#include "fuzz_util.h"


static void check(dsql_status st, dsql_credentials *c)
{
    if (st == DSQL_OK) {
        if (!c->access_key_id || !c->secret_access_key)
            abort();
        dsql_credentials_clear(c);
    } else if (c->access_key_id) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    dsql_credentials c;
    dsql_error err;
    if (j) {
        check(dsql__creds_from_json("fuzz", j, "AccessKeyId", "SecretAccessKey", "Token",
                                    "Expiration", 0, 1, &c, &err),
              &c);
        check(dsql__creds_from_json("fuzz", cJSON_GetObjectItem(j, "roleCredentials"),
                                    "accessKeyId", "secretAccessKey", "sessionToken",
                                    "expiration", 1, 1, &c, &err),
              &c);
        dsql__json_delete_wiped(j);
    }
    char *body = fuzz_cstring(data, size);
    if (!body)
        return 0;
    dsql__http_response resp = {500, body, size, "application/json"};
    char summary[200];
    dsql__http_error_summary(&resp, summary, sizeof summary);
    if (!memchr(summary, '\0', sizeof summary))
        abort();
    free(body);
    return 0;
}
