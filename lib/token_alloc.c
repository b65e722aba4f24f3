/* A token in a heap buffer: the allocate / retry on DSQL_EBUFSIZE / wipe
 * loop every adapter used to carry its own copy of, written once on top of
 * dsql_token_provider_get. */
#include "internal.h"

#include <string.h>
#include <openssl/crypto.h>

/* A token with an STS session token is 1-2 KB: the first try nearly
 * always fits, so the provider (and its credentials fetch) runs once. */
#define TOKEN_CAP0 4096

static void wipe_free(char *buf, size_t cap)
{
    OPENSSL_cleanse(buf, cap);
    dsql__free(buf);
}

dsql_status dsql_token_provider_get_alloc(dsql_token_provider *p,
                                            const dsql_token_request *req, char **token_out,
                                            size_t *len_out, dsql_error *err)
{
    if (len_out)
        *len_out = 0;
    if (!token_out)
        return dsql__error(err, DSQL_EINVAL, "token_out is NULL");
    *token_out = NULL;
    if (!p)
        return dsql__error(err, DSQL_EINVAL, "token provider is NULL");
    /* checked here too so a bad request costs no allocation */
    if (!req || req->version != DSQL_STRUCT_VERSION)
        return dsql__error(err, DSQL_EINVAL, "token request is NULL or has a version other "
                           "than %d", DSQL_STRUCT_VERSION);

    size_t cap = TOKEN_CAP0;
    for (int round = 0;; round++) {
        char *buf = dsql__malloc(cap);
        if (!buf)
            return dsql__error(err, DSQL_ENOMEM, "out of memory for a %zu-byte token buffer",
                               cap);
        size_t len = 0;
        dsql_status st = dsql_token_provider_get(p, req, buf, cap, &len, err);
        if (st == DSQL_OK) {
            /* Trust the NUL, not *len: custom providers have been written
             * against adapters that only ever used the string. */
            const char *nul = memchr(buf, '\0', cap);
            if (!nul) {
                wipe_free(buf, cap);
                return dsql__error(err, DSQL_EINTERNAL, "token provider returned a token "
                                   "that is not NUL-terminated within its %zu-byte buffer",
                                   cap);
            }
            len = (size_t)(nul - buf);
            /* dsql_token_free wipes strlen + 1 bytes: clear whatever the
             * provider left behind the NUL now, while cap is known. */
            OPENSSL_cleanse(buf + len + 1, cap - len - 1);
            if (round > 0)
                dsql__error_clear(err); /* drop the first round's EBUFSIZE message */
            *token_out = buf;
            if (len_out)
                *len_out = len;
            return DSQL_OK;
        }
        wipe_free(buf, cap);
        if (st != DSQL_EBUFSIZE)
            return st;
        /* A length that already fits would only repeat the same call, and
         * SIZE_MAX + 1 wraps to a 0-byte buffer. */
        if (len < cap || len == SIZE_MAX)
            return dsql__error(err, DSQL_EINTERNAL, "token provider returned DSQL_EBUFSIZE "
                               "for a %zu-byte buffer but reported a %zu-byte token", cap, len);
        if (round > 0)
            return dsql__error(err, DSQL_EINTERNAL, "token provider asked for a larger buffer "
                               "again (%zu bytes after %zu)", len + 1, cap);
        cap = len + 1;
    }
}

void dsql_token_free(char *token)
{
    if (!token)
        return;
    /* strlen + 1: the NUL too, so no byte of the block is left unwiped
     * (the allocating side cleared everything past it) */
    OPENSSL_cleanse(token, strlen(token) + 1);
    dsql__free(token);
}
