/* Fuzz target: the STS response reader (expat) behind AssumeRole and
 * AssumeRoleWithWebIdentity. Input: one byte choosing the HTTP status,
 * then the response body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds/remote_util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const long statuses[] = {200, 400, 403, 500};
    if (size < 1)
        return 0;
    char *body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    dsql__http_response resp = {statuses[data[0] % 4], body, size - 1, "text/xml"};
    dsql_credentials c;
    dsql_error err;
    if (dsql__sts_parse_response("STS fuzz", "127.0.0.1", &resp, &c, &err) == DSQL_OK) {
        if (!c.access_key_id || !c.secret_access_key || !c.session_token || c.expiration <= 0)
            abort();
        dsql_credentials_clear(&c);
    } else if (c.access_key_id || !memchr(err.message, '\0', sizeof err.message)) {
        abort();
    }
    free(body);
    return 0;
}
