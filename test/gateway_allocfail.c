/* Allocation-failure loop over the dsql-local gateway (issue 9).
 *
 * For n = 1, 2, ... a fresh gateway process fails the n-th allocation made
 * after it starts listening: its own and libdsqlauth's (linked in, malloc
 * wrapped), libevent's and OpenSSL's (through their allocator hooks). A
 * client logs in over TLS with an IAM token, then logs out. Each run must
 * show:
 *   - the failed login ends with an error, never a hang or a crash, and a
 *     login that succeeds really reached PostgreSQL;
 *   - the gateway closes the failed connection and serves the next login
 *     (nothing failed), unless the failure was inside OpenSSL: OpenSSL 3.0
 *     can keep failing handshakes after that (still with an error);
 *   - once stopped, the gateway process has freed every block it allocated
 *     (after failing inside, OpenSSL may keep a few of its own; its SSL_CTX,
 *     and so every SSL, must still be gone).
 * The loop ends at the first n past the last allocation of that login.
 * ALLOCFAIL_STRIDE=k tests every k-th n (for slow sanitizer legs);
 * ALLOCFAIL_FIRST=n starts at n (to reproduce one run). */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "dsqlauth.h"
#include "gateway.h"
#include "startup.h"

#define HOST "allocfail0000000000000000a.dsql.us-east-1.on.aws"

/* ---- the counting allocator (gateway process only) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

/* Live blocks, so a leak is counted exactly and a free of memory that libc
 * allocated on its own (not through us) is passed through uncounted. */
#define LIVE_CAP (1u << 18)
static void *live[LIVE_CAP];
static unsigned char live_origin[LIVE_CAP]; /* which allocator, for reports */
static size_t live_count;
enum { FROM_GATEWAY, FROM_OPENSSL, FROM_LIBEVENT }; /* gateway: with libdsqlauth */
static unsigned char origin; /* set around calls that come from a library */
static int tracking;
static unsigned long alloc_seq, armed_at, fail_at; /* fail_at 0: never */
static int injected, moved_past_defect, failed_in_openssl, harness_busy;

static size_t slot_of(void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 2654435761u) & (LIVE_CAP - 1);
}

static void live_add(void *p)
{
    size_t i = slot_of(p);
    while (live[i] && live[i] != (void *)1)
        i = (i + 1) & (LIVE_CAP - 1);
    live[i] = p;
    live_origin[i] = origin;
    live_count++;
    if (live_count > LIVE_CAP / 2)
        abort(); /* the table is sized far above a gateway's needs */
}

static int live_remove(void *p)
{
    size_t i = slot_of(p);
    while (live[i]) {
        if (live[i] == p) {
            live[i] = (void *)1; /* tombstone keeps later probes intact */
            live_count--;
            return 1;
        }
        i = (i + 1) & (LIVE_CAP - 1);
    }
    return 0;
}

/* Two defects of libevent 2.1.12 that no caller can work around, so the
 * allocations they cover are not failed (the next allocation is instead):
 *  - bufferevent constructors ignore a failed evbuffer_add_cb(): the
 *    bufferevent is made but never flushes its output, so it stalls;
 *  - when bufferevent_init_common_ fails under the OpenSSL bufferevent
 *    constructor, its error path frees a half-made bufferevent (be_ops
 *    still NULL) and crashes. */
static int inside_libevent_defect(void)
{
    void *frames[8];
    int i, n = backtrace(frames, 8);
    Dl_info info, caller;

    for (i = 0; i < n; i++) {
        if (!dladdr(frames[i], &info) || !info.dli_sname)
            continue;
        if (strcmp(info.dli_sname, "evbuffer_add_cb") == 0)
            return 1;
        if (strcmp(info.dli_sname, "bufferevent_init_common_") == 0 && i + 1 < n &&
            dladdr(frames[i + 1], &caller) && strstr(caller.dli_fname, "libevent_openssl"))
            return 1;
    }
    return 0;
}

static int should_fail(void)
{
    if (!tracking || harness_busy)
        return 0;
    if (++alloc_seq != fail_at)
        return 0;
    if (inside_libevent_defect()) {
        fail_at++;
        moved_past_defect++;
        return 0;
    }
    injected = 1;
    failed_in_openssl = origin == FROM_OPENSSL;
    { /* where it failed, for the log a failing run prints */
        void *frames[24];
        fprintf(stderr, "allocation %lu fails here:\n", alloc_seq - armed_at);
        backtrace_symbols_fd(frames, backtrace(frames, 24), 2);
    }
    return 1;
}

void *__wrap_malloc(size_t n)
{
    void *p;
    if (should_fail())
        return NULL;
    p = __real_malloc(n);
    if (p && tracking)
        live_add(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p;
    if (should_fail())
        return NULL;
    p = __real_calloc(n, size);
    if (p && tracking)
        live_add(p);
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    void *p;
    int known;
    if (should_fail())
        return NULL; /* the old block stays valid, as realloc promises */
    known = old && tracking && live_remove(old);
    p = __real_realloc(old, n);
    if (!p && known)
        live_add(old);
    else if (p && tracking && (known || !old))
        live_add(p);
    return p;
}

void __wrap_free(void *p)
{
    if (p && tracking)
        live_remove(p);
    __real_free(p);
}

/* OpenSSL and libevent get the same allocator, tagged with their name. */
static void *tagged_malloc(unsigned char from, size_t n)
{
    void *p;
    origin = from;
    p = __wrap_malloc(n);
    origin = FROM_GATEWAY;
    return p;
}

static void *tagged_realloc(unsigned char from, void *old, size_t n)
{
    void *p;
    origin = from;
    p = __wrap_realloc(old, n);
    origin = FROM_GATEWAY;
    return p;
}

static void *crypto_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return tagged_malloc(FROM_OPENSSL, n);
}

static void *crypto_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return tagged_realloc(FROM_OPENSSL, p, n);
}

static void crypto_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    __wrap_free(p);
}

static void *event_malloc(size_t n)
{
    return tagged_malloc(FROM_LIBEVENT, n);
}

static void *event_realloc(void *p, size_t n)
{
    return tagged_realloc(FROM_LIBEVENT, p, n);
}

static void live_report(char *buf, size_t cap)
{
    size_t by[3] = {0, 0, 0}, i;
    for (i = 0; i < LIVE_CAP; i++)
        if (live[i] && live[i] != (void *)1)
            by[live_origin[i]]++;
    snprintf(buf, cap, "live=%zu (gateway %zu, OpenSSL %zu, libevent %zu)", live_count,
             by[FROM_GATEWAY], by[FROM_OPENSSL], by[FROM_LIBEVENT]);
}

/* ---- the gateway process ---- */

/* Control on stdin: 'd' disarms the failure once the gateway is done with
 * the first connection (so its teardown is tested too) and answers
 * "disarmed", or "stuck" when that connection outlives 10 s; end of file
 * stops the loop. The harness's own allocations are never failed. */
typedef struct control {
    struct event_base *base;
    dl_gateway *gw;
    struct event *settle;
    int waited_ms;
} control;

static void answer(const char *word)
{
    fail_at = 0;
    printf("%s\n", word);
    fflush(stdout);
}

static void settle_cb(evutil_socket_t fd, short what, void *arg)
{
    control *ctl = arg;
    struct timeval ms = {0, 1000};

    (void)fd;
    (void)what;
    if (!ctl->gw->conns)
        answer("disarmed");
    else if (++ctl->waited_ms > 10000)
        answer("stuck");
    else {
        harness_busy = 1;
        if (evtimer_add(ctl->settle, &ms) != 0)
            answer("stuck");
        harness_busy = 0;
    }
}

static void control_cb(evutil_socket_t fd, short what, void *arg)
{
    control *ctl = arg;
    char ch;
    ssize_t n = read(fd, &ch, 1);

    (void)what;
    if (n == 1 && ch == 'd')
        settle_cb(-1, 0, ctl);
    else if (n <= 0 && !(n < 0 && errno == EINTR))
        event_base_loopbreak(ctl->base);
}

static void crashed(int sig)
{
    void *frames[32];
    static const char msg[] = "the gateway crashed here:\n";
    ssize_t w = write(2, msg, sizeof msg - 1);

    (void)w;
    backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* SSL_CTX objects alive, counted by OpenSSL's ex_data hooks. Every SSL
 * holds a reference to the gateway's one SSL_CTX, so it outlives the
 * gateway if any SSL was left behind; that holds even when OpenSSL itself
 * keeps a few blocks after failing inside (OpenSSL 3.0 does, in its
 * algorithm fetch cache). */
static int contexts_alive;

static void object_made(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                        void *argp)
{
    (void)parent, (void)ptr, (void)ad, (void)idx, (void)argl, (void)argp;
    contexts_alive++;
}

static void object_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    (void)parent, (void)ptr, (void)ad, (void)idx, (void)argl, (void)argp;
    contexts_alive--;
}

static int serve(unsigned long n, const char *dir)
{
    dl_config cfg;
    char keys[600], err[256], live_text[128];
    int objects_left;
    void *warm[1];
    struct event_base *base;
    struct event *on_stdin;
    control ctl;
    dl_gateway *gw;

    /* before anything allocates, so every block is seen */
    if (!CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free)) {
        fprintf(stderr, "cannot route OpenSSL's allocations\n");
        return 2;
    }
    event_set_mem_functions(event_malloc, event_realloc, __wrap_free);
    if (CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, object_made, NULL,
                                object_freed) < 0) {
        fprintf(stderr, "cannot count OpenSSL objects\n");
        return 2;
    }
    backtrace(warm, 1); /* loads what backtrace() needs before it can be needed */
    signal(SIGSEGV, crashed);
    signal(SIGABRT, crashed);
    tracking = 1;
    snprintf(keys, sizeof keys, "%s/keys", dir);
    memset(&cfg, 0, sizeof cfg);
    cfg.hosts[0] = HOST;
    cfg.nhosts = 1;
    cfg.max_conn_seconds = 3600;
    cfg.auth_timeout = 60; /* longer than the client's: a stall shows as one */
    cfg.clock_skew = 300;
    base = event_base_new();
    gw = base ? dl_gateway_new(base, &cfg, dir, keys, dir, err, sizeof err) : NULL;
    ctl.base = base;
    ctl.gw = gw;
    ctl.waited_ms = 0;
    ctl.settle = base ? evtimer_new(base, settle_cb, &ctl) : NULL;
    on_stdin = base ? event_new(base, 0, EV_READ | EV_PERSIST, control_cb, &ctl) : NULL;
    if (!gw || !ctl.settle || !on_stdin || event_add(on_stdin, NULL) != 0) {
        fprintf(stderr, "gateway setup failed: %s\n", gw ? "control event" : err);
        return 2;
    }
    printf("%d\n", dl_gateway_port(gw));
    fflush(stdout);
    armed_at = alloc_seq;
    fail_at = armed_at + n;
    event_base_dispatch(base);
    fail_at = 0;
    dl_gateway_free(gw);
    event_free(on_stdin);
    event_free(ctl.settle);
    event_base_free(base);
    libevent_global_shutdown();
    objects_left = contexts_alive; /* before cleanup, which drops the hooks */
    OPENSSL_cleanup();
    live_report(live_text, sizeof live_text);
    printf("injected=%d exempted=%d allocations=%lu ssl_contexts=%d openssl_failed=%d %s\n",
           injected, moved_past_defect, alloc_seq - armed_at, objects_left, failed_in_openssl,
           live_text);
    return 0;
}

/* ---- a PostgreSQL stand-in on the Unix socket the gateway relays to ---- */

static pthread_mutex_t backend_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned backend_logins, backend_bad_startups;

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *backend_conn(void *arg)
{
    static const unsigned char ok_ready[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0,
                                             'Z', 0, 0, 0, 5, 'I'};
    int fd = (int)(intptr_t)arg;
    unsigned char hdr[4], body[4096], sink[512];
    uint32_t len;

    if (read_full(fd, hdr, 4) == 0 && (len = pgs_be32(hdr)) > 8 && len - 4 <= sizeof body &&
        read_full(fd, body, len - 4) == 0) {
        unsigned char pkt[4100];
        const char *user;
        memcpy(pkt, hdr, 4);
        memcpy(pkt + 4, body, len - 4);
        user = pgs_startup_valid(pkt, len) ? pgs_startup_param(pkt, len, "user") : NULL;
        pthread_mutex_lock(&backend_mu);
        if (user && strcmp(user, "admin") == 0)
            backend_logins++;
        else
            backend_bad_startups++;
        pthread_mutex_unlock(&backend_mu);
        if (user && write(fd, ok_ready, sizeof ok_ready) == (ssize_t)sizeof ok_ready)
            while (read(fd, sink, sizeof sink) > 0)
                ; /* until the Terminate and the close */
    }
    close(fd);
    return NULL;
}

static void *backend_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg, fd;
    pthread_t t;

    while ((fd = accept(lfd, NULL, NULL)) >= 0) {
        if (pthread_create(&t, NULL, backend_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return NULL;
}

static int start_backend(const char *dir)
{
    struct sockaddr_un sa;
    pthread_t t;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.s.PGSQL.5432", dir);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
        pthread_create(&t, NULL, backend_accept, (void *)(intptr_t)fd) != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

/* ---- the client side ---- */

typedef struct gateway_proc {
    pid_t pid;
    int control; /* its stdin */
    FILE *out;   /* its stdout */
    int port;
} gateway_proc;

static int spawn_gateway(unsigned long n, const char *dir, gateway_proc *g)
{
    int in[2], out[2];
    char nbuf[32], log[600], line[32];

    snprintf(nbuf, sizeof nbuf, "%lu", n);
    snprintf(log, sizeof log, "%s/gateway.log", dir);
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    g->pid = fork();
    if (g->pid < 0)
        return -1;
    if (g->pid == 0) {
        int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(in[1]);
        close(out[0]);
        /* a fresh image: OpenSSL's allocator can only be set before use */
        execl("/proc/self/exe", "gateway_allocfail", "--serve", nbuf, dir, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    g->control = in[1];
    g->out = fdopen(out[0], "r");
    return g->out && fgets(line, sizeof line, g->out) && sscanf(line, "%d", &g->port) == 1 ? 0
                                                                                         : -1;
}

/* Logs in through the gateway; returns 1 when the session is up. The error
 * text, if any, goes to msg. */
static int login(int port, const char *dir, const dl_key *key, char *msg, size_t cap)
{
    dsql_credentials creds = {(char *)key->akid, (char *)key->secret, NULL, 0};
    dsql_token_request tp = {DSQL_STRUCT_VERSION, HOST, "admin", NULL, 0, 0};
    char token[2048], portbuf[16], root[600];
    size_t len;
    dsql_error err;
    const char *k[] = {"host", "hostaddr", "port", "user", "dbname", "password",
                       "sslmode", "sslrootcert", "connect_timeout", NULL};
    const char *v[10];
    PGconn *c;
    int ok;

    if (dsql_token_generate(&tp, &creds, token, sizeof token, &len, &err) != DSQL_OK) {
        snprintf(msg, cap, "token: %s", err.message);
        return 0;
    }
    snprintf(portbuf, sizeof portbuf, "%d", port);
    snprintf(root, sizeof root, "%s/ca.pem", dir);
    v[0] = HOST, v[1] = "127.0.0.1", v[2] = portbuf, v[3] = "admin", v[4] = "postgres";
    v[5] = token, v[6] = "verify-full", v[7] = root, v[8] = "20", v[9] = NULL;
    c = PQconnectdbParams(k, v, 0);
    ok = PQstatus(c) == CONNECTION_OK;
    snprintf(msg, cap, "%s", ok ? "" : PQerrorMessage(c));
    PQfinish(c);
    OPENSSL_cleanse(token, sizeof token);
    return ok;
}

static int fail_run(unsigned long n, const char *what, const char *detail, const char *dir)
{
    char cmd[700];
    printf("FAIL n=%lu: %s%s%s\n", n, what, detail ? ": " : "", detail ? detail : "");
    snprintf(cmd, sizeof cmd, "tail -n 30 '%s/gateway.log'", dir);
    fflush(stdout);
    if (system(cmd) != 0)
        printf("(no gateway log)\n");
    return 1;
}

typedef struct run_result {
    int first_ok; /* the login under the failure still went through */
    int injected; /* an allocation was failed: 0 ends the loop */
    int exempted; /* the failure moved past libevent's defect */
    int second_ok;            /* the next login, with no failure */
    int openssl_failed;       /* the failed allocation was OpenSSL's */
    size_t openssl_leftovers; /* blocks OpenSSL kept after that */
} run_result;

static int run_once(unsigned long n, const char *dir, const dl_key *key, run_result *r)
{
    gateway_proc g;
    char msg[1024], report[256] = "";
    unsigned before;
    int reached, status, objects_left;
    size_t live_left, live_ours, live_openssl, live_libevent;

    if (spawn_gateway(n, dir, &g) != 0)
        return fail_run(n, "the gateway did not start", NULL, dir);
    pthread_mutex_lock(&backend_mu);
    before = backend_logins;
    pthread_mutex_unlock(&backend_mu);
    r->first_ok = login(g.port, dir, key, msg, sizeof msg);
    if (!r->first_ok && (msg[0] == '\0' || strstr(msg, "timeout expired")))
        return fail_run(n, "the failed login stalled or said nothing", msg, dir);
    if (r->first_ok) {
        pthread_mutex_lock(&backend_mu);
        reached = backend_logins > before;
        pthread_mutex_unlock(&backend_mu);
        if (!reached)
            return fail_run(n, "a login succeeded without reaching PostgreSQL", NULL, dir);
    }
    if (strstr(msg, key->secret))
        return fail_run(n, "an error message holds the secret key", NULL, dir);
    if (write(g.control, "d", 1) != 1 || !fgets(report, sizeof report, g.out))
        return fail_run(n, "cannot talk to the gateway", NULL, dir);
    if (strcmp(report, "disarmed\n") != 0)
        return fail_run(n, "the gateway kept the failed connection open", report, dir);
    r->second_ok = login(g.port, dir, key, msg, sizeof msg);
    if (!r->second_ok && (msg[0] == '\0' || strstr(msg, "timeout expired")))
        return fail_run(n, "the next login stalled or said nothing", msg, dir);
    close(g.control);
    if (!fgets(report, sizeof report, g.out))
        report[0] = '\0';
    fclose(g.out);
    if (waitpid(g.pid, &status, 0) != g.pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail_run(n, "the gateway crashed or failed", report, dir);
    if (sscanf(report,
               "injected=%d exempted=%d allocations=%*u ssl_contexts=%d openssl_failed=%d "
               "live=%zu (gateway %zu, OpenSSL %zu, libevent %zu)",
               &r->injected, &r->exempted, &objects_left, &r->openssl_failed, &live_left,
               &live_ours, &live_openssl, &live_libevent) != 8)
        return fail_run(n, "no report from the gateway", report, dir);
    /* OpenSSL's own leftovers after it failed inside are its business; an
     * SSL or SSL_CTX left alive, or any other block, is the gateway's */
    if (objects_left || live_ours || live_libevent || (live_openssl && !r->openssl_failed))
        return fail_run(n, "the gateway leaked", report, dir);
    /* OpenSSL 3.0 may keep failing handshakes after failing inside its
     * algorithm fetch; anything else must leave the gateway serving */
    if (!r->second_ok && !r->openssl_failed)
        return fail_run(n, "the gateway did not recover for the next login", msg, dir);
    r->openssl_leftovers = live_openssl;
    return 0;
}

int main(int argc, char **argv)
{
    const char *const hosts[] = {HOST};
    char tmpl[] = "/tmp/dsql-allocfail-XXXXXX", err[256] = "", keys[600], cmd[700], asan[512];
    unsigned long n, start, stride = 1, runs = 0, went_through = 0, exempted = 0, openssl_kept = 0,
                  openssl_broken = 0;
    const char *s = getenv("ALLOCFAIL_STRIDE"), *first = getenv("ALLOCFAIL_FIRST");
    dl_key key;
    run_result r = {0, 1, 0, 1, 0, 0};
    int failed = 0;

    if (argc == 4 && strcmp(argv[1], "--serve") == 0)
        return serve(strtoul(argv[2], NULL, 10), argv[3]);
    signal(SIGPIPE, SIG_IGN);
    /* the gateway processes' leaks are counted here, block by block;
     * LeakSanitizer would also flag OpenSSL's own leftovers */
    snprintf(asan, sizeof asan, "%s:detect_leaks=0", getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
    setenv("ASAN_OPTIONS", asan, 1);
    if (s && strtoul(s, NULL, 10) > 0)
        stride = strtoul(s, NULL, 10);
    if (!mkdtemp(tmpl) || dl_certs_make(tmpl, hosts, 1, err, sizeof err) != 0) {
        printf("FAIL setup: %s\n", err);
        return 1;
    }
    snprintf(keys, sizeof keys, "%s/keys", tmpl);
    if (dl_keys_generate(keys, 0, &key) != 0 || start_backend(tmpl) != 0) {
        printf("FAIL setup: keys or backend\n");
        return 1;
    }
    start = first ? strtoul(first, NULL, 10) : 1;
    for (n = start; r.injected && !failed; n += stride) {
        failed = run_once(n, tmpl, &key, &r);
        if (!failed && r.injected) {
            runs++;
            went_through += (unsigned long)r.first_ok;
            exempted += (unsigned long)r.exempted;
            openssl_kept += r.openssl_leftovers > 0;
            openssl_broken += !r.second_ok;
        }
    }
    pthread_mutex_lock(&backend_mu);
    if (!failed && backend_bad_startups) {
        printf("FAIL PostgreSQL received %u malformed startup packets\n", backend_bad_startups);
        failed = 1;
    }
    pthread_mutex_unlock(&backend_mu);
    if (!failed)
        printf("ok: failed allocation n for n = %lu..%lu step %lu (%lu runs, %lu moved past "
               "libevent's defects): %lu logins still went through, %lu ended in an error; "
               "the gateway freed all it made and served the next login (except in %lu runs "
               "where OpenSSL kept failing handshakes after failing inside; it kept a few "
               "blocks of its own in %lu runs)\n",
               start, n - 2 * stride, stride, runs, exempted, went_through, runs - went_through,
               openssl_broken, openssl_kept);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", tmpl);
    OPENSSL_cleanse(&key, sizeof key);
    return failed;
}
