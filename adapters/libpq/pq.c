/* libpq adapter: blocking and non-blocking connect with a fresh IAM token
 * per host, secure TLS defaults, per-host failure reports, bounded retry
 * on transient startup errors. Uses only the public libdsqlauth API. */
#include "dsqlauth.h"
#include "dsqlauth/adapter.h"
#include "dsqlauth/libpq.h"
#include "poll_wait.h"
#include "token_job.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define MAX_RETRY_DELAY_MS 5000u
#define MAX_PARAMS 64

/* ---- small helpers ---- */

#define fail dsql_error_set /* the adapter kit's */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t random_u32(void)
{
    uint32_t v;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)now_ms() * 2654435761u;
    return v;
}

/* ---- parameter arrays ---- */

typedef struct kv {
    const char *k[MAX_PARAMS + 1];
    const char *v[MAX_PARAMS + 1];
    size_t n;
} kv;

static int is_set(const dsql_config *cfg, const char *key) { return dsql_config_get(cfg, key) != NULL; }

static int skip_passthrough(const char *k)
{
    static const char *const handled[] = {"sslmode", "sslrootcert", "sslnegotiation",
                                          "gssencmode", "application_name",
                                          "load_balance_hosts", NULL};
    for (size_t i = 0; handled[i]; i++)
        if (strcmp(k, handled[i]) == 0)
            return 1;
    return 0;
}

static int vmode_full(const char *m) { return strcmp(m, "verify-full") == 0; }
static int vmode_verify(const char *m) { return strncmp(m, "verify-", 7) == 0; }
static int vmode_tls(const char *m) { return vmode_verify(m) || strcmp(m, "require") == 0; }

/* Fills kv for host h with the token as password. Strings point into cfg,
 * the token and the caller's small buffers port[8], app[128]. */
static dsql_status build_kv(const dsql_config *cfg, const dsql_config_host *h, const char *token,
                            char port[8], char app[128], kv *out, dsql_error *err)
{
    out->n = 0;
#define ADD(key, val)                                                                     \
    do {                                                                                  \
        if (out->n >= MAX_PARAMS)                                                         \
            return fail(err, DSQL_ECONFIG, "configuration has more than %d parameters", \
                        MAX_PARAMS);                                                      \
        out->k[out->n] = (key);                                                           \
        out->v[out->n++] = (val);                                                         \
    } while (0)
    int ver = PQlibVersion();
    snprintf(port, 8, "%u", h->port);
    ADD("host", h->host);
    if (h->hostaddr)
        ADD("hostaddr", h->hostaddr);
    ADD("port", port);
    ADD("user", dsql_config_get(cfg, "user"));
    ADD("dbname", dsql_config_get(cfg, "dbname"));
    ADD("password", token);
    const char *mode = is_set(cfg, "sslmode") ? dsql_config_get(cfg, "sslmode") : "verify-full";
    ADD("sslmode", mode);
    if (is_set(cfg, "sslrootcert")) {
        ADD("sslrootcert", dsql_config_get(cfg, "sslrootcert"));
    } else if (!(getenv("PGSSLROOTCERT") && *getenv("PGSSLROOTCERT"))) {
        if (ver >= 160000 && vmode_full(mode)) {
            ADD("sslrootcert", "system");
        } else if (vmode_verify(mode)) {
            const char *bundle = dsql_ca_bundle_find(); /* no sslrootcert=system */
            if (bundle)
                ADD("sslrootcert", bundle);
        }
    }
    if (is_set(cfg, "sslnegotiation"))
        ADD("sslnegotiation", dsql_config_get(cfg, "sslnegotiation"));
    else if (ver >= 170000 && vmode_tls(mode))
        ADD("sslnegotiation", "direct");
    ADD("gssencmode", is_set(cfg, "gssencmode") ? dsql_config_get(cfg, "gssencmode") : "disable");
    if (is_set(cfg, "application_name")) {
        ADD("application_name", dsql_config_get(cfg, "application_name"));
    } else {
        const char *prefix = dsql_config_get(cfg, "application_name_prefix");
        if (prefix && *prefix)
            snprintf(app, 128, "%.60s:libdsqlauth/%s", prefix, dsql_version());
        else
            snprintf(app, 128, "libdsqlauth/%s", dsql_version());
        ADD("application_name", app);
    }
    size_t np = dsql_config_param_count(cfg);
    for (size_t i = 0; i < np; i++) {
        const char *k, *v;
        if (dsql_config_param_at(cfg, i, &k, &v) == DSQL_OK && !skip_passthrough(k))
            ADD(k, v);
    }
    out->k[out->n] = NULL;
    out->v[out->n] = NULL;
    return DSQL_OK;
#undef ADD
}

/* One block: header, keyword array, value array, strings. */
typedef struct params_block {
    size_t size;
    size_t magic;
} params_block;
#define PARAMS_MAGIC ((size_t)0x6473716c70713031ull)

static dsql_status params_for(const dsql_config *cfg, dsql_token_provider *provider,
                              size_t host_index, const char *const **keywords,
                              const char *const **values, dsql_error *err);

dsql_status dsql_pq_params(const dsql_config *cfg, dsql_token_provider *provider,
                           size_t host_index, const char *const **keywords,
                           const char *const **values, dsql_error *err)
{
    if (!keywords || !values)
        return fail(err, DSQL_EINVAL, "keywords or values is NULL");
    *keywords = *values = NULL;
    dsql_config *own;
    const dsql_config *view;
    dsql_status st = dsql_config_resolve_view(cfg, &view, &own, err);
    if (st != DSQL_OK)
        return st;
    st = params_for(view, provider, host_index, keywords, values, err);
    dsql_config_free(own);
    return st;
}

/* dsql_pq_params for a resolved cfg. */
static dsql_status params_for(const dsql_config *cfg, dsql_token_provider *provider,
                              size_t host_index, const char *const **keywords,
                              const char *const **values, dsql_error *err)
{
    dsql_status st;
    dsql_config_host h;
    if ((st = dsql_config_host_at(cfg, host_index, &h, err)) != DSQL_OK)
        return st;
    char *token = NULL; /* provider NULL: the shared default for the profile */
    st = dsql_token_get_for_host(provider, cfg, host_index, &token, NULL, err);
    if (st != DSQL_OK)
        return st;
    char port[8], app[128];
    kv p;
    st = build_kv(cfg, &h, token, port, app, &p, err);
    if (st == DSQL_OK) {
        size_t size = sizeof(params_block) + 2 * (p.n + 1) * sizeof(char *);
        for (size_t i = 0; i < p.n; i++)
            size += strlen(p.k[i]) + strlen(p.v[i]) + 2;
        char *block = malloc(size);
        if (!block) {
            st = fail(err, DSQL_ENOMEM, "out of memory for connection parameters");
        } else {
            params_block *hdr = (params_block *)block;
            hdr->size = size;
            hdr->magic = PARAMS_MAGIC;
            const char **kw = (const char **)(block + sizeof *hdr);
            const char **vals = kw + p.n + 1;
            char *s = (char *)(vals + p.n + 1);
            for (size_t i = 0; i < p.n; i++) {
                size_t kl = strlen(p.k[i]) + 1, vl = strlen(p.v[i]) + 1;
                memcpy(s, p.k[i], kl);
                kw[i] = s;
                s += kl;
                memcpy(s, p.v[i], vl);
                vals[i] = s;
                s += vl;
            }
            kw[p.n] = vals[p.n] = NULL;
            *keywords = kw;
            *values = vals;
        }
    }
    dsql_token_free(token);
    return st;
}

void dsql_pq_params_free(const char *const *keywords, const char *const *values)
{
    (void)values;
    if (!keywords)
        return;
    params_block *hdr = (params_block *)((char *)(uintptr_t)keywords - sizeof(params_block));
    if (hdr->magic != PARAMS_MAGIC)
        return; /* not ours: leak rather than corrupt */
    OPENSSL_cleanse(hdr, hdr->size); /* wipes the token */
    free(hdr);
}

/* ---- error classification ---- */

typedef enum step {
    STEP_CONFIG,
    STEP_CREDENTIALS,
    STEP_TOKEN,
    STEP_NETWORK,
    STEP_TIMEOUT,
    STEP_TLS,
    STEP_AUTH,
    STEP_SERVER
} step;

static const char *step_name(step s)
{
    static const char *const names[] = {"config", "credentials", "token", "network",
                                        "timeout", "TLS", "authentication", "server"};
    return names[s];
}

static dsql_status step_status(step s)
{
    static const dsql_status st[] = {DSQL_ECONFIG, DSQL_ECREDENTIALS, DSQL_EINVAL,
                                     DSQL_ENETWORK, DSQL_ETIMEOUT, DSQL_ETLS,
                                     DSQL_EAUTH, DSQL_ESERVER};
    return st[s];
}

/* Finds "SEVERITY:  XXXXX: " (verbose errors) and copies the SQLSTATE. */
static int find_sqlstate(const char *m, char out[6])
{
    static const char *const sev[] = {"FATAL:  ", "ERROR:  ", "PANIC:  ", NULL};
    for (size_t i = 0; sev[i]; i++) {
        for (const char *p = strstr(m, sev[i]); p; p = strstr(p + 1, sev[i])) {
            const char *c = p + strlen(sev[i]);
            int ok = 1;
            for (int j = 0; j < 5 && ok; j++)
                ok = (c[j] >= '0' && c[j] <= '9') || (c[j] >= 'A' && c[j] <= 'Z');
            if (ok && c[5] == ':' && c[6] == ' ') {
                memcpy(out, c, 5);
                out[5] = '\0';
                return 1;
            }
        }
    }
    out[0] = '\0';
    return 0;
}

/* libpq's message on one line, without "XXXXX: " after the severity and
 * without LOCATION lines. */
static void clean_message(const char *m, const char *sqlstate, char *out, size_t cap)
{
    size_t o = 0;
    /* the host and port are reported by the caller */
    if (strncmp(m, "connection to server ", 21) == 0) {
        const char *f = strstr(m, " failed: ");
        if (f && !memchr(m, '\n', (size_t)(f - m)))
            m = f + 9;
    }
    while (*m && o + 1 < cap) {
        if (strncmp(m, "LOCATION:", 9) == 0 && (o == 0 || out[o - 1] == ' ')) {
            while (*m && *m != '\n')
                m++;
            continue;
        }
        if (*sqlstate && strncmp(m, sqlstate, 5) == 0 && m[5] == ':' && m[6] == ' ' && o >= 3 &&
            out[o - 1] == ' ' && out[o - 2] == ' ' && out[o - 3] == ':') {
            m += 7;
            continue;
        }
        char c = *m++;
        if (c == '\n' || c == '\t' || c == '\r')
            c = ' ';
        if (c == ' ' && o > 0 && out[o - 1] == ' ' && !(o >= 2 && out[o - 2] == ':'))
            continue;
        out[o++] = c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    /* never pass on anything that looks like a token, whoever echoed it */
    static const char *const marks[] = {"/?Action=", "Action=DbConnect", "X-Amz-", NULL};
    char *cut = NULL;
    for (size_t i = 0; marks[i]; i++) {
        char *p = strstr(out, marks[i]);
        if (p && (!cut || p < cut))
            cut = p;
    }
    if (cut) {
        while (cut > out && cut[-1] != ' ' && cut[-1] != '"' && cut[-1] != '\'')
            cut--; /* the host part in front of "/?Action=" */
        snprintf(cut, cap - (size_t)(cut - out), "[token removed]");
    }
}

static step classify(const char *msg, const char *sqlstate, int *retryable)
{
    *retryable = 0;
    if (*sqlstate) {
        if (strcmp(sqlstate, "28000") == 0 || strcmp(sqlstate, "28P01") == 0)
            return STEP_AUTH;
        if (strcmp(sqlstate, "53300") == 0 || strcmp(sqlstate, "53400") == 0 ||
            strcmp(sqlstate, "08006") == 0)
            *retryable = 1;
        return STEP_SERVER;
    }
    if (strstr(msg, "invalid connection option") || strstr(msg, "invalid sslmode") ||
        strstr(msg, "invalid integer value") || strstr(msg, "invalid value") ||
        strstr(msg, "invalid port number") || strstr(msg, " value: \"") ||
        strstr(msg, "may not be used with"))
        return STEP_CONFIG;
    if (strstr(msg, "timeout expired"))
        return STEP_TIMEOUT;
    /* libpq 15.10+ no longer shows an error sent before TLS is up (it is
     * unauthenticated); PostgreSQL sends one there only when the
     * postmaster cannot start a backend: too many clients, out of memory */
    if (strstr(msg, "error response during SSL exchange")) {
        *retryable = 1;
        return STEP_SERVER;
    }
    if (strstr(msg, "server closed the connection unexpectedly")) {
        *retryable = 1;
        return STEP_NETWORK;
    }
    if (strstr(msg, "SSL") || strstr(msg, "ssl") || strstr(msg, "certificate") ||
        strstr(msg, "TLS"))
        return STEP_TLS;
    if (strstr(msg, "authentication") || strstr(msg, "password"))
        return STEP_AUTH;
    return STEP_NETWORK;
}

/* ---- the connecting state machine ---- */

enum { ST_CONNECTING, ST_BACKOFF, ST_OK, ST_FAILED, ST_TOKEN };

struct dsql_pq_connecting {
    const dsql_config *cfg; /* resolved: the caller's, or own */
    dsql_config *own;       /* the private resolved copy, or NULL */
    dsql_token_provider *provider;
    size_t *order;
    size_t nhosts, pos;
    unsigned attempt, retries, delay_ms;
    int state;
    PGconn *conn;
    PostgresPollingStatusType want; /* READING or WRITING */
    int timeout_s;                  /* connect_timeout, 0: none */
    int64_t deadline, wake;
    /* failure report: the last failure of each host tried, in order */
    size_t failures;
    struct hfail {
        char text[300];
        unsigned attempts;
    } *hf;
    dsql_error last;
    int offthread;            /* sign tokens on a helper thread (non-blocking API) */
    dsql__pq_token_job *job;  /* ST_TOKEN: the token being signed */
};

static void record(dsql_pq_connecting *c, step s, const char *sqlstate, const char *msg)
{
    dsql_config_host h;
    dsql_config_host_at(c->cfg, c->order[c->pos], &h, NULL);
    c->failures++;
    c->last.status = step_status(s);
    snprintf(c->last.sqlstate, sizeof c->last.sqlstate, "%s", sqlstate);
    snprintf(c->last.message, sizeof c->last.message, "%s failed for %s:%u: %s", step_name(s),
             h.host, h.port, msg);
    struct hfail *f = &c->hf[c->pos];
    f->attempts++;
    snprintf(f->text, sizeof f->text, "%s:%u: %s: %s", h.host, h.port, step_name(s), msg);
}

static void finish_error(dsql_pq_connecting *c, dsql_error *err)
{
    if (!err)
        return;
    size_t tried = 0, last = 0;
    for (size_t i = 0; i < c->nhosts; i++)
        if (c->hf[i].attempts > 0) {
            tried++;
            last = i;
        }
    if (tried <= 1) {
        *err = c->last;
        size_t len = strlen(err->message);
        if (tried == 1 && c->hf[last].attempts > 1 && len + 20 < sizeof err->message)
            snprintf(err->message + len, sizeof err->message - len, " (%u attempts)",
                     c->hf[last].attempts);
        return;
    }
    err->status = c->last.status;
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", c->last.sqlstate);
    size_t cap = sizeof err->message, o = 0;
    int n = snprintf(err->message, cap, "all %zu hosts failed: ", c->nhosts);
    o = n > 0 ? (size_t)n : 0;
    /* every host gets an equal share of the message */
    size_t share = tried ? (cap - o - 1) / tried : 0;
    for (size_t i = 0; i < c->nhosts && o + 1 < cap; i++) {
        const struct hfail *f = &c->hf[i];
        if (!f->attempts)
            continue;
        char item[400];
        int k = f->attempts > 1
                    ? snprintf(item, sizeof item, "%s[%zu] %s (%u attempts)", o > (size_t)n ? "; " : "",
                               i + 1, f->text, f->attempts)
                    : snprintf(item, sizeof item, "%s[%zu] %s", o > (size_t)n ? "; " : "", i + 1,
                               f->text);
        size_t len = k > 0 ? (size_t)k : 0;
        if (len >= sizeof item)
            len = sizeof item - 1;
        if (len > share && share > 4) {
            len = share;
            memcpy(item + len - 3, "...", 3);
        }
        if (o + len >= cap)
            len = cap - o - 1;
        memcpy(err->message + o, item, len);
        o += len;
    }
    err->message[o] = '\0';
}

static void close_conn(dsql_pq_connecting *c)
{
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
}

/* Records the error libpq reports on c->conn; whether it is worth a retry. */
static int record_libpq_error(dsql_pq_connecting *c)
{
    char msg[400], ss[6];
    find_sqlstate(PQerrorMessage(c->conn), ss);
    clean_message(PQerrorMessage(c->conn), ss, msg, sizeof msg);
    int retry;
    step s = classify(msg, ss, &retry);
    record(c, s, ss, msg);
    return retry;
}

/* Hands libpq the token for host h (st: how signing went) and starts it.
 * Returns as start_attempt does. */
static int launch(dsql_pq_connecting *c, const dsql_config_host *h, dsql_status st,
                  char *token, dsql_error *e)
{
    if (st != DSQL_OK) {
        step s = (st == DSQL_ECREDENTIALS || st == DSQL_EEXPIRED) ? STEP_CREDENTIALS
                 : st == DSQL_ENOMEM                              ? STEP_CONFIG
                                                                  : STEP_TOKEN;
        record(c, s, "", e->message);
        c->last.status = st;
        return -1;
    }
    char port[8], app[128];
    kv p;
    st = build_kv(c->cfg, h, token, port, app, &p, e);
    if (st == DSQL_OK)
        c->conn = PQconnectStartParams(p.k, p.v, 0);
    dsql_token_free(token);
    if (st != DSQL_OK) {
        record(c, STEP_CONFIG, "", e->message);
        return -1;
    }
    if (!c->conn) {
        record(c, STEP_CONFIG, "", "out of memory starting libpq");
        c->last.status = DSQL_ENOMEM;
        return -1;
    }
    /* verbose errors carry the SQLSTATE of startup failures */
    PQsetErrorVerbosity(c->conn, PQERRORS_VERBOSE);
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        record_libpq_error(c);
        close_conn(c);
        return 1;
    }
    c->want = PGRES_POLLING_WRITING;
    c->deadline = c->timeout_s > 0 ? now_ms() + (int64_t)c->timeout_s * 1000 : 0;
    c->state = ST_CONNECTING;
    return 0;
}

/* Starts an attempt on host order[pos]. Returns 0 when under way (libpq
 * connecting, or for the non-blocking API the token being signed on a
 * helper thread: ST_TOKEN), 1 when the attempt failed at once (recorded),
 * -1 on a fatal error (provider, memory: c->last filled). */
static int start_attempt(dsql_pq_connecting *c)
{
    close_conn(c);
    dsql_config_host h;
    if (dsql_config_host_at(c->cfg, c->order[c->pos], &h, &c->last) != DSQL_OK)
        return -1;
    dsql_token_request req;
    if (dsql_token_request_for_host(c->cfg, c->order[c->pos], &req, &c->last) != DSQL_OK)
        return -1;
    if (c->offthread) {
        if ((c->job = dsql__pq_token_job_start(c->provider, &req)) != NULL) {
            c->state = ST_TOKEN;
            return 0;
        }
    }
    char *token = NULL;
    dsql_error e = {0};
    dsql_status st = dsql_token_provider_get_alloc(c->provider, &req, &token, NULL, &e);
    return launch(c, &h, st, token, &e);
}

/* ST_TOKEN and the helper thread is done: start libpq with its token. */
static int token_ready(dsql_pq_connecting *c)
{
    char *token = NULL;
    dsql_error e = {0};
    dsql_status st = dsql__pq_token_job_finish(c->job, &token, &e);
    c->job = NULL;
    dsql_config_host h;
    if (dsql_config_host_at(c->cfg, c->order[c->pos], &h, &c->last) != DSQL_OK) {
        dsql_token_free(token);
        return -1;
    }
    return launch(c, &h, st, token, &e);
}

static unsigned backoff_ms(dsql_pq_connecting *c)
{
    uint64_t d = c->delay_ms;
    for (unsigned i = 0; i < c->attempt && d < MAX_RETRY_DELAY_MS; i++)
        d *= 2;
    if (d > MAX_RETRY_DELAY_MS)
        d = MAX_RETRY_DELAY_MS;
    /* full jitter on the upper half: [d/2, d] */
    if (d > 1)
        d = d / 2 + random_u32() % (d / 2 + 1);
    return (unsigned)d;
}

/* After a failed attempt: retry, next host, or give up. Returns 0 to keep
 * going, -1 when everything failed. */
static int next_step(dsql_pq_connecting *c, int retryable)
{
    close_conn(c);
    if (retryable && c->attempt < c->retries) {
        c->wake = now_ms() + backoff_ms(c);
        c->attempt++;
        c->state = ST_BACKOFF;
        return 0;
    }
    for (;;) {
        c->attempt = 0;
        if (++c->pos >= c->nhosts) {
            c->state = ST_FAILED;
            return -1;
        }
        int r = start_attempt(c);
        if (r == 0)
            return 0;
        if (r < 0) {
            c->state = ST_FAILED;
            return -1;
        }
    }
}

static unsigned cfg_uint(const dsql_config *cfg, const char *key, unsigned dflt)
{
    const char *v = dsql_config_get(cfg, key);
    return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

static dsql_pq_connecting *connecting_new(const dsql_config *given,
                                          dsql_token_provider *provider, size_t first,
                                          int offthread, dsql_error *err)
{
    dsql_config *own;
    const dsql_config *cfg;
    if (dsql_config_resolve_view(given, &cfg, &own, err) != DSQL_OK)
        return NULL;
    dsql_pq_connecting *c = calloc(1, sizeof *c);
    size_t n = dsql_config_host_count(cfg);
    if (!c || !(c->order = calloc(n, sizeof *c->order)) || !(c->hf = calloc(n, sizeof *c->hf))) {
        if (c)
            free(c->order);
        free(c);
        dsql_config_free(own);
        fail(err, DSQL_ENOMEM, "out of memory starting a connection");
        return NULL;
    }
    c->cfg = cfg;
    c->own = own;
    c->nhosts = n;
    for (size_t i = 0; i < n; i++)
        c->order[i] = i;
    const char *lb = dsql_config_get(cfg, "load_balance_hosts");
    if (lb && strcmp(lb, "random") == 0) {
        for (size_t i = n; i > 1; i--) {
            size_t j = random_u32() % i, t = c->order[i - 1];
            c->order[i - 1] = c->order[j];
            c->order[j] = t;
        }
    } else if (lb && strcmp(lb, "disable") != 0) {
        /* the message first: lb may point into `own` */
        fail(err, DSQL_ECONFIG, "load_balance_hosts \"%.40s\" is invalid (disable or random)",
             lb);
        free(c->order);
        free(c->hf);
        free(c);
        dsql_config_free(own);
        return NULL;
    }
    if (first < n) { /* move `first` to the front, keeping the rest in order */
        size_t at = 0;
        while (c->order[at] != first)
            at++;
        memmove(c->order + 1, c->order, at * sizeof *c->order);
        c->order[0] = first;
    }
    c->retries = cfg_uint(cfg, "connect_retries", DSQL_CONFIG_DEFAULT_RETRIES);
    c->delay_ms = cfg_uint(cfg, "connect_retry_delay_ms", DSQL_CONFIG_DEFAULT_RETRY_DELAY_MS);
    int t = (int)cfg_uint(cfg, "connect_timeout", 0);
    c->timeout_s = t > 0 && t < 2 ? 2 : t; /* libpq's minimum */
    c->provider = provider;
    c->offthread = offthread;
    if (!provider && !(c->provider = dsql_token_provider_shared(cfg, err))) {
        free(c->order);
        free(c->hf);
        free(c);
        dsql_config_free(own);
        return NULL;
    }
    int r = start_attempt(c);
    if (r > 0)
        next_step(c, 0); /* failed at once (e.g. DNS): the next host */
    else if (r < 0)
        c->state = ST_FAILED;
    if (c->state == ST_CONNECTING || c->state == ST_TOKEN)
        return c;
    finish_error(c, err);
    dsql_pq_connect_finish(c);
    return NULL;
}

dsql_pq_connecting *dsql_pq_connect_start(const dsql_config *cfg, dsql_token_provider *provider,
                                          dsql_error *err)
{
    return connecting_new(cfg, provider, (size_t)-1, 1, err);
}

/* 1 when fd is ready in the wanted direction right now. */
static int fd_ready(int fd, PostgresPollingStatusType want)
{
    struct pollfd p = {fd, want == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    return r != 0; /* errors count as ready: libpq will report them */
}

static dsql_pq_poll_status poll_step(dsql_pq_connecting *c, int *fd, int *timeout_ms,
                                     dsql_error *err, int known_ready);

dsql_pq_poll_status dsql_pq_connect_poll(dsql_pq_connecting *c, int *fd, int *timeout_ms,
                                         dsql_error *err)
{
    return poll_step(c, fd, timeout_ms, err, 0);
}

/* known_ready: the caller has just seen the fd ready (skip the check) */
static dsql_pq_poll_status poll_step(dsql_pq_connecting *c, int *fd, int *timeout_ms,
                                     dsql_error *err, int known_ready)
{
    int scratch[2];
    dsql__pq_poll_outs_init(&fd, &timeout_ms, scratch);
    if (!c) {
        fail(err, DSQL_EINVAL, "connection handle is NULL");
        return DSQL_PQ_POLL_FAILED;
    }
    for (;;) {
        /* the hint is about the socket the caller waited on: the first
           pass only, and only if that attempt is still the current one */
        int kr = known_ready;
        known_ready = 0;
        int64_t now = now_ms();
        switch (c->state) {
        case ST_OK:
            return DSQL_PQ_POLL_OK;
        case ST_FAILED:
            finish_error(c, err);
            return DSQL_PQ_POLL_FAILED;
        case ST_TOKEN:
            if (!dsql__pq_token_job_done(c->job)) {
                *fd = dsql__pq_token_job_fd(c->job);
                return DSQL_PQ_POLL_READING; /* the fetch has no deadline of ours */
            }
            {
                int r = token_ready(c);
                if (r > 0)
                    next_step(c, 0);
                else if (r < 0)
                    c->state = ST_FAILED;
            }
            continue;
        case ST_BACKOFF:
            if (now < c->wake) {
                *timeout_ms = (int)(c->wake - now);
                return DSQL_PQ_POLL_WAITING;
            }
            {
                int r = start_attempt(c);
                if (r > 0)
                    next_step(c, 0);
                else if (r < 0)
                    c->state = ST_FAILED;
            }
            continue;
        case ST_CONNECTING: {
            int sock = PQsocket(c->conn);
            if (c->deadline && now >= c->deadline) {
                record(c, STEP_TIMEOUT, "", "timeout expired (connect_timeout)");
                next_step(c, 0);
                continue;
            }
            if (sock >= 0 && !kr && !fd_ready(sock, c->want)) {
                *fd = sock;
                *timeout_ms = c->deadline ? (int)(c->deadline - now) : -1;
                return c->want == PGRES_POLLING_READING ? DSQL_PQ_POLL_READING
                                                        : DSQL_PQ_POLL_WRITING;
            }
            PostgresPollingStatusType r = PQconnectPoll(c->conn);
            if (r == PGRES_POLLING_OK) {
                c->state = ST_OK;
                continue;
            }
            if (r == PGRES_POLLING_READING || r == PGRES_POLLING_WRITING) {
                c->want = r;
                *fd = PQsocket(c->conn);
                *timeout_ms = c->deadline ? (int)(c->deadline - now_ms()) : -1;
                if (*timeout_ms < 0 && c->deadline)
                    *timeout_ms = 0;
                return r == PGRES_POLLING_READING ? DSQL_PQ_POLL_READING : DSQL_PQ_POLL_WRITING;
            }
            next_step(c, record_libpq_error(c));
            continue;
        }
        }
    }
}

PGconn *dsql_pq_connect_finish(dsql_pq_connecting *c)
{
    if (!c)
        return NULL;
    PGconn *conn = NULL;
    if (c->state == ST_OK) {
        conn = c->conn;
        c->conn = NULL;
    }
    if (c->job) { /* abandoned while signing: wait for the helper thread */
        char *token = NULL;
        dsql__pq_token_job_finish(c->job, &token, NULL);
        dsql_token_free(token);
        c->job = NULL;
    }
    close_conn(c);
    dsql_config_free(c->own);
    free(c->order);
    if (c->hf)
        OPENSSL_cleanse(c->hf, c->nhosts * sizeof *c->hf);
    free(c->hf);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
    return conn;
}

static PGconn *connect_blocking(const dsql_config *cfg, dsql_token_provider *provider,
                                size_t first, const dsql_retry_options *until, dsql_error *err)
{
    if (dsql_retry_check(until, err) != DSQL_OK)
        return NULL;
    dsql_pq_connecting *c = connecting_new(cfg, provider, first, 0, err);
    if (!c)
        return NULL;
    int ready = 0;
    for (;;) {
        if (dsql_retry_check(until, err) != DSQL_OK) {
            dsql_pq_connect_finish(c);
            return NULL;
        }
        int fd, timeout;
        dsql_pq_poll_status s = poll_step(c, &fd, &timeout, err, ready);
        if (s == DSQL_PQ_POLL_OK) {
            if (err) {
                err->status = DSQL_OK;
                err->sqlstate[0] = err->message[0] = '\0';
            }
            return dsql_pq_connect_finish(c);
        }
        if (s == DSQL_PQ_POLL_FAILED) {
            dsql_pq_connect_finish(c);
            return NULL;
        }
        struct pollfd p = {fd, s == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT, 0};
        if (fd < 0)
            p.events = 0;
        int r;
        timeout = dsql__pq_wait_ms(until, timeout);
        do
            r = poll(&p, fd < 0 ? 0 : 1, timeout);
        while (r < 0 && errno == EINTR);
        ready = r > 0;
    }
}

PGconn *dsql_pq_connect(const dsql_config *cfg, dsql_token_provider *provider, dsql_error *err)
{
    return connect_blocking(cfg, provider, (size_t)-1, NULL, err);
}

PGconn *dsql_pq_connect_until(const dsql_config *cfg, dsql_token_provider *provider,
                              const dsql_retry_options *until, dsql_error *err)
{
    if (until && until->version != DSQL_STRUCT_VERSION) {
        fail(err, DSQL_EINVAL, "connect: until->version %d is not %d", until->version,
             DSQL_STRUCT_VERSION);
        return NULL;
    }
    return connect_blocking(cfg, provider, (size_t)-1, until, err);
}

/* The index of the host conn is connected to in the resolved cfg, or
 * (size_t)-1. */
static size_t host_of(const dsql_config *cfg, const PGconn *conn)
{
    const char *used = conn ? PQhost(conn) : NULL;
    const char *used_port = conn ? PQport(conn) : NULL;
    for (size_t i = 0; used && i < dsql_config_host_count(cfg); i++) {
        dsql_config_host h;
        char p[8];
        if (dsql_config_host_at(cfg, i, &h, NULL) != DSQL_OK)
            continue;
        snprintf(p, sizeof p, "%u", h.port);
        if ((strcmp(h.host, used) == 0 || (h.hostaddr && strcmp(h.hostaddr, used) == 0)) &&
            (!used_port || strcmp(used_port, p) == 0))
            return i;
    }
    return (size_t)-1;
}

dsql_status dsql_pq_reconnect(PGconn **conn, const dsql_config *cfg,
                              dsql_token_provider *provider, dsql_error *err)
{
    if (!conn)
        return fail(err, DSQL_EINVAL, "conn is NULL");
    dsql_config *own;
    const dsql_config *view;
    dsql_status st = dsql_config_resolve_view(cfg, &view, &own, err);
    if (st != DSQL_OK)
        return st;
    PGconn *fresh = connect_blocking(view, provider, host_of(view, *conn), NULL, err);
    dsql_config_free(own);
    if (!fresh)
        return err ? err->status : DSQL_ENETWORK;
    if (*conn)
        PQfinish(*conn);
    *conn = fresh;
    return DSQL_OK;
}
