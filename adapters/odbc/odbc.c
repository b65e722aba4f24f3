/* ODBC adapter: a psqlODBC connection string with a fresh IAM token per
 * host, safe quoting of every value, SQLDriverConnect, and errors mapped to
 * dsql_status. Uses only the public libdsqlauth API; built into its own
 * library (libdsqlauth-odbc.a), never into libdsqlauth.so. */
#include "dsqlauth.h"
#include "dsqlauth/adapter.h"
#include "dsqlauth/odbc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#define PLAIN_MAX 127 /* psqlODBC copies Server/Database/UID into fixed buffers */

/* ---- errors ---- */

#define fail dsql_error_set /* the adapter kit's */

/* ---- a string builder whose old buffers are wiped (it holds a token) ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_free(sbuf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
}

static int sb_reserve(sbuf *b, size_t more)
{
    if (b->oom)
        return 0;
    if (b->len + more + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + more + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *n = malloc(cap);
    if (!n) {
        b->oom = 1;
        return 0;
    }
    if (b->p) {
        memcpy(n, b->p, b->len);
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    b->p = n;
    b->cap = cap;
    b->p[b->len] = '\0';
    return 1;
}

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_addc(sbuf *b, char c) { sb_addn(b, &c, 1); }

/* ODBC brace quoting: {value} with '}' doubled. */
static void sb_add_braced(sbuf *b, const char *v, size_t n)
{
    sb_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '}')
            sb_addc(b, '}');
        sb_addc(b, v[i]);
    }
    sb_addc(b, '}');
}

/* libpq conninfo quoting: 'value' with '\' and '\'' backslash-escaped. */
static void sb_add_libpq(sbuf *b, const char *key, const char *v)
{
    if (b->len && b->p[b->len - 1] != '{')
        sb_addc(b, ' ');
    sb_add(b, key);
    sb_add(b, "='");
    for (; *v; v++) {
        if (*v == '\\' || *v == '\'')
            sb_addc(b, '\\');
        sb_addc(b, *v);
    }
    sb_addc(b, '\'');
}

/* ---- public quoting ---- */

dsql_status dsql_odbc_quote(const char *value, char *buf, size_t cap, size_t *len,
                            dsql_error *err)
{
    if (!value || !len || (!buf && cap))
        return fail(err, DSQL_EINVAL, "dsql_odbc_quote: value and len must not be NULL");
    size_t need = 2;
    for (const char *p = value; *p; p++)
        need += (*p == '}') ? 2 : 1;
    *len = need;
    if (cap < need + 1) {
        if (buf && cap)
            buf[0] = '\0';
        return fail(err, DSQL_EBUFSIZE, "dsql_odbc_quote: buffer too small (%zu bytes needed)",
                    need + 1);
    }
    size_t o = 0;
    buf[o++] = '{';
    for (const char *p = value; *p; p++) {
        if (*p == '}')
            buf[o++] = '}';
        buf[o++] = *p;
    }
    buf[o++] = '}';
    buf[o] = '\0';
    return DSQL_OK;
}

/* ---- the connection string ---- */

/* Safe to give psqlODBC raw (it strips no braces from these keys). */
static int plain(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > PLAIN_MAX)
        return 0;
    for (; *v; v++) {
        char c = *v;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int handled_here(const char *k)
{
    static const char *const keys[] = {"sslmode",  "sslrootcert", "gssencmode", "application_name",
                                       "password", "host",        "hostaddr",   "port",
                                       "user",     "dbname",      NULL};
    for (size_t i = 0; keys[i]; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* Builds the whole string for host h into b (token last). */
static dsql_status build(const dsql_config *cfg, const dsql_config_host *h, const char *token,
                         const dsql_odbc_options *opts, sbuf *b, dsql_error *err)
{
    const char *driver = (opts && opts->driver && *opts->driver) ? opts->driver
                                                                  : DSQL_ODBC_DEFAULT_DRIVER;
    /* resolved: dsql_config_resolve refused unknown and weak modes */
    const char *mode = dsql_config_get(cfg, "sslmode");
    if (!mode)
        mode = "verify-full";
    const char *user = dsql_config_get(cfg, "user"), *db = dsql_config_get(cfg, "dbname");
    if (!user || !db || !h->host)
        return fail(err, DSQL_EINTERNAL, "resolved configuration lacks host, user or dbname");
    /* Control characters have no business in any value (psqlODBC and
     * libpq would read some of them as separators). */
    if (has_ctl(driver) || has_ctl(user) || has_ctl(db) || has_ctl(h->host) ||
        (h->hostaddr && has_ctl(h->hostaddr)))
        return fail(err, DSQL_ECONFIG,
                    "driver, host, hostaddr, user and dbname must not contain control characters");

    char port[16];
    snprintf(port, sizeof port, "%u", h->port);

    sb_add(b, "Driver=");
    sb_add_braced(b, driver, strlen(driver));
    sb_addc(b, ';');
    if (opts && opts->extra && *opts->extra) {
        sb_add(b, opts->extra);
        if (opts->extra[strlen(opts->extra) - 1] != ';')
            sb_addc(b, ';');
    }
    if (plain(h->host)) {
        sb_add(b, "Server=");
        sb_add(b, h->host);
        sb_addc(b, ';');
    }
    sb_add(b, "Port=");
    sb_add(b, port);
    sb_addc(b, ';');
    if (plain(db)) {
        sb_add(b, "Database=");
        sb_add(b, db);
        sb_addc(b, ';');
    }
    if (plain(user)) {
        sb_add(b, "UID=");
        sb_add(b, user);
        sb_addc(b, ';');
    }
    sb_add(b, "SSLmode=");
    sb_add(b, mode);
    sb_add(b, ";CommLog=0;Debug=0;");

    /* pqopt: libpq-quoted parameters, then ODBC-braced as a whole. */
    sbuf q = {0};
    if (!plain(h->host))
        sb_add_libpq(&q, "host", h->host);
    if (h->hostaddr)
        sb_add_libpq(&q, "hostaddr", h->hostaddr);
    if (!plain(db))
        sb_add_libpq(&q, "dbname", db);
    if (!plain(user))
        sb_add_libpq(&q, "user", user);
    const char *root = dsql_config_get(cfg, "sslrootcert");
    if (root) {
        sb_add_libpq(&q, "sslrootcert", root);
    } else if (!(getenv("PGSSLROOTCERT") && *getenv("PGSSLROOTCERT")) &&
               strncmp(mode, "verify-", 7) == 0) {
        const char *bundle = dsql_ca_bundle_find();
        if (bundle)
            sb_add_libpq(&q, "sslrootcert", bundle);
    }
    const char *gss = dsql_config_get(cfg, "gssencmode");
    sb_add_libpq(&q, "gssencmode", gss ? gss : "disable");
    const char *app = dsql_config_get(cfg, "application_name");
    if (app) {
        sb_add_libpq(&q, "application_name", app);
    } else {
        char name[128];
        const char *prefix = dsql_config_get(cfg, "application_name_prefix");
        if (prefix && *prefix)
            snprintf(name, sizeof name, "%.60s:libdsqlauth/%s", prefix, dsql_version());
        else
            snprintf(name, sizeof name, "libdsqlauth/%s", dsql_version());
        sb_add_libpq(&q, "application_name", name);
    }
    size_t np = dsql_config_param_count(cfg);
    for (size_t i = 0; i < np; i++) {
        const char *k, *v;
        if (dsql_config_param_at(cfg, i, &k, &v) != DSQL_OK || handled_here(k))
            continue;
        sb_add_libpq(&q, k, v);
    }
    if (q.oom) {
        sb_free(&q);
        return fail(err, DSQL_ENOMEM, "out of memory for the connection string");
    }
    sb_add(b, "pqopt=");
    sb_add_braced(b, q.p, q.len);
    sb_free(&q);

    sb_add(b, ";PWD=");
    sb_add_braced(b, token, strlen(token));
    sb_addc(b, ';');
    if (b->oom)
        return fail(err, DSQL_ENOMEM, "out of memory for the connection string");
    return DSQL_OK;
}

/* Checks the arguments; *view is cfg resolved without writing to it
 * (dsql_config_resolve_view: dsql_config_free *own afterwards). *provider
 * NULL becomes the shared default for the profile. */
static dsql_status prepare(const dsql_config *cfg, const dsql_config **view, dsql_config **own,
                           dsql_token_provider **provider, const dsql_odbc_options *opts,
                           dsql_error *err)
{
    *view = NULL;
    *own = NULL;
    if (opts && opts->version != DSQL_STRUCT_VERSION)
        return fail(err, DSQL_EINVAL, "dsql_odbc_options.version must be DSQL_STRUCT_VERSION");
    dsql_status st = dsql_config_resolve_view(cfg, view, own, err);
    if (st != DSQL_OK)
        return st;
    /* NULL: the process-wide default for the profile, fetched once */
    if (!*provider && !(*provider = dsql_token_provider_shared(*view, err))) {
        dsql_config_free(*own);
        *own = NULL;
        *view = NULL;
        return err ? err->status : DSQL_ECREDENTIALS;
    }
    return DSQL_OK;
}

/* String for host i; on success b holds it (caller wipes with sb_free).
 * With tok non-NULL the token is handed back too (caller releases it with
 * dsql_token_free), for redacting diagnostics. */
static dsql_status string_for_host(const dsql_config *cfg, dsql_token_provider *provider, size_t i,
                                   const dsql_odbc_options *opts, sbuf *b,
                                   dsql_config_host *h, char **tok, dsql_error *err)
{
    dsql_status st = dsql_config_host_at(cfg, i, h, err);
    if (st != DSQL_OK)
        return st;
    char *token = NULL;
    st = dsql_token_get_for_host(provider, cfg, i, &token, NULL, err);
    if (st != DSQL_OK)
        return st;
    st = build(cfg, h, token, opts, b, err);
    if (st != DSQL_OK)
        sb_free(b);
    if (st == DSQL_OK && tok)
        *tok = token;
    else
        dsql_token_free(token);
    return st;
}

static dsql_status connection_string(const dsql_config *cfg, dsql_token_provider *provider,
                                     size_t host_index, const dsql_odbc_options *opts,
                                     char **out, size_t *len, dsql_error *err);

dsql_status dsql_odbc_connection_string(const dsql_config *cfg, dsql_token_provider *provider,
                                        size_t host_index, const dsql_odbc_options *opts,
                                        char **out, size_t *len, dsql_error *err)
{
    if (!out)
        return fail(err, DSQL_EINVAL, "out must not be NULL");
    *out = NULL;
    if (len)
        *len = 0;
    const dsql_config *view;
    dsql_config *own;
    dsql_status st = prepare(cfg, &view, &own, &provider, opts, err);
    if (st != DSQL_OK)
        return st;
    st = connection_string(view, provider, host_index, opts, out, len, err);
    dsql_config_free(own);
    return st;
}

/* dsql_odbc_connection_string after prepare(). */
static dsql_status connection_string(const dsql_config *cfg, dsql_token_provider *provider,
                                     size_t host_index, const dsql_odbc_options *opts,
                                     char **out, size_t *len, dsql_error *err)
{
    dsql_status st;
    if (host_index >= dsql_config_host_count(cfg)) {
        return fail(err, DSQL_EINVAL, "host_index %zu is out of range (%zu hosts)", host_index,
                    dsql_config_host_count(cfg));
    }
    sbuf b = {0};
    dsql_config_host h = {0};
    st = string_for_host(cfg, provider, host_index, opts, &b, &h, NULL, err);
    if (st != DSQL_OK)
        return st;
    /* Hand out an exact-size copy so dsql_odbc_string_free can wipe it by
     * length alone. */
    char *s = malloc(b.len + 1);
    if (!s) {
        sb_free(&b);
        return fail(err, DSQL_ENOMEM, "out of memory for the connection string");
    }
    memcpy(s, b.p, b.len + 1);
    if (len)
        *len = b.len;
    sb_free(&b);
    *out = s;
    return DSQL_OK;
}

void dsql_odbc_string_free(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* ---- diagnostics ---- */

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

/* Step from the driver's diagnostics. */
static dsql_status classify(const char *state, const char *msg)
{
    if (strcmp(state, "08002") == 0) /* dbc is already connected */
        return DSQL_EINVAL;
    if (strncmp(state, "IM", 2) == 0 || contains_ci(msg, "can't open lib") ||
        contains_ci(msg, "data source name not found"))
        return DSQL_ECONFIG;
    if (strcmp(state, "28000") == 0 || contains_ci(msg, "authentication failed") ||
        contains_ci(msg, "token has expired") || contains_ci(msg, "password"))
        return DSQL_EAUTH;
    if (contains_ci(msg, "pqopt") || contains_ci(msg, "invalid connection option") ||
        contains_ci(msg, "connection string parse") || contains_ci(msg, "invalid sslmode") ||
        contains_ci(msg, "invalid integer value") || contains_ci(msg, "invalid value"))
        return DSQL_ECONFIG;
    if (contains_ci(msg, "timeout expired") || contains_ci(msg, "timed out") ||
        strcmp(state, "HYT00") == 0 || strcmp(state, "HYT01") == 0)
        return DSQL_ETIMEOUT;
    if (contains_ci(msg, "SSL") || contains_ci(msg, "certificate") ||
        contains_ci(msg, "TLS"))
        return DSQL_ETLS;
    if (contains_ci(msg, "FATAL") || contains_ci(msg, "ERROR:"))
        return DSQL_ESERVER;
    return DSQL_ENETWORK;
}

/* Removes whatever looks like a token: the token itself and any text from
 * "X-Amz-" or "Action=DbConnect" to the next blank. */
static void redact(char *msg, const char *token)
{
    static const char *const marks[] = {"X-Amz-", "Action=DbConnect", NULL};
    size_t tl = token ? strlen(token) : 0;
    char *p;
    while (tl && (p = strstr(msg, token)) != NULL) {
        memcpy(p, "[token]", 7);
        memmove(p + 7, p + tl, strlen(p + tl) + 1);
    }
    for (size_t i = 0; marks[i]; i++) {
        while ((p = strstr(msg, marks[i])) != NULL) {
            char *e = p;
            while (*e && *e != ' ' && *e != '\n' && *e != '"' && *e != '\'')
                e++;
            memcpy(p, "[token]", 7);
            memmove(p + 7, e, strlen(e) + 1);
        }
    }
}

/* Collects up to 3 diagnostic records of dbc into msg (one line). */
static void diagnostics(SQLHDBC dbc, char *state, char *msg, size_t cap)
{
    state[0] = '\0';
    msg[0] = '\0';
    size_t used = 0;
    for (SQLSMALLINT i = 1; i <= 3; i++) {
        SQLCHAR st[6], text[1024];
        SQLINTEGER native = 0;
        SQLSMALLINT tl = 0;
        SQLRETURN rc = SQLGetDiagRec(SQL_HANDLE_DBC, dbc, i, st, &native, text, sizeof text, &tl);
        if (rc != SQL_SUCCESS && rc != SQL_SUCCESS_WITH_INFO)
            break;
        if (i == 1)
            snprintf(state, 6, "%s", (const char *)st);
        /* one line: newlines and tabs become blanks, trailing blanks go */
        for (char *c = (char *)text; *c; c++)
            if (*c == '\n' || *c == '\r' || *c == '\t')
                *c = ' ';
        size_t n = strlen((char *)text);
        while (n && ((char *)text)[n - 1] == ' ')
            text[--n] = '\0';
        int w = snprintf(msg + used, cap - used, "%s[%s] %s", used ? "; " : "",
                         (const char *)st, (const char *)text);
        if (w < 0 || (size_t)w >= cap - used) {
            used = cap - 1;
            break;
        }
        used += (size_t)w;
    }
    if (!msg[0])
        snprintf(msg, cap, "no diagnostic record from the driver manager");
}

/* ---- connect ---- */

static dsql_status connect_hosts(SQLHDBC dbc, const dsql_config *cfg,
                                 dsql_token_provider *provider, const dsql_odbc_options *opts,
                                 dsql_error *err);

dsql_status dsql_odbc_connect(SQLHDBC dbc, const dsql_config *cfg, dsql_token_provider *provider,
                              const dsql_odbc_options *opts, dsql_error *err)
{
    if (!dbc)
        return fail(err, DSQL_EINVAL, "dbc must not be NULL");
    const dsql_config *view;
    dsql_config *own;
    dsql_status st = prepare(cfg, &view, &own, &provider, opts, err);
    if (st != DSQL_OK)
        return st;
    st = connect_hosts(dbc, view, provider, opts, err);
    dsql_config_free(own);
    return st;
}

/* dsql_odbc_connect after prepare(): each host in turn. */
static dsql_status connect_hosts(SQLHDBC dbc, const dsql_config *cfg,
                                 dsql_token_provider *provider, const dsql_odbc_options *opts,
                                 dsql_error *err)
{
    dsql_status st;
    size_t n = dsql_config_host_count(cfg);
    char report[sizeof err->message];
    size_t rlen = 0;
    dsql_status last = DSQL_ENETWORK;
    char last_state[6] = "";
    report[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        sbuf b = {0};
        dsql_config_host h = {0};
        dsql_error e = {0};
        char *token = NULL;
        st = string_for_host(cfg, provider, i, opts, &b, &h, &token, &e);
        if (st != DSQL_OK) {
            /* Configuration and memory errors are the same for every host. */
            if (err) {
                *err = e;
                if (n > 1) {
                    char tmp[sizeof err->message];
                    snprintf(tmp, sizeof tmp, "host %.200s: %.300s", h.host ? h.host : "?", e.message);
                    memcpy(err->message, tmp, sizeof tmp);
                }
            }
            return st;
        }
        if (b.len > 32767) {
            sb_free(&b);
            dsql_token_free(token);
            return fail(err, DSQL_ECONFIG, "connection string longer than ODBC allows");
        }
        SQLRETURN rc = SQLDriverConnect(dbc, NULL, (SQLCHAR *)b.p, (SQLSMALLINT)b.len, NULL, 0,
                                        NULL, SQL_DRIVER_NOPROMPT);
        sb_free(&b);
        char state[6], msg[sizeof err->message];
        if (!SQL_SUCCEEDED(rc)) {
            diagnostics(dbc, state, msg, sizeof msg);
            redact(msg, token);
        }
        dsql_token_free(token);
        if (SQL_SUCCEEDED(rc)) {
            if (err) {
                err->status = DSQL_OK;
                err->sqlstate[0] = '\0';
                err->message[0] = '\0';
            }
            return DSQL_OK;
        }
        last = classify(state, msg);
        snprintf(last_state, sizeof last_state, "%s", state);
        int w = snprintf(report + rlen, sizeof report - rlen, "%shost %s: %s: %s",
                         rlen ? "; " : "", h.host,
                         last == DSQL_EAUTH     ? "authentication"
                         : last == DSQL_ETLS    ? "TLS"
                         : last == DSQL_ECONFIG ? "driver"
                         : last == DSQL_EINVAL  ? "handle"
                         : last == DSQL_ETIMEOUT ? "timeout"
                         : last == DSQL_ESERVER ? "server"
                                                : "connect",
                         msg);
        if (w > 0)
            rlen = ((size_t)w >= sizeof report - rlen) ? sizeof report - 1 : rlen + (size_t)w;
        if (last == DSQL_ECONFIG || last == DSQL_EINVAL) /* the same for every host */
            break;
    }
    if (err) {
        err->status = last;
        snprintf(err->sqlstate, sizeof err->sqlstate, "%s", last_state);
        memcpy(err->message, report, sizeof report);
    }
    return last;
}

dsql_status dsql_odbc_reconnect(SQLHDBC dbc, const dsql_config *cfg, dsql_token_provider *provider,
                                const dsql_odbc_options *opts, dsql_error *err)
{
    if (!dbc)
        return fail(err, DSQL_EINVAL, "dbc must not be NULL");
    SQLDisconnect(dbc); /* fails harmlessly (08003) when not connected */
    return dsql_odbc_connect(dbc, cfg, provider, opts, err);
}

/* ---- OCC: conflicts and transactions ---- */

/* The server's primary message in a psqlODBC diagnostic text: its first
 * line, without the severity ("ERROR: ") in front or the ";" psqlODBC puts
 * at its end. DETAIL and HINT follow on lines of their own. */
static void primary_line(const char *text, char *out, size_t cap)
{
    const char *sev = strstr(text, "ERROR:");
    if (sev && sev - text < 64 && !memchr(text, '\n', (size_t)(sev - text)))
        text = sev + strlen("ERROR:");
    while (*text == ' ')
        text++;
    size_t n = strcspn(text, "\n");
    while (n > 0 && (text[n - 1] == ';' || text[n - 1] == ' ' || text[n - 1] == '\r'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

/* Between a record's lines in dsql_odbc_diag_status's message; the
 * conflict kind is read only up to the first one (the primary message). */
#define LINE_SEP " | "

typedef struct diag_record {
    char state[6];
    char text[1024];
} diag_record;

/* Appends "[state] primary | more lines" (one line, token-like text
 * removed) to msg. */
static void append_record(char *msg, size_t cap, size_t *used, const diag_record *r)
{
    char primary[sizeof r->text];
    primary_line(r->text, primary, sizeof primary);
    const char *rest = strchr(r->text, '\n');
    char more[sizeof r->text] = "";
    if (rest) {
        size_t m = 0;
        for (const char *c = rest + 1; *c && m + 4 < sizeof more; c++) {
            if (*c == '\n') {
                memcpy(more + m, LINE_SEP, 3);
                m += 3;
            } else {
                more[m++] = (*c == '\r' || *c == '\t') ? ' ' : *c;
            }
        }
        more[m] = '\0';
    }
    if (*used >= cap - 1)
        return;
    int w = snprintf(msg + *used, cap - *used, "%s[%s] %s%s%s", *used ? "; " : "", r->state,
                     primary, more[0] ? LINE_SEP : "", more);
    *used = (w < 0 || (size_t)w >= cap - *used) ? cap - 1 : *used + (size_t)w;
}

dsql_status dsql_odbc_diag_status(SQLSMALLINT handle_type, SQLHANDLE handle, dsql_error *err)
{
    if (!handle)
        return fail(err, DSQL_EINVAL, "handle must not be NULL");
    diag_record recs[3];
    int n = 0, conflict = -1;
    dsql_status st = DSQL_OK;
    for (; n < 3; n++) {
        SQLINTEGER native = 0;
        SQLSMALLINT tl = 0;
        SQLRETURN rc = SQLGetDiagRec(handle_type, handle, (SQLSMALLINT)(n + 1),
                                     (SQLCHAR *)recs[n].state, &native,
                                     (SQLCHAR *)recs[n].text, sizeof recs[n].text, &tl);
        if (rc != SQL_SUCCESS && rc != SQL_SUCCESS_WITH_INFO)
            break;
        char primary[sizeof recs[n].text];
        primary_line(recs[n].text, primary, sizeof primary);
        if (dsql_conflict_classify(recs[n].state, primary) != DSQL_CONFLICT_NONE) {
            st = DSQL_ECONFLICT;
            if (conflict < 0)
                conflict = n;
        } else if (st == DSQL_OK && strncmp(recs[n].state, "08", 2) == 0) {
            st = DSQL_ENETWORK;
        } else if (st == DSQL_OK) {
            st = DSQL_ESERVER;
        }
    }
    /* A conflict's record comes first, so its SQLSTATE is err's and its
     * primary message starts the message (conflict_kind). */
    char msg[sizeof err->message];
    size_t used = 0;
    msg[0] = '\0';
    if (conflict >= 0)
        append_record(msg, sizeof msg, &used, &recs[conflict]);
    for (int i = 0; i < n; i++)
        if (i != conflict)
            append_record(msg, sizeof msg, &used, &recs[i]);
    redact(msg, NULL);
    if (err) {
        err->status = st;
        snprintf(err->sqlstate, sizeof err->sqlstate, "%s",
                 n == 0 ? "" : recs[conflict >= 0 ? conflict : 0].state);
        memcpy(err->message, msg, sizeof msg);
    }
    return st;
}

/* The kind of the conflict in err, which dsql_odbc_diag_status filled. */
static dsql_conflict_kind conflict_kind(const dsql_error *err)
{
    if (!err || strcmp(err->sqlstate, "40001") != 0)
        return DSQL_CONFLICT_NONE;
    /* dsql_odbc_diag_status's message: "[40001] primary | more; [...] ..."
     * Only the primary message counts: never DETAIL, HINT or data. */
    static const char head[] = "[40001] ";
    if (strncmp(err->message, head, sizeof head - 1) != 0)
        return DSQL_CONFLICT_UNKNOWN;
    const char *p = err->message + sizeof head - 1;
    size_t n = strlen(p);
    const char *cut = strstr(p, LINE_SEP);
    if (cut && (size_t)(cut - p) < n)
        n = (size_t)(cut - p);
    cut = strstr(p, "; [");
    if (cut && (size_t)(cut - p) < n)
        n = (size_t)(cut - p);
    char primary[sizeof err->message];
    memcpy(primary, p, n);
    primary[n] = '\0';
    return dsql_conflict_classify("40001", primary);
}

/* One run of the body: its status, with e naming it when the body left
 * no message; an error with SQLSTATE 40001 is a conflict whatever status
 * the body returned (as in the libpq adapter). */
static dsql_status body(SQLHDBC dbc, dsql_odbc_txn_fn fn, const dsql_retry_info *info,
                        void *arg, dsql_error *e)
{
    dsql_status st = fn(dbc, info, arg, e);
    if (st == DSQL_OK)
        return DSQL_OK;
    if (dsql_conflict_classify(e->sqlstate, NULL) != DSQL_CONFLICT_NONE)
        st = DSQL_ECONFLICT;
    e->status = st;
    if (!e->message[0])
        snprintf(e->message, sizeof e->message, "the transaction callback returned %s",
                 dsql_status_name(st));
    return st;
}

/* Ends the transaction the attempt left open; returns the attempt's
 * status, or the COMMIT's: DSQL_EUNKNOWN_COMMIT when the connection was
 * lost at COMMIT (the outcome is unknown). */
static dsql_status end_attempt(SQLHDBC dbc, dsql_status st, dsql_error *e)
{
    if (st == DSQL_OK) {
        if (SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, dbc, SQL_COMMIT)))
            return DSQL_OK;
        st = dsql_odbc_diag_status(SQL_HANDLE_DBC, dbc, e);
        if (st == DSQL_ENETWORK) {
            char tmp[sizeof e->message];
            snprintf(tmp, sizeof tmp, "connection lost at COMMIT, outcome unknown: %.400s",
                     e->message);
            memcpy(e->message, tmp, sizeof tmp);
            return e->status = DSQL_EUNKNOWN_COMMIT;
        }
        if (st == DSQL_OK)
            st = e->status = DSQL_ESERVER;
    }
    SQLEndTran(SQL_HANDLE_DBC, dbc, SQL_ROLLBACK);
    return st;
}

/* The retry loop, autocommit off: attempts until one commits, one fails
 * with anything but a conflict, or the retries, deadline or caller end it
 * (dsql_retry_before_attempt, dsql_retry_after_conflict: the loop every
 * adapter shares). */
static dsql_status run(SQLHDBC dbc, dsql_odbc_txn_fn fn, void *arg,
                       const dsql_retry_options *opts, dsql_retry_result *result, dsql_error *e)
{
    dsql_retry_info info = {0, opts->max_retries + 1, DSQL_OK, "", DSQL_CONFLICT_NONE};
    for (unsigned n = 1;; n++) {
        dsql_status st = dsql_retry_before_attempt(opts, n - 1, e);
        if (st != DSQL_OK)
            return st;
        info.attempt = result->attempts = n;
        *e = (dsql_error){DSQL_OK, "", ""};
        st = end_attempt(dbc, body(dbc, fn, &info, arg, e), e);
        if (st != DSQL_ECONFLICT)
            return st;
        dsql_conflict_kind kind = conflict_kind(e);
        info.previous = st;
        info.previous_conflict = kind == DSQL_CONFLICT_NONE ? DSQL_CONFLICT_UNKNOWN : kind;
        memcpy(info.previous_sqlstate, e->sqlstate, sizeof info.previous_sqlstate);
        st = dsql_retry_after_conflict(opts, n, kind, result, e);
        if (st != DSQL_OK)
            return st;
    }
}

dsql_status dsql_odbc_run_transaction(SQLHDBC dbc, dsql_odbc_txn_fn fn, void *arg,
                                      const dsql_retry_options *opts, dsql_retry_result *result,
                                      dsql_error *err)
{
    dsql_retry_result local_result;
    if (!result)
        result = &local_result;
    memset(result, 0, sizeof *result);
    if (!dbc || !fn)
        return fail(err, DSQL_EINVAL, "dbc and fn must not be NULL");
    dsql_retry_options defaults;
    if (!opts) {
        dsql_retry_options_init(&defaults);
        opts = &defaults;
    }
    if (dsql_retry_options_check(opts, "transaction options", err) != DSQL_OK)
        return err ? err->status : DSQL_EINVAL;

    SQLULEN autocommit = SQL_AUTOCOMMIT_ON;
    SQLGetConnectAttr(dbc, SQL_ATTR_AUTOCOMMIT, &autocommit, 0, NULL);
    /* Manual-commit mode may hold a transaction of the caller's (or this
     * is a call from inside another run on the same dbc): a rollback here
     * would discard work that is not ours. */
    if (autocommit == SQL_AUTOCOMMIT_OFF)
        return fail(err, DSQL_EINVAL,
                    "the connection is in manual-commit mode (autocommit off), so a "
                    "transaction of the caller's may be open: dsql_odbc_run_transaction "
                    "needs autocommit on and the connection to itself");
    if (!SQL_SUCCEEDED(SQLSetConnectAttr(dbc, SQL_ATTR_AUTOCOMMIT,
                                         (SQLPOINTER)(SQLULEN)SQL_AUTOCOMMIT_OFF, 0)))
        return dsql_odbc_diag_status(SQL_HANDLE_DBC, dbc, err) == DSQL_OK
                   ? fail(err, DSQL_ESERVER, "could not turn autocommit off")
                   : (err ? err->status : DSQL_ESERVER);

    dsql_error e = {DSQL_OK, "", ""};
    dsql_status st = run(dbc, fn, arg, opts, result, &e);
    SQLSetConnectAttr(dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)autocommit, 0);
    if (err) {
        *err = e;
        err->status = st;
        if (st == DSQL_OK)
            err->sqlstate[0] = err->message[0] = '\0';
    }
    return st;
}
