/* dsql-proxy: IAM login to Aurora DSQL for any PostgreSQL client. Clients
 * connect to a local socket without a password; each gets its own
 * upstream session, logged in with a fresh token from the library's shared
 * credential chain. Exit status: 0 after a clean stop, 1 failure, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <openssl/crypto.h>

#include "cancel.h"
#include "dsql_token.h" /* options, target: resolved as dsql-token resolves them */
#include "fdlimit.h"
#include "session.h"

#define DEFAULT_AUTH_TIMEOUT 30
#define DEFAULT_DRAIN_TIMEOUT 30
#define DEFAULT_MAX_DURATION 3600 /* DSQL's ("Cluster quotas and database limits") */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dsql-proxy [options] [--hostname HOST | --cluster-id ID | CONNECTION]\n"
            "\n"
            "A local PostgreSQL endpoint: clients connect without a password and are\n"
            "logged in to Aurora DSQL with a fresh IAM token (verify-full TLS upstream).\n"
            "The upstream is taken as dsql-token takes it; with none, from PGHOST,\n"
            "PGHOSTADDR, PGPORT, PGSSLROOTCERT.\n"
            "\n"
            "  --listen unix:DIR   socket DIR/.s.PGSQL.5432 (default: a new private\n"
            "                      directory); only the proxy's own uid may connect\n"
            "  --listen tcp:127.0.0.1:PORT\n"
            "                      loopback TCP; needs --client-password-file or\n"
            "                      --trust-loopback\n"
            "  --client-password-file FILE\n"
            "                      TCP clients log in with a local password, checked\n"
            "                      with SCRAM-SHA-256 (user:SCRAM-SHA-256$... lines)\n"
            "  --trust-loopback    accept ANY local process on a TCP listener\n"
            "  --allow-uid UID     also accept this uid on Unix sockets (repeatable)\n"
            "  --allow-user USER   only these database users (repeatable)\n"
            "  --max-connections N at most N clients at once\n"
            "  --hostname HOST, --cluster-id ID, --region R, --profile P\n"
            "  --hostaddr ADDR, --port N, --sslrootcert FILE   the upstream\n"
            "  --sslnegotiation postgres|direct   upstream TLS start (default postgres)\n"
            "  --expires-in SECS   token lifetime (default: the configuration's, 900)\n"
            "  --auth-timeout SECS a client must be logged in within (default 30)\n"
            "  --drain-timeout SECS  SIGTERM waits this long for sessions (default 30)\n"
            "  --max-connection-duration SECS\n"
            "                      the upstream's connection limit (DSQL: 3600, the\n"
            "                      default); sessions near it end with a FATAL when\n"
            "                      idle (0: off)\n"
            "  --metrics tcp:127.0.0.1:PORT\n"
            "                      serve Prometheus metrics at /metrics (loopback only)\n"
            "  --print-env         print export/unset lines for a libpq client on stdout\n"
            "  --log FILE          append the log to FILE (reopened on SIGHUP)\n"
            "  --verbose           log what the library does (never secrets)\n"
            "  --help, --version\n");
}

typedef struct args {
    options o;        /* the upstream, as dsql-token has it */
    dp_options d;
    const char *sslrootcert;
} args;

static int bad(const char *fmt, const char *a, const char *b)
{
    fputs("dsql-proxy: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

static int number(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_value(args *a, int c, const char *name, const char *v)
{
    char err[300];
    long n;

    switch (c) {
    case 'l':
        if (a->d.nlisten == DP_MAX_LISTEN)
            return bad("too many --listen (at most %s)%s", "8", "");
        if (dp_listen_parse(&a->d.listen[a->d.nlisten], "--listen", v, err, sizeof err) != 0)
            return bad("%s%s", err, "");
        a->d.nlisten++;
        return 0;
    case 'U':
        if (a->d.nallow_user == DP_MAX_ALLOW)
            return bad("too many --allow-user%s%s", "", "");
        a->d.allow_user[a->d.nallow_user++] = v;
        return 0;
    case 'u':
        if (a->d.nallow_uid == DP_MAX_ALLOW || number(v, 0, 0x7fffffff, &n) != 0)
            return bad("--allow-uid '%s' is not a uid%s", v, "");
        a->d.allow_uid[a->d.nallow_uid++] = (uid_t)n;
        return 0;
    case 'm':
        if (number(v, 1, 1000000, &n) != 0)
            return bad("--max-connections '%s' is not a number in 1..1000000%s", v, "");
        a->d.max_connections = (int)n;
        return 0;
    case 'e':
        if (number(v, 1, DSQL_TOKEN_MAX_EXPIRES, &n) != 0)
            return bad("--expires-in '%s' is not a number of seconds in 1..604800%s", v, "");
        a->d.expires_in = (uint32_t)n;
        return 0;
    case 'A':
    case 'D':
        if (number(v, 1, 3600, &n) != 0)
            return bad("--%s '%s' is not a number of seconds in 1..3600", name, v);
        *(c == 'A' ? &a->d.auth_timeout : &a->d.drain_timeout) = (int)n;
        return 0;
    case 'X':
        if (number(v, 0, 7 * 86400, &n) != 0)
            return bad("--max-connection-duration '%s' is not a number of seconds in "
                       "0..604800%s", v, "");
        a->d.max_duration = (int)n;
        return 0;
    case 'n':
        if (strcmp(v, "postgres") != 0 && strcmp(v, "direct") != 0)
            return bad("--sslnegotiation '%s' is not postgres or direct%s", v, "");
        a->d.direct_tls = strcmp(v, "direct") == 0;
        return 0;
    case 'P':
        if (number(v, 1, 65535, &n) != 0)
            return bad("--port '%s' is not a number in 1..65535%s", v, "");
        a->o.port = v;
        return 0;
    case 'h': a->o.hostname = v; return 0;
    case 'c': a->o.cluster_id = v; return 0;
    case 'r': a->o.region = v; return 0;
    case 'p': a->o.profile = v; return 0;
    case 'a': a->o.hostaddr = v; return 0;
    case 'R': a->sslrootcert = v; return 0;
    case 'W': a->d.password_file = v; return 0;
    case 'L': a->d.log_file = v; return 0;
    case 'M':
        if (a->d.metrics.port >= 0)
            return bad("--metrics given twice%s%s", "", "");
        if (dp_metrics_parse(&a->d.metrics, v, err, sizeof err) != 0)
            return bad("%s%s", err, "");
        return 0;
    default: return bad("unknown option%s%s", "", "");
    }
}

static int parse_args(int argc, char **argv, args *a)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'}, {"allow-user", required_argument, NULL, 'U'},
        {"allow-uid", required_argument, NULL, 'u'},
        {"max-connections", required_argument, NULL, 'm'},
        {"expires-in", required_argument, NULL, 'e'},
        {"auth-timeout", required_argument, NULL, 'A'},
        {"drain-timeout", required_argument, NULL, 'D'},
        {"max-connection-duration", required_argument, NULL, 'X'},
        {"sslnegotiation", required_argument, NULL, 'n'}, {"port", required_argument, NULL, 'P'},
        {"hostname", required_argument, NULL, 'h'}, {"cluster-id", required_argument, NULL, 'c'},
        {"region", required_argument, NULL, 'r'}, {"profile", required_argument, NULL, 'p'},
        {"hostaddr", required_argument, NULL, 'a'}, {"sslrootcert", required_argument, NULL, 'R'},
        {"client-password-file", required_argument, NULL, 'W'},
        {"log", required_argument, NULL, 'L'}, {"metrics", required_argument, NULL, 'M'},
        {"trust-loopback", no_argument, NULL, 'T'}, {"print-env", no_argument, NULL, 'E'},
        {"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'H'},
        {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
    int c, idx = 0, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, &idx)) != -1) {
        switch (c) {
        case 'T': a->d.trust_loopback = 1; break;
        case 'E': a->d.print_env = 1; break;
        case 'v': a->d.verbose = a->o.verbose = 1; break;
        case 'H': usage(stdout); exit(0);
        case 'V': printf("dsql-proxy %s\n", dsql_version()); exit(0);
        case ':': return bad("option %s needs a value%s", argv[optind - 1], "");
        case '?': return bad("unknown option '%s' (see --help)%s", argv[optind - 1], "");
        default:
            if (strncmp(optarg, "--", 2) == 0)
                return bad("option --%s needs a value%s", longopts[idx].name, "");
            if ((rc = parse_value(a, c, longopts[idx].name, optarg)) != 0)
                return rc;
        }
    }
    if (optind < argc)
        a->o.connection = argv[optind++];
    if (optind < argc)
        return bad("unexpected argument '%s' (see --help)%s", argv[optind], "");
    return 0;
}

/* A TCP listener trusts every local process: only when asked to. */
static int check_policy(const dp_options *d)
{
    int i;

    for (i = 0; i < d->nlisten; i++)
        if (!d->listen[i].is_unix && !d->trust_loopback && !d->password_file)
            return bad("--listen tcp:%s: any local process could log in as any database "
                       "user; give --client-password-file, or --trust-loopback to accept "
                       "that (see dsql-proxy(1))%s", d->listen[i].host, "");
    return 0;
}

static void log_to_stderr(dsql_log_level level, const char *msg, void *ud)
{
    static const char *names[] = {"error", "warning", "info", "debug"};

    (void)ud;
    fprintf(stderr, "dsql-proxy: %s: %s\n", names[level], msg);
}

/* Single-quoted for a POSIX shell. */
static void put_quoted(const char *name, const char *v)
{
    printf("export %s='", name);
    for (; *v; v++)
        fputs(*v == '\'' ? "'\\''" : (char[2]){*v, 0}, stdout);
    printf("'\n");
}

static void print_env(const dp_listen *l)
{
    static const char *drop[] = {"PGHOSTADDR", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY",
                                 "PGSSLNEGOTIATION", "PGREQUIRESSL", "PGPASSWORD",
                                 "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", NULL};
    char port[16];
    int i;

    snprintf(port, sizeof port, "%d", l->is_unix ? 5432 : l->port);
    put_quoted("PGHOST", l->is_unix ? l->dir : l->host);
    put_quoted("PGPORT", port);
    /* no TLS or GSS to the local endpoint (TLS is the proxy's, upstream) */
    put_quoted("PGSSLMODE", "disable");
    put_quoted("PGGSSENCMODE", "disable");
    for (i = 0; drop[i]; i++)
        printf("unset %s\n", drop[i]);
    fflush(stdout);
}

static void ready_line(const dp_options *d)
{
    int i;

    fprintf(stderr, "dsql-proxy: ready on");
    for (i = 0; i < d->nlisten; i++) {
        if (d->listen[i].is_unix)
            fprintf(stderr, " unix:%s", d->listen[i].dir);
        else if (strchr(d->listen[i].host, ':'))
            fprintf(stderr, " tcp:[%s]:%d", d->listen[i].host, d->listen[i].port);
        else
            fprintf(stderr, " tcp:%s:%d", d->listen[i].host, d->listen[i].port);
    }
    if (d->metrics.port >= 0)
        fprintf(stderr, strchr(d->metrics.host, ':') ? "; metrics on tcp:[%s]:%d"
                                                     : "; metrics on tcp:%s:%d",
                d->metrics.host, d->metrics.port);
    fprintf(stderr, "\n");
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_proxy *p = arg;

    (void)fd;
    (void)what;
    pgs_log("drain: %zu sessions still open after %d s; closing them", p->nsessions,
            p->opt->drain_timeout);
    event_base_loopbreak(p->base);
}

/* SIGTERM, SIGINT: stop accepting, let the sessions finish (bounded). */
static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    dp_proxy *p = arg;
    dp_options *d = (dp_options *)p->opt;
    struct timeval tv = {p->opt->drain_timeout, 0};
    int i;

    (void)what;
    if (p->draining)
        return;
    p->draining = 1;
    for (i = 0; i < d->nlisten; i++)
        dp_listen_close(&d->listen[i]);
    pgs_log("signal %d: not accepting; waiting for %zu sessions (at most %d s)", (int)sig,
            p->nsessions, p->opt->drain_timeout);
    if (p->nsessions == 0 || !p->drain_timer || evtimer_add(p->drain_timer, &tv) != 0)
        event_base_loopbreak(p->base);
}

/* SIGHUP: reopen the log (after rotation); without --log, nothing. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    const dp_proxy *p = arg;

    (void)sig;
    (void)what;
    if (p->opt->log_file) {
        pgs_log_open(p->opt->log_file, "dsql-proxy");
        pgs_log("SIGHUP: log reopened");
    }
}

/* A token now, so a missing credential shows at start, not at the first
 * client (the proxy still starts: credentials may come later). */
static void preflight(dp_proxy *p)
{
    dsql_token_request req = {DSQL_STRUCT_VERSION, p->up.signing_host, "admin",
                              p->up.region[0] ? p->up.region : NULL, p->opt->expires_in, 0};
    dsql_error err;
    char *token = NULL;

    memset(&err, 0, sizeof err);
    if (dsql_token_provider_get_alloc(p->tokens, &req, &token, NULL, &err) != DSQL_OK)
        fprintf(stderr, "dsql-proxy: warning: no token can be made yet: %s\n", err.message);
    dsql_token_free(token);
}

static int setup(dp_proxy *p, args *a, const target *t)
{
    dsql_error err;
    char msg[600];
    const char *root = a->sslrootcert ? a->sslrootcert : dsql_config_get(t->cfg, "sslrootcert");
    const char *region = a->o.region ? a->o.region : t->host.region;
    long fd_limit = pgs_fd_limit_raise();
    int i;

    memset(&err, 0, sizeof err);
    if (dp_upstream_init(&p->up, t->host.host, t->host.hostaddr, t->host.signing_host, region,
                         t->host.port, root, a->d.direct_tls, msg, sizeof msg) != 0) {
        fprintf(stderr, "dsql-proxy: %s\n", msg);
        return 1;
    }
    if (a->d.password_file && dp_passwords_load(p, a->d.password_file, msg, sizeof msg) != 0) {
        fprintf(stderr, "dsql-proxy: %s\n", msg);
        return 1;
    }
    p->tokens = dp_token_provider_new(dsql_config_get(t->cfg, "profile"), &p->stats, &err);
    if (!p->tokens) {
        fprintf(stderr, "dsql-proxy: %s\n", err.message);
        return 1;
    }
    if (dp_tokens_start(p, msg, sizeof msg) != 0) {
        fprintf(stderr, "dsql-proxy: %s\n", msg);
        return 1;
    }
    if (a->d.max_connections == 0)
        a->d.max_connections = fd_limit > 64 ? (int)(fd_limit / 2 - 16) : 16;
    dp_session_init_limits(p, pgs_preauth_default_limit(fd_limit));
    pgs_ratelimit_init(&p->log_rl, 5 * PGS_LOG_PER_SECOND, 5 * PGS_LOG_BURST);
    /* the rate both servers forward cancels at (cancel.h); how many may be
     * in flight is the proxy's own: DP_CANCEL_IN_FLIGHT */
    pgs_ratelimit_init(&p->cancel_rl, PGS_CANCEL_PER_SECOND, PGS_CANCEL_BURST);
    p->drain_timer = evtimer_new(p->base, drain_timeout_cb, p);
    p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!p->dns)
        p->dns = evdns_base_new(p->base, 0); /* no resolv.conf: addresses still work */
    if (!p->drain_timer || !p->dns) {
        fprintf(stderr, "dsql-proxy: out of memory\n");
        return 1;
    }
    for (i = 0; i < a->d.nlisten; i++)
        if (dp_listen_open(p, &a->d.listen[i], msg, sizeof msg) != 0) {
            fprintf(stderr, "dsql-proxy: %s\n", msg);
            return 1;
        }
    if (dp_metrics_open(p, msg, sizeof msg) != 0) {
        fprintf(stderr, "dsql-proxy: %s\n", msg);
        return 1;
    }
    return 0;
}

static void teardown(dp_proxy *p, args *a)
{
    int i;

    for (i = 0; i < a->d.nlisten; i++)
        dp_listen_close(&a->d.listen[i]);
    dp_metrics_close(p);
    dp_session_close_all(p);
    dp_cancel_close_all(p);
    if (p->base)
        event_base_loop(p->base, EVLOOP_NONBLOCK); /* deferred bufferevent frees */
    dp_tokens_stop(p); /* after the sessions: their jobs are cancelled */
    dsql_token_provider_free(p->tokens); /* after the worker: nobody signs */
    if (p->drain_timer)
        event_free(p->drain_timer);
    if (p->dns)
        evdns_base_free(p->dns, 1);
    SSL_CTX_free(p->up.ssl_ctx);
    dp_passwords_free(p);
}

static unsigned long refused(const dp_stats *st)
{
    unsigned long n = 0;
    int i;

    for (i = 0; i < DP_FAIL_N; i++)
        n += st->failures[i];
    return n;
}

static int serve(args *a, const target *t)
{
    dp_proxy p;
    struct event *sigs[3] = {NULL, NULL, NULL};
    int rc, i;

    memset(&p, 0, sizeof p);
    p.opt = &a->d;
    p.base = event_base_new();
    if (!p.base) {
        fprintf(stderr, "dsql-proxy: cannot make an event loop\n");
        return 1;
    }
    rc = setup(&p, a, t);
    sigs[0] = evsignal_new(p.base, SIGTERM, stop_cb, &p);
    sigs[1] = evsignal_new(p.base, SIGINT, stop_cb, &p);
    sigs[2] = evsignal_new(p.base, SIGHUP, hup_cb, &p);
    for (i = 0; rc == 0 && i < 3; i++)
        if (!sigs[i] || evsignal_add(sigs[i], NULL) != 0)
            rc = 1;
    if (rc == 0) {
        preflight(&p);
        if (a->d.print_env)
            print_env(&a->d.listen[0]);
        ready_line(&a->d);
        event_base_dispatch(p.base);
        pgs_log("stopped: %lu connections, %lu logged in, %lu refused, %lu cancels forwarded",
                p.stats.connections, p.stats.logins, refused(&p.stats), p.stats.cancels);
    }
    for (i = 0; i < 3; i++)
        if (sigs[i])
            event_free(sigs[i]);
    teardown(&p, a);
    event_base_free(p.base);
    return rc;
}

int main(int argc, char **argv)
{
    args a;
    target t;
    int rc;

    memset(&a, 0, sizeof a);
    memset(&t, 0, sizeof t);
    a.o.prog = "dsql-proxy";
    a.d.auth_timeout = DEFAULT_AUTH_TIMEOUT;
    a.d.drain_timeout = DEFAULT_DRAIN_TIMEOUT;
    a.d.metrics.port = -1;
    a.d.max_duration = DEFAULT_MAX_DURATION;
    signal(SIGPIPE, SIG_IGN);
    pgs_log_open(NULL, "dsql-proxy");
    rc = parse_args(argc, argv, &a);
    if (rc == 0 && a.d.log_file) {
        FILE *f = fopen(a.d.log_file, "ae");
        if (!f) {
            fprintf(stderr, "dsql-proxy: cannot open the log %s: %s\n", a.d.log_file,
                    strerror(errno));
            return 1;
        }
        fclose(f);
        pgs_log_open(a.d.log_file, "dsql-proxy");
    }
    if (rc == 0)
        rc = check_policy(&a.d);
    if (rc != 0)
        return rc;
    if (a.d.nlisten == 0)
        dp_listen_parse(&a.d.listen[a.d.nlisten++], "--listen", "unix:", NULL, 0);
    dsql_set_log_handler(log_to_stderr, a.d.verbose ? DSQL_LOG_DEBUG : DSQL_LOG_WARN, NULL);
    rc = resolve_target(&a.o, &t);
    if (rc == 0)
        rc = serve(&a, &t);
    dsql_config_free(t.cfg);
    return rc;
}
