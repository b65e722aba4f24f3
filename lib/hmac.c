/* HMAC-SHA256 that keeps the inner and outer pad states, so one MAC with a
 * known key costs two SHA-256 finalisations and no allocation. */
#include "internal.h"

#include <string.h>
#include <openssl/crypto.h>

void dsql__hmac_key_init(dsql__hmac_key *k, const void *key, size_t len)
{
    unsigned char block[SHA256_CBLOCK];
    unsigned char pad[SHA256_CBLOCK];
    memset(block, 0, sizeof block);
    if (len > sizeof block) {
        SHA256(key, len, block);
    } else if (len > 0) {
        memcpy(block, key, len);
    }
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&k->inner);
    SHA256_Update(&k->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&k->outer);
    SHA256_Update(&k->outer, pad, sizeof pad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
}

void dsql__hmac_start(const dsql__hmac_key *k, SHA256_CTX *ctx) { *ctx = k->inner; }

void dsql__hmac_finish(const dsql__hmac_key *k, SHA256_CTX *ctx, unsigned char out[32])
{
    unsigned char inner[SHA256_DIGEST_LENGTH];
    SHA256_Final(inner, ctx);
    SHA256_CTX outer = k->outer;
    SHA256_Update(&outer, inner, sizeof inner);
    SHA256_Final(out, &outer);
    OPENSSL_cleanse(&outer, sizeof outer);
}

void dsql__hmac(const dsql__hmac_key *k, const void *msg, size_t n, unsigned char out[32])
{
    SHA256_CTX ctx;
    dsql__hmac_start(k, &ctx);
    SHA256_Update(&ctx, msg, n);
    dsql__hmac_finish(k, &ctx, out);
}

void dsql__hmac_key_wipe(dsql__hmac_key *k) { OPENSSL_cleanse(k, sizeof *k); }

void dsql__sigv4_derive_key(dsql__hmac_key *out, const char *secret, const char *date,
                            const char *region, const char *service)
{
    const char *steps[] = {date, region, service, "aws4_request"};
    unsigned char mac[SHA256_DIGEST_LENGTH];
    size_t secret_len = strlen(secret);
    dsql__hmac_key k;

    /* "AWS4" + secret is hashed into the first key without a heap copy. */
    if (secret_len + 4 <= SHA256_CBLOCK) {
        unsigned char first[SHA256_CBLOCK];
        memcpy(first, "AWS4", 4);
        memcpy(first + 4, secret, secret_len);
        dsql__hmac_key_init(&k, first, secret_len + 4);
        OPENSSL_cleanse(first, sizeof first);
    } else {
        unsigned char digest[SHA256_DIGEST_LENGTH];
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, "AWS4", 4);
        SHA256_Update(&ctx, secret, secret_len);
        SHA256_Final(digest, &ctx);
        dsql__hmac_key_init(&k, digest, sizeof digest);
        OPENSSL_cleanse(digest, sizeof digest);
        OPENSSL_cleanse(&ctx, sizeof ctx);
    }
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        dsql__hmac(&k, steps[i], strlen(steps[i]), mac);
        dsql__hmac_key_init(&k, mac, sizeof mac);
    }
    *out = k;
    dsql__hmac_key_wipe(&k);
    OPENSSL_cleanse(mac, sizeof mac);
}
