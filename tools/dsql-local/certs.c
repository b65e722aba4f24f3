/* dsql-local: a fresh CA and a server certificate for the cluster names,
 * made with the OpenSSL API. Writes ca.pem (for clients), server.pem and
 * server.key (0600) into dir. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "local.h"
#include "statedir.h"

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                      EVP_PKEY *issuer_key, long days)
{
    X509 *c = X509_new();
    X509_NAME *name;
    unsigned char serial[16];
    BIGNUM *bn = NULL;

    if (!c || RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)))
        goto fail;
    BN_free(bn);
    bn = NULL;
    if (!X509_set_version(c, 2) || !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), days * 86400L) ||
        !X509_set_pubkey(c, key))
        goto fail;
    name = X509_get_subject_name(c);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"dsql-local", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0))
        goto fail;
    if (!X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name))
        goto fail;
    (void)issuer_key;
    return c;
fail:
    BN_free(bn);
    X509_free(c);
    return NULL;
}

/* A new file: never through a planted symbolic link, never over a file
 * someone else made (which could keep a readable mode or a second link). */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key, int mode)
{
    FILE *fp;
    int ok, fd = dl_state_create(path, mode);

    if (fd < 0)
        return 0;
    fp = fdopen(fd, "w");
    if (!fp) {
        close(fd);
        return 0;
    }
    ok = cert ? PEM_write_X509(fp, cert)
              : PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    return fclose(fp) == 0 && ok;
}

int dl_certs_make(const char *dir, const char *const *hosts, int nhosts,
                  char *err, size_t errcap)
{
    EVP_PKEY *ca_key = new_key(), *srv_key = new_key();
    X509 *ca = NULL, *srv = NULL;
    char san[DL_MAX_HOSTS * 260 + 64], path[600];
    size_t off = 0;
    int i, ok = 0;

    if (!ca_key || !srv_key)
        goto done;
    ca = new_cert(ca_key, "dsql-local CA", NULL, NULL, 30);
    if (!ca || !add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(ca, ca, NID_subject_key_identifier, "hash") ||
        !X509_sign(ca, ca_key, EVP_sha256()))
        goto done;
    srv = new_cert(srv_key, hosts[0], ca, ca_key, 30);
    for (i = 0; i < nhosts; i++) {
        int n = snprintf(san + off, sizeof san - off, "%sDNS:%s", i ? "," : "", hosts[i]);
        if (n < 0 || (size_t)n >= sizeof san - off)
            goto done;
        off += (size_t)n;
    }
    if (!srv || !add_ext(srv, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(srv, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(srv, ca, NID_ext_key_usage, "serverAuth") ||
        !add_ext(srv, ca, NID_subject_alt_name, san) ||
        !add_ext(srv, ca, NID_authority_key_identifier, "keyid:always") ||
        !X509_sign(srv, ca_key, EVP_sha256()))
        goto done;
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    if (!write_pem(path, ca, NULL, 0644))
        goto done;
    snprintf(path, sizeof path, "%s/server.pem", dir);
    if (!write_pem(path, srv, NULL, 0644))
        goto done;
    snprintf(path, sizeof path, "%s/server.key", dir);
    if (!write_pem(path, NULL, srv_key, 0600))
        goto done;
    ok = 1;
done:
    if (!ok)
        snprintf(err, errcap, "cannot create the TLS certificates in %s", dir);
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    return ok ? 0 : -1;
}
