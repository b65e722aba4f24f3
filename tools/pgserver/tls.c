/* pgserver: TLS on libevent (see tls.h). */
#include <string.h>

#include "tls.h"

SSL_CTX *pgs_tls_ctx_new(int server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* a renegotiation mid-session is a DoS lever and nothing here needs it */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

int pgs_tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char pg[] = PGS_TLS_ALPN;
    unsigned int i = 0;

    (void)ssl;
    (void)arg;
    while (i < inlen) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break; /* a name running past the list: a broken list */
        if (n == sizeof pg - 2 && memcmp(in + i + 1, pg + 1, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

struct bufferevent *pgs_tls_bufferevent_opts(struct event_base *base, int fd, SSL *ssl,
                                             enum bufferevent_ssl_state state, int options)
{
    BIO *bio = BIO_new_socket(fd, BIO_NOCLOSE);
    struct bufferevent *bev;

    if (!bio) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_bio(ssl, bio, bio);
    bev = bufferevent_openssl_socket_new(base, fd, ssl, state, options);
    /* a failure frees ssl (and with it bio) with BEV_OPT_CLOSE_ON_FREE only */
    if (!bev && !(options & BEV_OPT_CLOSE_ON_FREE))
        SSL_free(ssl);
    return bev;
}

struct bufferevent *pgs_tls_bufferevent(struct event_base *base, int fd, SSL *ssl,
                                        enum bufferevent_ssl_state state)
{
    return pgs_tls_bufferevent_opts(base, fd, ssl, state,
                                    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}
