/* HTTP through libcurl: the only file that includes curl.h. One easy
 * handle per request (credential fetches are rare: the cache in front of
 * every provider makes them once per expiry). */
#include "http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "strbuf.h"

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;
static long g_timeout_cap_ms;
static const char *g_test_ca_file;

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void dsql__http_set_timeout_cap_ms(long ms) { g_timeout_cap_ms = ms; }

void dsql__http_set_test_ca_file(const char *path) { g_test_ca_file = path; }

void dsql__http_response_clear(dsql__http_response *resp)
{
    if (!resp)
        return;
    if (resp->body) {
        OPENSSL_cleanse(resp->body, resp->body_len);
        dsql__free(resp->body);
    }
    dsql__free(resp->content_type);
    memset(resp, 0, sizeof *resp);
}

static void slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next)
        if (i->data)
            OPENSSL_cleanse(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static dsql_status url_get(CURLU *u, CURLUPart part, unsigned flags, char **out)
{
    char *v = NULL;
    CURLUcode rc = curl_url_get(u, part, &v, flags);
    if (rc != CURLUE_OK) {
        *out = NULL;
        return rc == CURLUE_OUT_OF_MEMORY ? DSQL_ENOMEM : DSQL_EINVAL;
    }
    *out = dsql__strdup(v);
    curl_free(v);
    return *out ? DSQL_OK : DSQL_ENOMEM;
}

dsql_status dsql__http_url_parts(const char *url, char **scheme, char **host,
                                 char **host_header, char **path, dsql_error *err)
{
    char *s = NULL, *h = NULL, *port = NULL, *hh = NULL, *p = NULL;
    dsql_status st = DSQL_OK;
    pthread_once(&g_curl_once, curl_init_once);
    CURLU *u = curl_url();
    if (!u)
        return dsql__error(err, DSQL_ENOMEM, "out of memory parsing a URL");
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return dsql__error(err, DSQL_EINVAL, "\"%s\" is not a valid http(s) URL",
                           url ? url : "(null)");
    }
    st = url_get(u, CURLUPART_SCHEME, 0, &s);
    if (st == DSQL_OK)
        st = url_get(u, CURLUPART_HOST, 0, &h);
    if (st == DSQL_OK)
        st = url_get(u, CURLUPART_PATH, 0, &p);
    if (st == DSQL_OK && url_get(u, CURLUPART_PORT, CURLU_NO_DEFAULT_PORT, &port) == DSQL_ENOMEM)
        st = DSQL_ENOMEM;
    curl_url_cleanup(u);
    if (st == DSQL_OK && strcmp(s, "http") != 0 && strcmp(s, "https") != 0)
        st = DSQL_EINVAL;
    if (st == DSQL_OK && !h[0])
        st = DSQL_EINVAL;
    if (st == DSQL_OK && host_header) {
        dsql__strbuf sb = {0};
        dsql__sb_puts(&sb, h);
        if (port) {
            dsql__sb_putc(&sb, ':');
            dsql__sb_puts(&sb, port);
        }
        if (!(hh = dsql__sb_take(&sb)))
            st = DSQL_ENOMEM;
    }
    dsql__free(port);
    if (st != DSQL_OK) {
        dsql__free(s);
        dsql__free(h);
        dsql__free(hh);
        dsql__free(p);
        return st == DSQL_ENOMEM
                   ? dsql__error(err, DSQL_ENOMEM, "out of memory parsing a URL")
                   : dsql__error(err, DSQL_EINVAL,
                                 "\"%s\" is not a valid http(s) URL with a host", url);
    }
#define GIVE(dst, v)                                                                           \
    do {                                                                                       \
        if (dst)                                                                               \
            *(dst) = (v);                                                                      \
        else                                                                                   \
            dsql__free(v);                                                                     \
    } while (0)
    GIVE(scheme, s);
    GIVE(host, h);
    GIVE(path, p);
#undef GIVE
    if (host_header)
        *host_header = hh;
    return DSQL_OK;
}

char *dsql__http_url_host(const char *url, char *buf, size_t cap)
{
    char *h = NULL;
    if (cap == 0)
        return buf;
    if (dsql__http_url_parts(url, NULL, &h, NULL, NULL, NULL) == DSQL_OK) {
        snprintf(buf, cap, "%s", h);
        dsql__free(h);
    } else {
        snprintf(buf, cap, "?");
    }
    return buf;
}

int dsql__http_content_type_is(const char *ct, const char *want)
{
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    char c = ct[n];
    return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

typedef struct sink {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int too_big;
    int nomem;
} sink;

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (n > s->max - s->len) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *d = dsql__malloc(cap);
        if (!d) {
            s->nomem = 1;
            return 0;
        }
        if (s->data) {
            memcpy(d, s->data, s->len);
            OPENSSL_cleanse(s->data, s->len);
            dsql__free(s->data);
        }
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

static long cap_timeout(long ms, long dflt)
{
    if (ms <= 0)
        ms = dflt;
    if (g_timeout_cap_ms > 0 && ms > g_timeout_cap_ms)
        ms = g_timeout_cap_ms;
    return ms;
}

static dsql_status map_curl_error(const dsql__http_request *req, const char *host, CURLcode rc,
                                  const char *detail, long timeout_ms, dsql_error *err)
{
    const char *what = req->what ? req->what : "HTTP";
    const char *cause = detail && detail[0] ? detail : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return dsql__error(err, DSQL_ETIMEOUT, "%s: %s %s timed out (limit %ld ms): %s", what,
                           req->method, host, timeout_ms, cause);
    case CURLE_OUT_OF_MEMORY:
        return dsql__error(err, DSQL_ENOMEM, "%s: out of memory talking to %s", what, host);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
        return dsql__error(err, DSQL_ETLS, "%s: TLS with %s failed: %s", what, host, cause);
    case CURLE_COULDNT_RESOLVE_HOST:
        return dsql__error(err, DSQL_ENETWORK, "%s: cannot resolve %s: %s", what, host, cause);
    case CURLE_COULDNT_CONNECT:
        return dsql__error(err, DSQL_ENETWORK, "%s: cannot connect to %s: %s", what, host,
                           cause);
    case CURLE_PARTIAL_FILE:
        return dsql__error(err, DSQL_ENETWORK,
                           "%s: the response from %s was truncated (connection closed "
                           "before the whole body arrived): %s",
                           what, host, cause);
    case CURLE_GOT_NOTHING:
        return dsql__error(err, DSQL_ENETWORK, "%s: %s closed the connection without a response",
                           what, host);
    default:
        return dsql__error(err, DSQL_ENETWORK, "%s: %s %s failed: %s", what, req->method, host,
                           cause);
    }
}

dsql_status dsql__http_perform(const dsql__http_request *req, dsql__http_response *resp,
                               dsql_error *err)
{
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (!req || !resp || !req->url || !req->method)
        return dsql__error(err, DSQL_EINVAL, "HTTP request is incomplete");
    const char *what = req->what ? req->what : "HTTP";
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return dsql__error(err, DSQL_ENETWORK, "%s: libcurl initialisation failed: %s", what,
                           curl_easy_strerror(g_curl_init_rc));

    char host[256];
    char *scheme = NULL;
    dsql_status st = dsql__http_url_parts(req->url, &scheme, NULL, NULL, NULL, err);
    if (st != DSQL_OK)
        return st == DSQL_EINVAL
                   ? dsql__error(err, DSQL_EINVAL,
                                 "%s: endpoint \"%s\" is not a valid http(s) URL", what,
                                 req->url)
                   : dsql__error(err, st, "%s: out of memory parsing the endpoint URL", what);
    dsql__free(scheme);
    dsql__http_url_host(req->url, host, sizeof host);

    CURL *h = curl_easy_init();
    if (!h)
        return dsql__error(err, DSQL_ENOMEM, "%s: out of memory creating an HTTP handle", what);
    struct curl_slist *hdrs = NULL;
    dsql__strbuf line = {0};
    for (size_t i = 0; i < req->header_count; i++) {
        const char *v = req->headers[i].value ? req->headers[i].value : "";
        if (strpbrk(v, "\r\n") || strpbrk(req->headers[i].name, "\r\n:")) {
            slist_free_wiped(hdrs);
            curl_easy_cleanup(h);
            return dsql__error(err, DSQL_EINVAL,
                               "%s: header %s contains a line break or colon; refusing to "
                               "send it",
                               what, req->headers[i].name);
        }
        dsql__sb_puts(&line, req->headers[i].name);
        /* "Name;" is curl's way to send a header with an empty value */
        dsql__sb_puts(&line, v[0] ? ": " : ";");
        dsql__sb_puts(&line, v);
        char *l = dsql__sb_take(&line);
        struct curl_slist *n = l ? curl_slist_append(hdrs, l) : NULL;
        dsql__free_secret(l);
        if (!n) {
            slist_free_wiped(hdrs);
            curl_easy_cleanup(h);
            return dsql__error(err, DSQL_ENOMEM, "%s: out of memory building headers", what);
        }
        hdrs = n;
    }
    /* no "Expect: 100-continue" round trip for small POST bodies */
    struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
    if (!n) {
        slist_free_wiped(hdrs);
        curl_easy_cleanup(h);
        return dsql__error(err, DSQL_ENOMEM, "%s: out of memory building headers", what);
    }
    hdrs = n;

    long connect_ms = cap_timeout(req->connect_timeout_ms, 5000);
    long total_ms = cap_timeout(req->timeout_ms, 30000);
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    sink body = {NULL, 0, 0, req->max_body ? req->max_body : DSQL__HTTP_MAX_BODY, 0, 0};

    curl_easy_setopt(h, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (g_test_ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, g_test_ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "libdsqlauth/" DSQL_VERSION_STRING);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    if (req->no_proxy)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    } else {
        /* PUT and others: a fixed body sent as POSTFIELDS under another verb */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }

    dsql__log(DSQL_LOG_DEBUG, "%s: %s %s", what, req->method, host);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        if (ct && !(resp->content_type = dsql__strdup(ct))) {
            st = dsql__error(err, DSQL_ENOMEM, "%s: out of memory reading a response", what);
        } else if (!body.data && !(body.data = dsql__strdup(""))) {
            st = dsql__error(err, DSQL_ENOMEM, "%s: out of memory reading a response", what);
        } else {
            resp->body = body.data;
            resp->body_len = body.len;
            body.data = NULL;
            dsql__log(DSQL_LOG_DEBUG, "%s: %s answered HTTP %ld (%zu bytes)", what, host,
                      resp->status, resp->body_len);
        }
    } else if (body.too_big) {
        st = dsql__error(err, DSQL_ENETWORK,
                         "%s: the response from %s is larger than %zu bytes; refusing it", what,
                         host, body.max);
    } else if (body.nomem) {
        st = dsql__error(err, DSQL_ENOMEM, "%s: out of memory reading the response from %s",
                         what, host);
    } else {
        st = map_curl_error(req, host, rc, errbuf, rc == CURLE_OPERATION_TIMEDOUT ? total_ms : 0,
                            err);
        dsql__log(DSQL_LOG_DEBUG, "%s", err ? err->message : curl_easy_strerror(rc));
    }
    if (body.data) {
        OPENSSL_cleanse(body.data, body.len);
        dsql__free(body.data);
    }
    if (st != DSQL_OK)
        dsql__http_response_clear(resp);
    slist_free_wiped(hdrs);
    curl_easy_cleanup(h);
    return st;
}
