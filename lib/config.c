/* Connection configuration: cluster endpoint / cluster id / postgresql://
 * URI / libpq conninfo / environment / explicit settings -> one resolved
 * dsql_config. Pure parsing, no network, no libpq. */
#include "internal.h"
#include "hostname.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

typedef struct entry {
    char *key;
    char *value;
    int source;
} entry;

typedef struct rhost {
    char *host;
    char *hostaddr; /* NULL when none */
    unsigned port;
    char *signing_host;
    char *region;
} rhost;

struct dsql_config {
    entry *entries;
    size_t n, cap;
    /* resolved state */
    int resolved;
    rhost *hosts;
    size_t nhosts;
    const char *user;
    const char *dbname;
    uint32_t duration;
    char duration_text[16];
    /* pass-through parameter indexes into entries */
    size_t *params;
    size_t nparams;
};

static const char *const CONNECTOR_KEYS[] = {
    "region", "profile", "token_duration_secs", "cluster_id", "signing_host",
    "application_name_prefix", "connect_retries", "connect_retry_delay_ms",
    "allow_insecure_tls", NULL};

int dsql_config_is_connector_key(const char *key)
{
    if (!key)
        return 0;
    for (size_t i = 0; CONNECTOR_KEYS[i]; i++)
        if (strcmp(key, CONNECTOR_KEYS[i]) == 0)
            return 1;
    return 0;
}

static void unresolve(dsql_config *cfg)
{
    for (size_t i = 0; i < cfg->nhosts; i++) {
        dsql__free(cfg->hosts[i].host);
        dsql__free(cfg->hosts[i].hostaddr);
        dsql__free(cfg->hosts[i].signing_host);
        dsql__free(cfg->hosts[i].region);
    }
    dsql__free(cfg->hosts);
    dsql__free(cfg->params);
    cfg->hosts = NULL;
    cfg->nhosts = 0;
    cfg->params = NULL;
    cfg->nparams = 0;
    cfg->resolved = 0;
    cfg->user = cfg->dbname = NULL;
    cfg->duration = 0;
}

dsql_config *dsql_config_new(dsql_error *err)
{
    dsql_config *cfg = dsql__calloc(1, sizeof *cfg);
    if (!cfg)
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a configuration");
    return cfg;
}

void dsql_config_free(dsql_config *cfg)
{
    if (!cfg)
        return;
    unresolve(cfg);
    for (size_t i = 0; i < cfg->n; i++) {
        dsql__free(cfg->entries[i].key);
        dsql__free(cfg->entries[i].value);
    }
    dsql__free(cfg->entries);
    dsql__free(cfg);
}

static entry *find(const dsql_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->entries[i].key, key) == 0)
            return &cfg->entries[i];
    return NULL;
}

static const char *raw(const dsql_config *cfg, const char *key)
{
    entry *e = find(cfg, key);
    return e ? e->value : NULL;
}

static int valid_key(const char *key)
{
    if (!key || !*key || strlen(key) > 64)
        return 0;
    for (const char *c = key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_'))
            return 0;
    return 1;
}

/* Stores key=value (n bytes of value) from source; weaker sources never
 * replace stronger ones. */
static dsql_status put(dsql_config *cfg, int source, const char *key, const char *value,
                       size_t vlen, dsql_error *err)
{
    if (!valid_key(key))
        return dsql__error(err, DSQL_EINVAL,
                           "configuration key '%.64s' is invalid (letters, digits and '_' "
                           "only)", key ? key : "(null)");
    if (strcmp(key, "password") == 0)
        return dsql__error(err, DSQL_ECONFIG,
                           "a password is given; libdsqlauth always uses a freshly signed "
                           "IAM token as the password, remove it");
    if (memchr(value, '\0', vlen))
        return dsql__error(err, DSQL_EINVAL, "value of '%s' contains a NUL byte", key);
    entry *e = find(cfg, key);
    if (e && e->source > source)
        return DSQL_OK;
    char *v = dsql__strndup(value, vlen);
    if (!v)
        return dsql__error(err, DSQL_ENOMEM, "out of memory storing '%s'", key);
    unresolve(cfg);
    if (e) {
        dsql__free(e->value);
        e->value = v;
        e->source = source;
        return DSQL_OK;
    }
    if (cfg->n == cfg->cap) {
        size_t ncap = cfg->cap ? cfg->cap * 2 : 16;
        entry *ne = dsql__realloc(cfg->entries, ncap * sizeof *ne);
        if (!ne) {
            dsql__free(v);
            return dsql__error(err, DSQL_ENOMEM, "out of memory storing '%s'", key);
        }
        cfg->entries = ne;
        cfg->cap = ncap;
    }
    char *k = dsql__strdup(key);
    if (!k) {
        dsql__free(v);
        return dsql__error(err, DSQL_ENOMEM, "out of memory storing '%s'", key);
    }
    cfg->entries[cfg->n++] = (entry){k, v, source};
    return DSQL_OK;
}

static void drop(dsql_config *cfg, int source, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++) {
        entry *e = &cfg->entries[i];
        if (strcmp(e->key, key) == 0 && e->source <= source) {
            unresolve(cfg);
            dsql__free(e->key);
            dsql__free(e->value);
            memmove(e, e + 1, (cfg->n - i - 1) * sizeof *e);
            cfg->n--;
            return;
        }
    }
}

dsql_config *dsql_config_dup(const dsql_config *cfg, dsql_error *err)
{
    if (!cfg) {
        dsql__error(err, DSQL_EINVAL, "configuration is NULL");
        return NULL;
    }
    dsql_config *c = dsql_config_new(err);
    if (!c)
        return NULL;
    for (size_t i = 0; i < cfg->n; i++) {
        const entry *e = &cfg->entries[i];
        if (put(c, e->source, e->key, e->value, strlen(e->value), err) != DSQL_OK) {
            dsql_config_free(c);
            return NULL;
        }
    }
    if (cfg->resolved && dsql_config_resolve(c, err) != DSQL_OK) {
        dsql_config_free(c);
        return NULL;
    }
    return c;
}

static int valid_cluster_id(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

static int valid_region(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DSQL_REGION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* The connector keys that can be checked on their own, at once: DSQL_OK
 * or DSQL_EINVAL naming the key. */
static dsql_status check_value(const char *key, const char *value, dsql_error *err)
{
    if ((strcmp(key, "host") == 0 || strcmp(key, "user") == 0) && !*value)
        return dsql__error(err, DSQL_EINVAL, "%s is empty", key);
    if (strcmp(key, "region") == 0 && !valid_region(value))
        return dsql__error(err, DSQL_EINVAL,
                           "region '%.70s' is invalid (lowercase letters, digits and '-')",
                           value);
    if (strcmp(key, "cluster_id") == 0 && !valid_cluster_id(value, strlen(value)))
        return dsql__error(err, DSQL_EINVAL,
                           "cluster_id '%.70s' is invalid (1..63 lowercase letters and digits)",
                           value);
    if (strcmp(key, "token_duration_secs") == 0) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (!*value || *end || errno || v == 0 || v > DSQL_TOKEN_MAX_EXPIRES ||
            !(*value >= '0' && *value <= '9'))
            return dsql__error(err, DSQL_EINVAL,
                               "token_duration_secs \"%.20s\" is not a number in 1..%u", value,
                               DSQL_TOKEN_MAX_EXPIRES);
    }
    return DSQL_OK;
}

dsql_status dsql_config_set_from(dsql_config *cfg, dsql_config_source source, const char *key,
                                 const char *value, dsql_error *err)
{
    if (!cfg)
        return dsql__error(err, DSQL_EINVAL, "configuration is NULL");
    if (source < DSQL_SOURCE_ENV || source > DSQL_SOURCE_EXPLICIT)
        return dsql__error(err, DSQL_EINVAL, "configuration source %d is invalid", (int)source);
    if (!value) {
        if (!valid_key(key))
            return dsql__error(err, DSQL_EINVAL, "configuration key is invalid");
        drop(cfg, (int)source, key);
        return DSQL_OK;
    }
    if (valid_key(key)) {
        dsql_status st = check_value(key, value, err);
        if (st != DSQL_OK)
            return st;
    }
    return put(cfg, (int)source, key, value, strlen(value), err);
}

dsql_status dsql_config_set(dsql_config *cfg, const char *key, const char *value,
                            dsql_error *err)
{
    return dsql_config_set_from(cfg, DSQL_SOURCE_EXPLICIT, key, value, err);
}

/* ---- URI ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Strict %XX decoding of s[0..n) into a new string; %00 and bad escapes are
 * errors naming what was being decoded. */
static dsql_status pct_decode(const char *s, size_t n, const char *what, char **out,
                              dsql_error *err)
{
    char *d = dsql__malloc(n + 1);
    if (!d)
        return dsql__error(err, DSQL_ENOMEM, "out of memory decoding the URI");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[o++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            dsql__free(d);
            return dsql__error(err, DSQL_EINVAL,
                               "URI %s has an invalid percent-encoding at \"%.3s\"", what,
                               s + i);
        }
        if (hi == 0 && lo == 0) {
            dsql__free(d);
            return dsql__error(err, DSQL_EINVAL, "URI %s contains %%00, which is not allowed",
                               what);
        }
        d[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    d[o] = '\0';
    *out = d;
    return DSQL_OK;
}

/* Growable string for the host and port lists. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t ncap = (b->n + n + 1) * 2;
        char *np = dsql__realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static dsql_status uri_hosts(const char *s, size_t n, sbuf *hosts, sbuf *ports, int *any_port,
                             dsql_error *err)
{
    size_t i = 0;
    int count = 0;
    for (;;) {
        if (count++)
            sb_add(hosts, ",", 1), sb_add(ports, ",", 1);
        char *h = NULL;
        dsql_status st;
        if (i < n && s[i] == '[') {
            size_t j = i + 1;
            while (j < n && s[j] != ']')
                j++;
            if (j >= n)
                return dsql__error(err, DSQL_EINVAL,
                                   "URI host \"%.*s\" has '[' without a matching ']'",
                                   (int)(n - i > 60 ? 60 : n - i), s + i);
            if (j == i + 1)
                return dsql__error(err, DSQL_EINVAL, "URI host \"[]\" is an empty IPv6 address");
            for (size_t k = i + 1; k < j; k++)
                if (!(hexval(s[k]) >= 0 || s[k] == ':' || s[k] == '.' || s[k] == '%'))
                    return dsql__error(err, DSQL_EINVAL,
                                       "URI host \"%.*s\" is not an IPv6 address",
                                       (int)(j - i + 1 > 60 ? 60 : j - i + 1), s + i);
            st = pct_decode(s + i + 1, j - i - 1, "host", &h, err);
            if (st != DSQL_OK)
                return st;
            i = j + 1;
            if (i < n && s[i] != ':' && s[i] != ',') {
                dsql__free(h);
                return dsql__error(err, DSQL_EINVAL,
                                   "unexpected character '%c' after IPv6 address in URI", s[i]);
            }
        } else {
            size_t j = i;
            while (j < n && s[j] != ':' && s[j] != ',')
                j++;
            st = pct_decode(s + i, j - i, "host", &h, err);
            if (st != DSQL_OK)
                return st;
            i = j;
        }
        sb_add(hosts, h, strlen(h));
        dsql__free(h);
        if (i < n && s[i] == ':') {
            size_t j = ++i;
            while (j < n && s[j] != ',')
                j++;
            if (j == i)
                return dsql__error(err, DSQL_EINVAL, "URI has ':' without a port number");
            for (size_t k = i; k < j; k++)
                if (s[k] < '0' || s[k] > '9')
                    return dsql__error(err, DSQL_EINVAL,
                                       "URI port \"%.*s\" is not a number",
                                       (int)(j - i > 20 ? 20 : j - i), s + i);
            sb_add(ports, s + i, j - i);
            *any_port = 1;
            i = j;
        }
        if (i >= n)
            break;
        if (s[i] != ',')
            return dsql__error(err, DSQL_EINVAL, "unexpected character '%c' in URI host list",
                               s[i]);
        i++;
    }
    return DSQL_OK;
}

dsql_status dsql__config_parse_uri(dsql_config *cfg, const char *uri, dsql_error *err)
{
    if (!cfg || !uri)
        return dsql__error(err, DSQL_EINVAL, "configuration or URI is NULL");
    const char *p;
    if (strncmp(uri, "postgresql://", 13) == 0)
        p = uri + 13;
    else if (strncmp(uri, "postgres://", 11) == 0)
        p = uri + 11;
    else
        return dsql__error(err, DSQL_EINVAL,
                           "URI must start with postgresql:// or postgres://");
    /* the authority ends at the first '/' or '?' */
    size_t alen = strcspn(p, "/?");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (p[i] == '@')
            at = p + i; /* the last '@' (a raw '@' in a password) */
    dsql_status st = DSQL_OK;
    /* Parse into a scratch config first so that a bad URI changes nothing. */
    dsql_config *tmp = dsql_config_new(err);
    if (!tmp)
        return DSQL_ENOMEM;
    sbuf hosts = {0}, ports = {0};
    const char *h = p;
    if (at) {
        size_t ulen = (size_t)(at - p);
        const char *colon = memchr(p, ':', ulen);
        if (colon) {
            st = dsql__error(err, DSQL_ECONFIG,
                             "the URI contains a password; libdsqlauth always uses a freshly "
                             "signed IAM token as the password, remove it");
            goto out;
        }
        if (ulen > 0) {
            char *u;
            st = pct_decode(p, ulen, "user", &u, err);
            if (st != DSQL_OK)
                goto out;
            st = put(tmp, DSQL_SOURCE_PARSED, "user", u, strlen(u), err);
            dsql__free(u);
            if (st != DSQL_OK)
                goto out;
        }
        h = at + 1;
    }
    size_t hlen = (size_t)(p + alen - h);
    if (hlen > 0) {
        int any_port = 0;
        st = uri_hosts(h, hlen, &hosts, &ports, &any_port, err);
        if (st != DSQL_OK)
            goto out;
        if (hosts.oom || ports.oom) {
            st = dsql__error(err, DSQL_ENOMEM, "out of memory parsing the URI hosts");
            goto out;
        }
        /* "postgresql://:5433/" has no host but a port */
        if (hosts.p && strspn(hosts.p, ",") != hosts.n)
            st = put(tmp, DSQL_SOURCE_PARSED, "host", hosts.p, hosts.n, err);
        if (st == DSQL_OK && any_port)
            st = put(tmp, DSQL_SOURCE_PARSED, "port", ports.p, ports.n, err);
        if (st != DSQL_OK)
            goto out;
    }
    const char *q = p + alen;
    if (*q == '/') {
        q++;
        size_t dlen = strcspn(q, "?");
        if (dlen > 0) {
            char *d;
            st = pct_decode(q, dlen, "database name", &d, err);
            if (st != DSQL_OK)
                goto out;
            st = put(tmp, DSQL_SOURCE_PARSED, "dbname", d, strlen(d), err);
            dsql__free(d);
            if (st != DSQL_OK)
                goto out;
        }
        q += dlen;
    }
    if (*q == '?') {
        q++;
        while (*q) {
            size_t plen = strcspn(q, "&");
            if (plen == 0) {
                q++;
                continue;
            }
            const char *eq = memchr(q, '=', plen);
            if (!eq) {
                st = dsql__error(err, DSQL_EINVAL,
                                 "URI query parameter \"%.*s\" has no '='",
                                 (int)(plen > 60 ? 60 : plen), q);
                goto out;
            }
            if (memchr(eq + 1, '=', plen - (size_t)(eq + 1 - q))) {
                st = dsql__error(err, DSQL_EINVAL,
                                 "URI query parameter \"%.*s\" has more than one '='",
                                 (int)(plen > 60 ? 60 : plen), q);
                goto out;
            }
            char *k = NULL, *v = NULL;
            st = pct_decode(q, (size_t)(eq - q), "parameter name", &k, err);
            if (st == DSQL_OK)
                st = pct_decode(eq + 1, plen - (size_t)(eq + 1 - q), "parameter value", &v,
                                err);
            if (st == DSQL_OK) {
                /* JDBC's spelling: pgjdbc verifies the certificate and the
                 * host name for ssl=true, and so do we (libpq says require) */
                if (strcmp(k, "ssl") == 0 && strcmp(v, "true") == 0)
                    st = put(tmp, DSQL_SOURCE_PARSED, "sslmode", "verify-full", 11, err);
                else if (strcmp(k, "ssl") == 0)
                    st = dsql__error(err, DSQL_EINVAL,
                                     "URI parameter ssl=%.20s is not understood: only ssl=true "
                                     "(sslmode=verify-full); use sslmode=... instead", v);
                else
                    st = put(tmp, DSQL_SOURCE_PARSED, k, v, strlen(v), err);
            }
            dsql__free(k);
            dsql__free(v);
            if (st != DSQL_OK)
                goto out;
            q += plen;
        }
    }
    for (size_t i = 0; i < tmp->n && st == DSQL_OK; i++)
        st = put(cfg, DSQL_SOURCE_PARSED, tmp->entries[i].key, tmp->entries[i].value,
                 strlen(tmp->entries[i].value), err);
out:
    dsql__free(hosts.p);
    dsql__free(ports.p);
    dsql_config_free(tmp);
    return st;
}

/* ---- conninfo ---- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

dsql_status dsql__config_parse_conninfo(dsql_config *cfg, const char *conninfo,
                                        dsql_error *err)
{
    if (!cfg || !conninfo)
        return dsql__error(err, DSQL_EINVAL, "configuration or conninfo is NULL");
    if (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0)
        return dsql__config_parse_uri(cfg, conninfo, err);
    size_t len = strlen(conninfo);
    char *buf = dsql__malloc(len + 1); /* decoded values, never longer */
    dsql_config *tmp = dsql_config_new(err);
    dsql_status st = DSQL_OK;
    if (!buf || !tmp) {
        st = dsql__error(err, DSQL_ENOMEM, "out of memory parsing conninfo");
        goto out;
    }
    const char *c = conninfo;
    for (;;) {
        while (is_space(*c))
            c++;
        if (!*c)
            break;
        const char *k = c;
        while (*c && !is_space(*c) && *c != '=')
            c++;
        size_t klen = (size_t)(c - k);
        while (is_space(*c))
            c++;
        if (*c != '=') {
            st = dsql__error(err, DSQL_EINVAL, "missing \"=\" after \"%.*s\" in conninfo",
                             (int)(klen > 60 ? 60 : klen), k);
            goto out;
        }
        if (klen == 0) {
            st = dsql__error(err, DSQL_EINVAL, "conninfo has '=' without a key");
            goto out;
        }
        c++;
        while (is_space(*c))
            c++;
        size_t o = 0;
        if (*c == '\'') {
            c++;
            for (;;) {
                if (!*c) {
                    st = dsql__error(err, DSQL_EINVAL,
                                     "unterminated quoted string in conninfo (value of "
                                     "\"%.*s\")",
                                     (int)(klen > 60 ? 60 : klen), k);
                    goto out;
                }
                if (*c == '\\') {
                    c++;
                    if (*c)
                        buf[o++] = *c++;
                } else if (*c == '\'') {
                    c++;
                    break;
                } else {
                    buf[o++] = *c++;
                }
            }
        } else {
            while (*c && !is_space(*c)) {
                if (*c == '\\') {
                    c++;
                    if (*c)
                        buf[o++] = *c++;
                } else {
                    buf[o++] = *c++;
                }
            }
        }
        char key[65];
        if (klen >= sizeof key) {
            st = dsql__error(err, DSQL_EINVAL, "conninfo key \"%.20s...\" is too long", k);
            goto out;
        }
        memcpy(key, k, klen);
        key[klen] = '\0';
        st = put(tmp, DSQL_SOURCE_PARSED, key, buf, o, err);
        if (st != DSQL_OK)
            goto out;
    }
    for (size_t i = 0; i < tmp->n && st == DSQL_OK; i++)
        st = put(cfg, DSQL_SOURCE_PARSED, tmp->entries[i].key, tmp->entries[i].value,
                 strlen(tmp->entries[i].value), err);
out:
    if (buf) {
        OPENSSL_cleanse(buf, len + 1);
        dsql__free(buf);
    }
    dsql_config_free(tmp);
    return st;
}

dsql_status dsql_config_parse(dsql_config *cfg, const char *input, dsql_error *err)
{
    if (!cfg || !input)
        return dsql__error(err, DSQL_EINVAL, "configuration or input is NULL");
    while (is_space(*input))
        input++;
    if (!*input)
        return dsql__error(err, DSQL_EINVAL, "connection input is empty");
    if (strncmp(input, "postgresql://", 13) == 0 || strncmp(input, "postgres://", 11) == 0)
        return dsql__config_parse_uri(cfg, input, err);
    if (strchr(input, '='))
        return dsql__config_parse_conninfo(cfg, input, err);
    size_t n = strlen(input);
    if (n == 26 && valid_cluster_id(input, n))
        return dsql_config_set_from(cfg, DSQL_SOURCE_PARSED, "cluster_id", input, err);
    const char *h = input;
    if (strncasecmp(h, "https://", 8) == 0)
        h += 8;
    n = strlen(h);
    if (n > 0 && h[n - 1] == '/')
        n--;
    if (n == 0 || memchr(h, '/', n) || memchr(h, '?', n) || memchr(h, ' ', n))
        return dsql__error(err, DSQL_EINVAL,
                           "\"%.80s\" is neither a host name, a cluster id, a postgresql:// "
                           "URI nor a key=value conninfo", input);
    /* "endpoint:port" (one colon, digits after it; IPv6 has several) */
    const char *colon = memchr(h, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - h))) {
        size_t plen = n - (size_t)(colon + 1 - h);
        char port[8];
        if (plen == 0 || plen >= sizeof port || strspn(colon + 1, "0123456789") < plen)
            return dsql__error(err, DSQL_EINVAL, "port in \"%.80s\" is not a number", input);
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
        dsql_status st = put(cfg, DSQL_SOURCE_PARSED, "port", port, plen, err);
        return st != DSQL_OK ? st
                             : put(cfg, DSQL_SOURCE_PARSED, "host", h, (size_t)(colon - h), err);
    }
    return put(cfg, DSQL_SOURCE_PARSED, "host", h, n, err);
}

const char *dsql__config_explicit_profile(const dsql_config *cfg)
{
    const entry *e = find(cfg, "profile");
    return e && e->source > DSQL_SOURCE_ENV && e->value[0] ? e->value : NULL;
}

dsql_status dsql_config_load_env(dsql_config *cfg, dsql_error *err)
{
    static const char *const MAP[][2] = {
        {"PGHOST", "host"},         {"PGHOSTADDR", "hostaddr"},
        {"PGPORT", "port"},         {"PGUSER", "user"},
        {"PGDATABASE", "dbname"},   {"PGSSLMODE", "sslmode"},
        {"PGSSLROOTCERT", "sslrootcert"}, {"PGAPPNAME", "application_name"},
        {"PGCONNECT_TIMEOUT", "connect_timeout"}, {"AWS_PROFILE", "profile"},
        {"AWS_REGION", "region"},   {"AWS_DEFAULT_REGION", "region"}};
    if (!cfg)
        return dsql__error(err, DSQL_EINVAL, "configuration is NULL");
    for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++) {
        const char *v = getenv(MAP[i][0]);
        if (!v || !*v)
            continue;
        /* AWS_REGION is read first; AWS_DEFAULT_REGION only fills the gap */
        if (strcmp(MAP[i][0], "AWS_DEFAULT_REGION") == 0 && getenv("AWS_REGION") &&
            *getenv("AWS_REGION"))
            continue;
        dsql_status st = put(cfg, DSQL_SOURCE_ENV, MAP[i][1], v, strlen(v), err);
        if (st != DSQL_OK)
            return st;
    }
    return DSQL_OK;
}

/* ---- resolution ---- */

/* Splits a comma list into pieces (pointers into a copy). */
typedef struct list {
    char *copy;
    char **item;
    size_t n;
} list;

static void list_free(list *l)
{
    dsql__free(l->copy);
    dsql__free(l->item);
    l->copy = NULL;
    l->item = NULL;
    l->n = 0;
}

static dsql_status list_split(const char *s, list *l, dsql_error *err)
{
    l->copy = NULL;
    l->item = NULL;
    l->n = 0;
    if (!s)
        return DSQL_OK;
    size_t n = 1;
    for (const char *c = s; *c; c++)
        n += *c == ',';
    l->copy = dsql__strdup(s);
    l->item = dsql__calloc(n, sizeof *l->item);
    if (!l->copy || !l->item) {
        list_free(l);
        return dsql__error(err, DSQL_ENOMEM, "out of memory splitting a list");
    }
    char *p = l->copy;
    for (size_t i = 0; i < n; i++) {
        l->item[i] = p;
        char *comma = strchr(p, ',');
        if (comma) {
            *comma = '\0';
            p = comma + 1;
        }
    }
    l->n = n;
    return DSQL_OK;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
        return 0;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

static int is_ipv6_literal(const char *h) { return strchr(h, ':') != NULL; }

static dsql_status resolve_host(dsql_config *cfg, rhost *r, const char *host,
                                const char *hostaddr, const char *port, const char *signing,
                                const char *region, dsql_error *err)
{
    if (!*host)
        return dsql__error(err, DSQL_ECONFIG, "the host list has an empty entry");
    unsigned long pv = DSQL_CONFIG_DEFAULT_PORT;
    if (port && *port && (!parse_uint(port, 65535, &pv) || pv == 0))
        return dsql__error(err, DSQL_ECONFIG, "port \"%.20s\" for host '%.100s' is not a number "
                           "in 1..65535", port, host);
    const char *sign = signing && *signing ? signing : host;
    if (sign == host && host[0] == '/')
        return dsql__error(err, DSQL_ECONFIG,
                           "host '%.100s' is a Unix-domain socket directory; set signing_host "
                           "to the cluster endpoint the token is for", host);
    /* say what is wrong rather than "IPv6" for two common mistakes */
    const char *what = sign == host ? "host" : "signing_host";
    const char *colon = strchr(sign, ':');
    if (strstr(sign, "://"))
        return dsql__error(err, DSQL_ECONFIG,
                           "%s '%.100s' is a URL: give the host name alone", what, sign);
    if (colon && !strchr(colon + 1, ':') && colon[1] &&
        strspn(colon + 1, "0123456789") == strlen(colon + 1))
        return dsql__error(err, DSQL_ECONFIG,
                           "%s '%.100s' contains a port: give the host alone and the port "
                           "separately (port=%.10s)", what, sign, colon + 1);
    if (is_ipv6_literal(sign))
        return dsql__error(err, DSQL_ECONFIG,
                           "%s '%.100s' is an IPv6 address; tokens are signed for the cluster "
                           "name: use host=<cluster endpoint> with hostaddr=<address>, or set "
                           "signing_host", sign == host ? "host" : "signing_host", sign);
    const char *h;
    size_t hn;
    dsql_status st = dsql__hostname_check(sign, &h, &hn, err);
    if (st != DSQL_OK) {
        char msg[300];
        if (err) {
            snprintf(msg, sizeof msg, "%.299s", err->message);
            dsql__error(err, DSQL_ECONFIG, "%s '%.100s': %s",
                        sign == host ? "host" : "signing_host", sign, msg);
        }
        return DSQL_ECONFIG;
    }
    const char *rg;
    size_t rn;
    char rbuf[DSQL_REGION_MAX + 1];
    if (dsql__region_in_hostname(h, hn, &rg, &rn)) {
        if (rn > DSQL_REGION_MAX)
            return dsql__error(err, DSQL_ECONFIG, "region in host '%.100s' is too long", sign);
        for (size_t i = 0; i < rn; i++)
            rbuf[i] = (rg[i] >= 'A' && rg[i] <= 'Z') ? (char)(rg[i] - 'A' + 'a') : rg[i];
        rbuf[rn] = '\0';
        region = rbuf;
    } else if (!region) {
        return dsql__error(err, DSQL_ECONFIG,
                           "%s '%.100s' is not an Aurora DSQL endpoint "
                           "(<id>.dsql.<region>.on.aws), so the region cannot be discovered "
                           "from it: set region (region=... in conninfo, ?region=... in a URI)",
                           sign == host ? "host" : "signing_host", sign);
    }
    r->port = (unsigned)pv;
    r->host = dsql__strdup(host);
    r->hostaddr = hostaddr && *hostaddr ? dsql__strdup(hostaddr) : NULL;
    r->signing_host = dsql__strndup(h, hn);
    r->region = dsql__strdup(region);
    if (!r->host || (hostaddr && *hostaddr && !r->hostaddr) || !r->signing_host || !r->region)
        return dsql__error(err, DSQL_ENOMEM, "out of memory resolving hosts");
    (void)cfg;
    return DSQL_OK;
}

/* A token is a bearer credential valid for up to a week: any sslmode short
 * of verify-full could hand it to a server that is not the cluster (or send
 * it in cleartext). One rule for every entry point, applied here before any
 * adapter touches the network; the caller may opt out, loudly. */
static dsql_status check_tls(const dsql_config *cfg, dsql_error *err)
{
    static const char *const weaker[] = {"disable", "allow", "prefer", "require", "verify-ca",
                                         NULL};
    const char *opt = raw(cfg, "allow_insecure_tls");
    if (opt && strcmp(opt, "0") != 0 && strcmp(opt, "1") != 0)
        return dsql__error(err, DSQL_ECONFIG, "allow_insecure_tls \"%.20s\" is not 0 or 1", opt);
    const entry *m = find(cfg, "sslmode");
    if (!m || strcmp(m->value, "verify-full") == 0)
        return DSQL_OK;
    size_t i = 0;
    while (weaker[i] && strcmp(m->value, weaker[i]) != 0)
        i++;
    if (!weaker[i])
        return dsql__error(err, DSQL_ECONFIG,
                           "sslmode \"%.40s\" is not one of disable, allow, prefer, require, "
                           "verify-ca, verify-full", m->value);
    const char *from = m->source == DSQL_SOURCE_ENV      ? " (from the environment, PGSSLMODE)"
                       : m->source == DSQL_SOURCE_PARSED ? " (from the connection string)"
                                                         : "";
    const char *how = i < 3 ? "may travel unencrypted or to a server whose certificate is "
                              "not checked"
                            : "may go to a server whose certificate does not prove it is the "
                              "cluster";
    if (!opt || strcmp(opt, "1") != 0)
        return dsql__error(err, DSQL_ECONFIG,
                           "sslmode=%s%s is weaker than verify-full: the IAM token %s; use "
                           "sslmode=verify-full, or opt in with allow_insecure_tls=1",
                           m->value, from, how);
    dsql__log(DSQL_LOG_WARN, "sslmode=%s%s with allow_insecure_tls=1: the IAM token %s",
              m->value, from, how);
    return DSQL_OK;
}

static int is_resolved_key(const char *k)
{
    return strcmp(k, "host") == 0 || strcmp(k, "hostaddr") == 0 || strcmp(k, "port") == 0 ||
           strcmp(k, "user") == 0 || strcmp(k, "dbname") == 0;
}

dsql_status dsql_config_resolve(dsql_config *cfg, dsql_error *err)
{
    if (!cfg)
        return dsql__error(err, DSQL_EINVAL, "configuration is NULL");
    if (cfg->resolved)
        return DSQL_OK;
    unresolve(cfg);
    dsql_status st = DSQL_OK;
    list hosts = {0}, addrs = {0}, ports = {0}, signs = {0};
    char *built = NULL;

    const char *region = raw(cfg, "region");
    if (region && !valid_region(region))
        return dsql__error(err, DSQL_ECONFIG,
                           "region '%.70s' is invalid (lowercase letters, digits and '-')",
                           region);
    unsigned long dur = DSQL_TOKEN_DEFAULT_EXPIRES;
    const char *ds = raw(cfg, "token_duration_secs");
    if (ds && (!parse_uint(ds, DSQL_TOKEN_MAX_EXPIRES, &dur) || dur == 0))
        return dsql__error(err, DSQL_ECONFIG,
                           "token_duration_secs \"%.20s\" is not a number in 1..%u", ds,
                           DSQL_TOKEN_MAX_EXPIRES);
    unsigned long tmpv;
    const char *rs = raw(cfg, "connect_retries");
    if (rs && !parse_uint(rs, 10, &tmpv))
        return dsql__error(err, DSQL_ECONFIG, "connect_retries \"%.20s\" is not a number in 0..10",
                           rs);
    rs = raw(cfg, "connect_retry_delay_ms");
    if (rs && !parse_uint(rs, 60000, &tmpv))
        return dsql__error(err, DSQL_ECONFIG,
                           "connect_retry_delay_ms \"%.20s\" is not a number in 0..60000", rs);
    const char *user = raw(cfg, "user");
    if (user && !*user)
        return dsql__error(err, DSQL_ECONFIG, "user is empty");
    if ((st = check_tls(cfg, err)) != DSQL_OK)
        return st;

    entry *he = find(cfg, "host"), *ce = find(cfg, "cluster_id");
    const char *host = he ? he->value : NULL;
    if (ce && (!he || ce->source > he->source)) {
        if (!valid_cluster_id(ce->value, strlen(ce->value)))
            return dsql__error(err, DSQL_ECONFIG,
                               "cluster_id '%.70s' is invalid (1..63 lowercase letters and "
                               "digits)", ce->value);
        if (!region)
            return dsql__error(err, DSQL_ECONFIG,
                               "cluster_id '%.70s' needs a region to build the endpoint "
                               "<id>.dsql.<region>.on.aws: set region", ce->value);
        size_t n = strlen(ce->value) + strlen(region) + sizeof ".dsql..on.aws";
        built = dsql__malloc(n);
        if (!built)
            return dsql__error(err, DSQL_ENOMEM, "out of memory building the endpoint");
        snprintf(built, n, "%s.dsql.%s.on.aws", ce->value, region);
        host = built;
    } else if (ce && he && ce->source == he->source) {
        return dsql__error(err, DSQL_ECONFIG,
                           "both host and cluster_id are given; give one of them");
    }
    if (!host || !*host) {
        dsql__free(built);
        return dsql__error(err, DSQL_ECONFIG,
                           "no host: give a cluster endpoint, a cluster id and region, a URI "
                           "or host=...");
    }
    if ((st = list_split(host, &hosts, err)) != DSQL_OK ||
        (st = list_split(raw(cfg, "hostaddr"), &addrs, err)) != DSQL_OK ||
        (st = list_split(raw(cfg, "port"), &ports, err)) != DSQL_OK ||
        (st = list_split(raw(cfg, "signing_host"), &signs, err)) != DSQL_OK)
        goto out;
    if (addrs.n && addrs.n != hosts.n) {
        st = dsql__error(err, DSQL_ECONFIG, "hostaddr lists %zu addresses for %zu hosts",
                         addrs.n, hosts.n);
        goto out;
    }
    if (ports.n > 1 && ports.n != hosts.n) {
        st = dsql__error(err, DSQL_ECONFIG, "port lists %zu ports for %zu hosts", ports.n,
                         hosts.n);
        goto out;
    }
    if (signs.n > 1 && signs.n != hosts.n) {
        st = dsql__error(err, DSQL_ECONFIG, "signing_host lists %zu names for %zu hosts",
                         signs.n, hosts.n);
        goto out;
    }
    cfg->hosts = dsql__calloc(hosts.n, sizeof *cfg->hosts);
    if (!cfg->hosts) {
        st = dsql__error(err, DSQL_ENOMEM, "out of memory resolving hosts");
        goto out;
    }
    cfg->nhosts = hosts.n;
    for (size_t i = 0; i < hosts.n; i++) {
        st = resolve_host(cfg, &cfg->hosts[i], hosts.item[i], addrs.n ? addrs.item[i] : NULL,
                          ports.n ? ports.item[ports.n > 1 ? i : 0] : NULL,
                          signs.n ? signs.item[signs.n > 1 ? i : 0] : NULL, region, err);
        if (st != DSQL_OK)
            goto out;
    }
    cfg->params = dsql__calloc(cfg->n ? cfg->n : 1, sizeof *cfg->params);
    if (!cfg->params) {
        st = dsql__error(err, DSQL_ENOMEM, "out of memory resolving parameters");
        goto out;
    }
    for (size_t i = 0; i < cfg->n; i++)
        if (!dsql_config_is_connector_key(cfg->entries[i].key) &&
            !is_resolved_key(cfg->entries[i].key))
            cfg->params[cfg->nparams++] = i;
    cfg->user = user ? user : DSQL_CONFIG_DEFAULT_USER;
    const char *db = raw(cfg, "dbname");
    cfg->dbname = db && *db ? db : DSQL_CONFIG_DEFAULT_DBNAME;
    cfg->duration = (uint32_t)dur;
    snprintf(cfg->duration_text, sizeof cfg->duration_text, "%u", (unsigned)dur);
    cfg->resolved = 1;
out:
    list_free(&hosts);
    list_free(&addrs);
    list_free(&ports);
    list_free(&signs);
    dsql__free(built);
    if (st != DSQL_OK)
        unresolve(cfg);
    return st;
}

const char *dsql_config_get(const dsql_config *cfg, const char *key)
{
    if (!cfg || !key)
        return NULL;
    if (cfg->resolved) {
        if (strcmp(key, "user") == 0)
            return cfg->user;
        if (strcmp(key, "dbname") == 0)
            return cfg->dbname;
        if (strcmp(key, "token_duration_secs") == 0)
            return cfg->duration_text;
        if (strcmp(key, "region") == 0 && !raw(cfg, "region") && cfg->nhosts)
            return cfg->hosts[0].region;
    }
    return raw(cfg, key);
}

size_t dsql_config_host_count(const dsql_config *cfg)
{
    return cfg && cfg->resolved ? cfg->nhosts : 0;
}

dsql_status dsql_config_host_at(const dsql_config *cfg, size_t i, dsql_config_host *out,
                                dsql_error *err)
{
    if (!cfg || !out)
        return dsql__error(err, DSQL_EINVAL, "configuration or output is NULL");
    if (!cfg->resolved)
        return dsql__error(err, DSQL_EINVAL, "configuration is not resolved");
    if (i >= cfg->nhosts)
        return dsql__error(err, DSQL_EINVAL, "host index %zu is out of range (%zu hosts)", i,
                           cfg->nhosts);
    const rhost *r = &cfg->hosts[i];
    out->host = r->host;
    out->hostaddr = r->hostaddr;
    out->port = r->port;
    out->signing_host = r->signing_host;
    out->region = r->region;
    return DSQL_OK;
}

size_t dsql_config_param_count(const dsql_config *cfg)
{
    return cfg && cfg->resolved ? cfg->nparams : 0;
}

dsql_status dsql_config_param_at(const dsql_config *cfg, size_t i, const char **key,
                                 const char **value)
{
    if (!cfg || !cfg->resolved || i >= cfg->nparams || !key || !value)
        return DSQL_EINVAL;
    const entry *e = &cfg->entries[cfg->params[i]];
    *key = e->key;
    *value = e->value;
    return DSQL_OK;
}
