/* pgserver: SCRAM-SHA-256 server side, checked against a stored verifier
 * (StoredKey = H(ClientKey), ServerKey): RFC 5802 section 3. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "scram.h"

/* Base64 into out (cap bytes): the decoded length, or -1. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    unsigned char buf[256];
    int n, pad = 0;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof buf)
        return -1;
    n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -1;
    if (in[len - 1] == '=')
        pad++;
    if (in[len - 2] == '=')
        pad++;
    n -= pad;
    if ((size_t)n > cap)
        return -1;
    memcpy(out, buf, (size_t)n);
    OPENSSL_cleanse(buf, sizeof buf);
    return n;
}

static void b64_encode(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* "<b64>" up to the next delimiter. */
static int field(const char *s, char delim, const char **end)
{
    const char *d = strchr(s, delim);

    *end = d;
    return d ? (int)(d - s) : -1;
}

int pgs_scram_parse_verifier(const char *text, pgs_scram_verifier *v)
{
    const char *p = text, *e;
    char *iend;
    long iter;
    int n;

    memset(v, 0, sizeof *v);
    if (strncmp(p, "SCRAM-SHA-256$", 14) != 0)
        return -1;
    p += 14;
    iter = strtol(p, &iend, 10);
    if (iend == p || *iend != ':' || iter < 1 || iter > 10000000)
        return -1;
    v->iterations = (int)iter;
    p = iend + 1;
    if ((n = field(p, '$', &e)) <= 0 ||
        (n = b64_decode(p, (size_t)n, v->salt, sizeof v->salt)) <= 0)
        return -1;
    v->salt_len = (size_t)n;
    p = e + 1;
    if ((n = field(p, ':', &e)) <= 0 ||
        b64_decode(p, (size_t)n, v->stored_key, sizeof v->stored_key) != 32)
        return -1;
    p = e + 1;
    if (b64_decode(p, strlen(p), v->server_key, sizeof v->server_key) != 32)
        return -1;
    return 0;
}

int pgs_scram_mock_verifier(pgs_scram_verifier *v, const pgs_scram_verifier *like,
                            const unsigned char *key, const char *user)
{
    unsigned char mac[64]; /* SHA-512: as long as the longest salt */
    unsigned int n = sizeof mac;

    memset(v, 0, sizeof *v);
    v->iterations = like->iterations;
    v->salt_len = like->salt_len <= sizeof mac ? like->salt_len : sizeof mac;
    if (!HMAC(EVP_sha512(), key, PGS_SCRAM_MOCK_KEY, (const unsigned char *)user, strlen(user),
              mac, &n))
        return -1;
    memcpy(v->salt, mac, v->salt_len);
    OPENSSL_cleanse(mac, sizeof mac);
    return RAND_bytes(v->stored_key, 32) == 1 && RAND_bytes(v->server_key, 32) == 1 ? 0 : -1;
}

/* The value of attribute `a` ("r=...") in a comma list, its length in *n. */
static const char *attr(const char *msg, char a, size_t *n)
{
    const char *p = msg;

    while (p && *p) {
        if (p[0] == a && p[1] == '=') {
            const char *c = strchr(p, ',');
            *n = c ? (size_t)(c - p - 2) : strlen(p + 2);
            return p + 2;
        }
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return NULL;
}

static int printable_nonce(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return 0;
    return n > 0;
}

int pgs_scram_first(pgs_scram *s, const char *msg, size_t len, char *out, size_t cap,
                    const char **err)
{
    unsigned char raw[18];
    char ours[32], salt[96];
    const char *bare, *cnonce;
    size_t n;

    if (len > PGS_SCRAM_MSG_MAX || memchr(msg, '\0', len)) {
        *err = "malformed SCRAM client-first-message";
        return -1;
    }
    /* gs2 header: "n,," (no channel binding) or "y,," (client could, we
     * do not offer it); "p=" asks for binding we cannot do */
    if (len < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
        *err = len > 0 && msg[0] == 'p' ? "SCRAM channel binding is not supported here"
                                        : "malformed SCRAM client-first-message";
        return -1;
    }
    /* then an empty authzid or "a=...", and a bare message "n=...,r=..." */
    bare = memchr(msg + 2, ',', len - 2);
    if (!bare || (bare != msg + 2 && strncmp(msg + 2, "a=", 2) != 0) ||
        (size_t)(bare + 3 - msg) > len || strncmp(bare + 1, "n=", 2) != 0) {
        *err = "malformed SCRAM client-first-message";
        return -1;
    }
    bare++;
    memcpy(s->client_first_bare, bare, len - (size_t)(bare - msg));
    s->client_first_bare[len - (size_t)(bare - msg)] = '\0';
    cnonce = attr(s->client_first_bare, 'r', &n);
    if (!cnonce || !printable_nonce(cnonce, n) || n > sizeof s->nonce - 32) {
        *err = "malformed SCRAM client nonce";
        return -1;
    }
    if (RAND_bytes(raw, sizeof raw) != 1) {
        *err = "no randomness for the SCRAM nonce";
        return -1;
    }
    b64_encode(raw, sizeof raw, ours);
    memcpy(s->nonce, cnonce, n);
    strcpy(s->nonce + n, ours);
    b64_encode(s->v.salt, s->v.salt_len, salt);
    if ((size_t)snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%d", s->nonce,
                         salt, s->v.iterations) >= sizeof s->server_first ||
        strlen(s->server_first) >= cap) {
        *err = "SCRAM message too long";
        return -1;
    }
    strcpy(out, s->server_first);
    return 0;
}

int pgs_scram_final(pgs_scram *s, const char *msg, size_t len, char *out, size_t cap,
                    const char **err)
{
    char final[PGS_SCRAM_MSG_MAX + 1], auth[3 * PGS_SCRAM_MSG_MAX + 8];
    unsigned char proof[32], sig[32], client_key[32], check[32], server_sig[32];
    const char *r, *c, *p, *pkey;
    size_t rn, cn, pn, without_proof;
    unsigned int hl = 32;
    int ok;

    *err = "malformed SCRAM client-final-message";
    if (len > PGS_SCRAM_MSG_MAX || memchr(msg, '\0', len))
        return -1;
    memcpy(final, msg, len);
    final[len] = '\0';
    c = attr(final, 'c', &cn);
    r = attr(final, 'r', &rn);
    p = attr(final, 'p', &pn);
    pkey = strstr(final, ",p=");
    if (!c || !r || !p || !pkey)
        return -1;
    /* c= is base64 of the gs2 header: "n,," -> biws, "y,," -> eSws */
    if (!((cn == 4 && (memcmp(c, "biws", 4) == 0 || memcmp(c, "eSws", 4) == 0)))) {
        *err = "SCRAM channel binding data does not match";
        return -1;
    }
    if (rn != strlen(s->nonce) || memcmp(r, s->nonce, rn) != 0) {
        *err = "SCRAM nonce does not match";
        return -1;
    }
    if (b64_decode(p, pn, proof, sizeof proof) != 32)
        return -1;
    without_proof = (size_t)(pkey - final);
    snprintf(auth, sizeof auth, "%s,%s,%.*s", s->client_first_bare, s->server_first,
             (int)without_proof, final);
    /* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); right when
     * H(ClientKey) == StoredKey */
    HMAC(EVP_sha256(), s->v.stored_key, 32, (unsigned char *)auth, strlen(auth), sig, &hl);
    for (int i = 0; i < 32; i++)
        client_key[i] = proof[i] ^ sig[i];
    SHA256(client_key, 32, check);
    ok = CRYPTO_memcmp(check, s->v.stored_key, 32) == 0;
    /* the proof is on the wire: with the signature it gives ClientKey */
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(sig, sizeof sig);
    if (!ok) {
        *err = "password authentication failed";
        return -1;
    }
    HMAC(EVP_sha256(), s->v.server_key, 32, (unsigned char *)auth, strlen(auth), server_sig, &hl);
    if (cap < 2 + 45) {
        *err = "SCRAM message too long";
        return -1;
    }
    memcpy(out, "v=", 2);
    b64_encode(server_sig, 32, out + 2);
    return 0;
}

void pgs_scram_clear(pgs_scram *s)
{
    OPENSSL_cleanse(s, sizeof *s);
}
