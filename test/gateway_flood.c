/* gateway_flood: the floods of issue 13 against a running dsql-local, with
 * valid logins made while they last (test/t-gateway-floods.sh asserts on
 * its RESULT line, bench/gateway-floods.sh prints the full figures).
 *
 *   gateway_flood idle N [--logins K] [--hold S] [--reconnect]
 *       N TCP connections that never start TLS, held open; then K logins
 *       one after the other; then S more seconds of holding. With
 *       --reconnect each one the gateway closes is replaced at once.
 *   gateway_flood cancel RATE SECONDS [--login-threads T]
 *       RATE plain CancelRequests a second for SECONDS, from one client
 *       process (--senders threads, default 2), while T threads log in
 *       one after the other.
 *   gateway_flood burst N
 *       N logins started at once (threads released together).
 *   common: --pid PID (the gateway: its CPU time over the window, from
 *       /proc/PID/stat), --log FILE (its log: growth over the window).
 *
 * Logins use libpq with the PG* environment (PGPASSWORD holds a token).
 * The last line is "RESULT <mode> key=value ...". Loopback only. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>

#define MAX_LAT 100000

static int gw_pid;
static const char *log_path;
static int port;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- what the gateway spent: CPU seconds and log bytes ---- */

static double gateway_cpu_s(void)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *fp;
    size_t n;

    if (gw_pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/stat", gw_pid);
    fp = fopen(path, "r");
    if (!fp)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long long log_size(void)
{
    struct stat st;
    return log_path && stat(log_path, &st) == 0 ? (long long)st.st_size : 0;
}

typedef struct window {
    double t0, cpu0;
    long long log0;
} window;

static void window_start(window *w)
{
    w->t0 = now_s();
    w->cpu0 = gateway_cpu_s();
    w->log0 = log_size();
}

static void window_print(const window *w)
{
    double el = now_s() - w->t0, cpu = gateway_cpu_s() - w->cpu0;
    printf(" window_s=%.1f cpu_pct=%.1f log_growth=%lld", el, el > 0 ? 100.0 * cpu / el : 0,
           log_size() - w->log0);
}

/* ---- logins ---- */

typedef struct logins {
    pthread_mutex_t mu;
    long ok, total;
    double lat[MAX_LAT]; /* seconds, successful and failed alike */
    char first_error[256];
} logins;

static logins L = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, ""};

static const char *login_timeout = "8"; /* seconds */

static void one_login(void)
{
    const char *keys[] = {"connect_timeout", NULL};
    const char *vals[] = {login_timeout, NULL};
    double t0 = now_s(), dt;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "select 1") : NULL;
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;

    dt = now_s() - t0;
    pthread_mutex_lock(&L.mu);
    if (L.total < MAX_LAT)
        L.lat[L.total] = dt;
    L.total++;
    L.ok += ok;
    if (!ok && !L.first_error[0]) {
        snprintf(L.first_error, sizeof L.first_error, "%s", PQerrorMessage(c));
        L.first_error[strcspn(L.first_error, "\n")] = '\0';
    }
    pthread_mutex_unlock(&L.mu);
    PQclear(r);
    PQfinish(c);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void logins_print(void)
{
    long n = L.total < MAX_LAT ? L.total : MAX_LAT;

    qsort(L.lat, (size_t)n, sizeof L.lat[0], cmp_double);
    printf(" logins=%ld logins_ok=%ld latency_p50_ms=%.0f latency_max_ms=%.0f", L.total, L.ok,
           n ? 1000 * L.lat[n / 2] : 0, n ? 1000 * L.lat[n - 1] : 0);
}

/* ---- raw sockets to the gateway ---- */

static int tcp_socket(int nonblock)
{
    return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
}

static int connect_gateway(int fd)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0 || errno == EINPROGRESS)
        return 0;
    return -1;
}

static void raise_own_fd_limit(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < want) {
        printf("RESULT skip: this process may open only %ld descriptors, %ld needed\n",
               (long)rl.rlim_cur, want);
        exit(77);
    }
}

/* ---- idle: connections that never start TLS ---- */

typedef struct idle_set {
    long n;
    int *fds;
    struct pollfd *pf;
    volatile int over;
    long reconnects;
} idle_set;

static int idle_open(void)
{
    int fd = tcp_socket(1);
    if (fd >= 0 && connect_gateway(fd) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void idle_watch(idle_set *s)
{
    long i;
    for (i = 0; i < s->n; i++) {
        s->pf[i].fd = s->fds[i];
        s->pf[i].events = POLLIN | POLLRDHUP;
        s->pf[i].revents = 0;
    }
}

static int idle_closed(const struct pollfd *p)
{
    return (p->revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* --reconnect: an attacker who opens a new idle connection for each one
 * the gateway closes. */
static void *reconnect_loop(void *arg)
{
    idle_set *s = arg;
    long i;

    while (!s->over) {
        idle_watch(s);
        if (poll(s->pf, (nfds_t)s->n, 100) <= 0)
            continue;
        for (i = 0; i < s->n; i++) {
            if (!idle_closed(&s->pf[i]))
                continue;
            close(s->fds[i]);
            s->fds[i] = idle_open();
            s->reconnects++;
        }
    }
    return NULL;
}

static int run_idle(long n, int nlogins, double hold, int reconnect)
{
    idle_set s = {n, calloc((size_t)n, sizeof(int)), calloc((size_t)n, sizeof(struct pollfd)), 0, 0};
    long i, closed = 0;
    pthread_t t;
    window w;

    if (!s.fds || !s.pf)
        return 2;
    raise_own_fd_limit(n + 64);
    window_start(&w);
    for (i = 0; i < n; i++) {
        s.fds[i] = idle_open();
        if (s.fds[i] < 0) {
            perror("idle connection");
            return 2;
        }
    }
    if (reconnect && pthread_create(&t, NULL, reconnect_loop, &s) != 0)
        return 2;
    sleep(1); /* the gateway has them all by now */
    for (i = 0; i < nlogins; i++)
        one_login();
    usleep((useconds_t)(hold * 1e6));
    if (reconnect) {
        s.over = 1;
        pthread_join(t, NULL);
    }
    idle_watch(&s);
    poll(s.pf, (nfds_t)n, 0);
    for (i = 0; i < n; i++)
        closed += idle_closed(&s.pf[i]);
    printf("RESULT idle held=%ld closed_by_gateway=%ld reconnects=%ld", n, closed, s.reconnects);
    logins_print();
    window_print(&w);
    printf("\n");
    if (L.first_error[0])
        printf("first login error: %s\n", L.first_error);
    for (i = 0; i < n; i++)
        if (s.fds[i] >= 0)
            close(s.fds[i]);
    free(s.fds);
    free(s.pf);
    return 0;
}

/* ---- cancel: a flood of plain CancelRequests ---- */

static volatile int flood_over;

static void *login_loop(void *arg)
{
    (void)arg;
    while (!flood_over)
        one_login();
    return NULL;
}

/* One CancelRequest on its own connection, as libpq sends it: connect,
 * 16 bytes, close. Unknown keys: PostgreSQL ignores them. */
static int send_cancel(unsigned seq)
{
    unsigned char pkt[16] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e};
    struct timeval tv = {1, 0};
    int fd = tcp_socket(0), ok;

    if (fd < 0)
        return -1;
    pkt[8] = (unsigned char)(seq >> 24);
    pkt[9] = (unsigned char)(seq >> 16);
    pkt[10] = (unsigned char)(seq >> 8);
    pkt[11] = (unsigned char)seq;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect too */
    ok = connect_gateway(fd) == 0 && send(fd, pkt, sizeof pkt, MSG_NOSIGNAL) == (ssize_t)sizeof pkt;
    close(fd);
    return ok ? 0 : -1;
}

typedef struct sender {
    pthread_t t;
    double rate, seconds;
    long sent, failed;
    unsigned seed;
} sender;

/* Paced in 1 ms ticks, catching up when a tick ran long, never bursting
 * more than 50 ms' worth when far behind. */
static void *send_loop(void *arg)
{
    sender *s = arg;
    double t0 = now_s(), per_ms = s->rate / 1000.0, owed = 0;
    long tick = 0;

    while (now_s() - t0 < s->seconds) {
        double due = t0 + (double)(++tick) / 1000.0;
        owed += per_ms;
        while (owed >= 1 && now_s() < due + 0.05) {
            if (send_cancel(s->seed++) == 0)
                s->sent++;
            else
                s->failed++;
            owed -= 1;
        }
        if (owed > per_ms * 50)
            owed = per_ms * 50;
        while (now_s() < due)
            usleep(100);
    }
    return NULL;
}

static int run_cancel(long rate, double seconds, int threads, int nsenders)
{
    pthread_t t[64];
    sender s[16];
    long sent = 0, failed = 0;
    double t0, el;
    int i;
    window w;

    if (threads > 64)
        threads = 64;
    if (nsenders < 1 || nsenders > 16)
        nsenders = 1;
    window_start(&w);
    for (i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, login_loop, NULL) != 0)
            return 2;
    t0 = now_s();
    for (i = 0; i < nsenders; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].rate = (double)rate / nsenders;
        s[i].seconds = seconds;
        s[i].seed = (unsigned)i << 24;
        if (pthread_create(&s[i].t, NULL, send_loop, &s[i]) != 0)
            return 2;
    }
    for (i = 0; i < nsenders; i++) {
        pthread_join(s[i].t, NULL);
        sent += s[i].sent;
        failed += s[i].failed;
    }
    el = now_s() - t0;
    flood_over = 1;
    for (i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("RESULT cancel cancels_sent=%ld cancels_failed=%ld cancel_rate=%.0f", sent, failed,
           el > 0 ? (double)sent / el : 0);
    logins_print();
    window_print(&w);
    printf("\n");
    if (L.first_error[0])
        printf("first login error: %s\n", L.first_error);
    return 0;
}

/* ---- burst: many logins at once ---- */

static pthread_barrier_t gate;

static void *burst_one(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&gate);
    one_login();
    return NULL;
}

static int run_burst(int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    int i, made = 0;
    window w;

    if (!t || pthread_barrier_init(&gate, NULL, (unsigned)n + 1) != 0)
        return 2;
    raise_own_fd_limit(n + 64);
    window_start(&w);
    for (i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, burst_one, NULL) == 0)
            made++;
        else
            break;
    if (made != n) {
        printf("RESULT skip: only %d threads\n", made);
        return 77;
    }
    pthread_barrier_wait(&gate);
    for (i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("RESULT burst");
    logins_print();
    window_print(&w);
    printf("\n");
    if (L.first_error[0])
        printf("first login error: %s\n", L.first_error);
    pthread_barrier_destroy(&gate);
    free(t);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: gateway_flood idle N [--logins K] [--hold S] [--reconnect] | cancel RATE SECONDS "
                    "[--login-threads T] [--senders S] | burst N; [--pid PID] [--log FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *p = getenv("PGPORT");
    int i, nlogins = 5, threads = 2, senders = 2, reconnect = 0;
    double hold = 3;

    if (argc < 3 || !p)
        return usage();
    port = atoi(p);
    for (i = 3; i < argc; i++)
        if (strcmp(argv[i], "--reconnect") == 0)
            reconnect = 1;
    for (i = 3; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0)
            gw_pid = atoi(argv[++i]);
        else if (strcmp(argv[i], "--log") == 0)
            log_path = argv[++i];
        else if (strcmp(argv[i], "--logins") == 0)
            nlogins = atoi(argv[++i]);
        else if (strcmp(argv[i], "--hold") == 0)
            hold = atof(argv[++i]);
        else if (strcmp(argv[i], "--login-threads") == 0)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--senders") == 0)
            senders = atoi(argv[++i]);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "idle") == 0)
        return run_idle(atol(argv[2]), nlogins, hold, reconnect);
    if (strcmp(argv[1], "cancel") == 0 && argc >= 4)
        return run_cancel(atol(argv[2]), atof(argv[3]), threads, senders);
    if (strcmp(argv[1], "burst") == 0) {
        login_timeout = "60"; /* 200 TLS logins at once take a while */
        return run_burst(atoi(argv[2]));
    }
    return usage();
}
