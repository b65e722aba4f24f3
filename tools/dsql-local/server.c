/* dsql-local: the server process. Makes the state directory, keys,
 * certificates and the cluster, runs the gateway until told to stop, then
 * removes everything it made. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "dsqlauth.h"
#include "control.h"
#include "server.h"
#include "statedir.h"

static volatile sig_atomic_t stop_requested;

static void note_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Until the event loop runs, a stop signal only sets a flag that the
 * setup steps check, so an early `stop` or a dying `run` still cleans up. */
static void catch_stop_signals(void)
{
    dl_on_stop_signals(note_stop);
}

#define CHECK_STOP()                                                   \
    do {                                                               \
        if (stop_requested) {                                          \
            snprintf(err, sizeof err, "stopped by a signal during startup"); \
            goto fail;                                                 \
        }                                                              \
    } while (0)

typedef struct server {
    const dl_config *cfg;
    char dir[512];
    int created_dir; /* by this process: removed as a whole */
    int lock_fd;     /* holds the directory's lock; -1 before we have it */
    int made;        /* DL_MADE_* */
    int names_ours;  /* no one else's files carry our state names */
    char keys[600];
    char log[600];
    dl_cluster cluster;
    struct event_base *base;
    dl_gateway *gw;
    dl_regions regions;
    dl_config *run_cfg;  /* the primary gateway's */
    int restart_pending; /* `dsql-local restart`: done when the loop breaks */
} server;

static void report(int fd, const char *text)
{
    size_t off = 0, len = strlen(text);
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* The directory: the one given (made now, or an existing one that passes
 * dl_state_dir_check), else a new one under $TMPDIR. */
static int make_state_dir(server *s, char *err, size_t cap)
{
    const char *tmp = getenv("TMPDIR"), *dir = s->cfg->state_dir;
    char tmpl[512];

    if (!dir) {
        snprintf(tmpl, sizeof tmpl, "%s/dsql-local.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl)) {
            snprintf(err, cap, "cannot create a directory in %s: %s",
                     tmp && *tmp ? tmp : "/tmp", strerror(errno));
            return -1;
        }
        dir = tmpl;
        s->created_dir = 1;
    }
    /* exported paths (PGSSLROOTCERT) must work from any directory */
    if (dl_state_dir_resolve(dir, s->dir, sizeof s->dir, err, cap) != 0) {
        if (s->created_dir)
            rmdir(tmpl);
        s->created_dir = 0;
        return -1;
    }
    if (!s->created_dir) {
        if (mkdir(s->dir, 0700) == 0) {
            s->created_dir = 1;
        } else if (errno != EEXIST) {
            snprintf(err, cap, "cannot create %s: %s", s->dir, strerror(errno));
            return -1;
        }
    }
    if (dl_state_dir_check(s->dir, err, cap) != 0)
        return -1;
    /* the server user must be able to reach <dir>/pg */
    if (getuid() == 0 && chmod(s->dir, 0711) != 0) {
        snprintf(err, cap, "cannot chmod %s", s->dir);
        return -1;
    }
    return 0;
}

/* Takes the directory's lock, removes what a killed server left and
 * refuses state names someone else made: from then on every such name in
 * the directory is ours. */
static int take_state_dir(server *s, char *err, size_t cap)
{
    const char *clash;
    int left;

    s->lock_fd = dl_state_lock(s->dir, &left);
    if (s->lock_fd < 0) {
        if (errno != EAGAIN)
            snprintf(err, cap, "cannot lock %s/%s: %s", s->dir, DL_LOCK_NAME, strerror(errno));
        else if (snprintf(err, cap, "already running in %s (dsql-local stop --state-dir %s)",
                          s->dir, s->dir) >= (int)cap)
            snprintf(err, cap, "already running in %s", s->dir);
        return -1;
    }
    s->made = (s->created_dir ? DL_MADE_DIR : 0) | (s->cfg->keys_file ? 0 : DL_MADE_KEYS) |
              (s->cfg->log_file ? 0 : DL_MADE_LOG);
    if (left >= 0) { /* a killed server's */
        dl_state_remove(s->dir, left, 0);
        s->made |= left & DL_MADE_DIR;
    }
    if (dl_state_record(s->lock_fd, s->made) != 0) {
        snprintf(err, cap, "cannot write %s/%s: %s", s->dir, DL_LOCK_NAME, strerror(errno));
        return -1;
    }
    clash = dl_state_find_existing(s->dir, s->made);
    if (clash) {
        if (snprintf(err, cap, "%s/%s exists and no dsql-local server left it: refusing "
                     "it (remove it or choose another state directory)", s->dir, clash) >= (int)cap)
            snprintf(err, cap, "a file named %s exists in the state directory", clash);
        return -1;
    }
    s->names_ours = 1;
    return 0;
}

static void cleanup(server *s)
{
    dl_cluster_stop(&s->cluster);
    if (s->created_dir && s->lock_fd >= 0) {
        dl_rmtree(s->dir);
        return;
    }
    if (s->lock_fd < 0) { /* made nothing, unless the (empty) directory */
        if (s->created_dir)
            rmdir(s->dir);
        return;
    }
    if (s->names_ours) {
        dl_state_remove(s->dir, s->made, 1);
    } else { /* only the lock file is ours */
        char path[700];
        snprintf(path, sizeof path, "%s/%s", s->dir, DL_LOCK_NAME);
        unlink(path);
    }
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    server *s = arg;
    (void)what;
    dl_log("signal %d: stopping", (int)sig);
    stop_requested = 1; /* also when it lands in a restart's own pass of the loop */
    event_base_loopbreak(s->base);
}

/* `dsql-local set`: a request file, then SIGUSR1 (control.c). */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    server *s = arg;
    dl_faults *f = dl_gateway_faults(s->gw);
    char err[300];
    int restart = 0;

    (void)sig;
    (void)what;
    if (dl_apply_request(s->dir, f, &restart, err, sizeof err) != 0) {
        dl_log("set: %s", err);
        return;
    }
    if (restart) { /* outside the loop: freeing a gateway runs the loop once */
        s->restart_pending = 1;
        event_base_loopbreak(s->base);
        return;
    }
    dl_regions_set_faults(&s->regions, f);
    dl_log("faults now: conflict-rate %g, drop-after-commit %g, refuse-connections %g, "
           "latency %d ms", f->conflict_rate, f->drop_after_commit, f->refuse_rate, f->latency_ms);
}

/* `dsql-local restart`: every gateway closes (and with it every client
 * connection, so PostgreSQL rolls back what was open) and listens again on
 * its port with the same keys, certificates and faults. The database and
 * PostgreSQL stay, as a DSQL cluster's data outlives its endpoint's
 * connections. 0, or -1 when a gateway could not listen again. */
static int restart_gateways(server *s, const char *sockdir, char *err, size_t cap)
{
    dl_faults faults = *dl_gateway_faults(s->gw);

    s->run_cfg->port = dl_gateway_port(s->gw);
    if (dl_regions_restart(&s->regions, s->base, s->dir, s->keys, sockdir, err, cap) != 0)
        return -1;
    dl_gateway_free(s->gw);
    s->gw = dl_gateway_new(s->base, s->run_cfg, s->dir, s->keys, sockdir, err, cap);
    if (!s->gw)
        return -1;
    *dl_gateway_faults(s->gw) = faults;
    dl_regions_set_faults(&s->regions, &faults);
    dl_log("gateways restarted: 127.0.0.1:%d again", dl_gateway_port(s->gw));
    return 0;
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    server *s = arg;
    int status;
    pid_t pid;

    (void)sig;
    (void)what;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == s->cluster.pid) {
            dl_log("PostgreSQL exited (status %d); logins will fail", status);
            s->cluster.pid = -1;
        }
    }
}

/* Appends "export NAME='value'\n"; values here never hold a quote. */
static void add_export(char *buf, size_t cap, const char *name, const char *value)
{
    size_t off = strlen(buf);
    snprintf(buf + off, cap - off, "export %s='%s'\n", name, value);
}

static void build_report(server *s, const char *const *hosts, const char *region,
                         int port, const dl_key *key, char *buf, size_t cap)
{
    char num[16], path[600];

    snprintf(buf, cap, "OK\n");
    add_export(buf, cap, "PGHOST", hosts[0]);
    add_export(buf, cap, "PGHOSTADDR", "127.0.0.1");
    snprintf(num, sizeof num, "%d", port);
    add_export(buf, cap, "PGPORT", num);
    add_export(buf, cap, "PGSSLMODE", "verify-full");
    snprintf(path, sizeof path, "%s/ca.pem", s->dir);
    add_export(buf, cap, "PGSSLROOTCERT", path);
    add_export(buf, cap, "PGUSER", "admin");
    add_export(buf, cap, "PGDATABASE", "postgres");
    add_export(buf, cap, "AWS_REGION", region);
    add_export(buf, cap, "AWS_ACCESS_KEY_ID", key->akid);
    add_export(buf, cap, "AWS_SECRET_ACCESS_KEY", key->secret);
    if (key->session[0])
        add_export(buf, cap, "AWS_SESSION_TOKEN", key->session);
    else
        snprintf(buf + strlen(buf), cap - strlen(buf), "unset AWS_SESSION_TOKEN\n");
    add_export(buf, cap, "DSQL_LOCAL_STATE_DIR", s->dir);
    snprintf(buf + strlen(buf), cap - strlen(buf), "END\n");
}

/* Descriptors the server inherited from whoever started it (a shell's, a
 * CI runner's pipe) would stay open, in it and in its PostgreSQL, for as
 * long as it runs: a reader waiting for a pipe's end would wait for the
 * server to stop. Only stdio and keep stay. */
static void close_inherited(int keep)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (!d)
        return; /* no /proc: nothing to go by */
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != keep && fd != dirfd(d))
            close(fd);
    }
    closedir(d);
}

static void quiet_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

int dl_server_main(const dl_config *cfg, int report_fd)
{
    static char text[16384];
    server s;
    char err[700], idbuf[32], hostbuf[300], regbuf[DSQL_REGION_MAX + 1], sockdir[600];
    const char *hosts[DL_MAX_HOSTS];
    const char *region;
    dl_config run_cfg = *cfg;
    dl_gateway *gw = NULL;
    struct event *sigs[5] = {0};
    dl_key key;
    int i, n;

    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.cluster.pid = -1;
    s.lock_fd = -1;
    catch_stop_signals();
    signal(SIGUSR1, SIG_IGN); /* a `set` before the loop runs must not kill us */
    quiet_stdio();
    close_inherited(report_fd);
    signal(SIGPIPE, SIG_IGN);
    if (make_state_dir(&s, err, sizeof err) != 0 || take_state_dir(&s, err, sizeof err) != 0)
        goto fail;
    if (cfg->log_file) {
        snprintf(s.log, sizeof s.log, "%s", cfg->log_file);
    } else {
        int fd;
        snprintf(s.log, sizeof s.log, "%s/%s", s.dir, DL_LOG_NAME);
        fd = dl_state_create(s.log, 0600);
        if (fd < 0) {
            snprintf(err, sizeof err, "cannot create %s: %s", s.log, strerror(errno));
            goto fail;
        }
        close(fd);
    }
    dl_log_open(s.log);

    /* names and region */
    for (i = 0; i < cfg->nhosts; i++)
        hosts[i] = cfg->hosts[i];
    n = cfg->nhosts;
    if (n == 0) {
        dl_random_string(idbuf, 26, "abcdefghijklmnopqrstuvwxyz0123456789");
        snprintf(hostbuf, sizeof hostbuf, "%s.dsql.%s.on.aws", idbuf,
                 cfg->region ? cfg->region : "us-east-1");
        hosts[n++] = hostbuf;
    }
    if (cfg->region)
        region = cfg->region;
    else if (dsql_region_from_hostname(hosts[0], regbuf, sizeof regbuf, NULL) == DSQL_OK)
        region = regbuf;
    else
        region = "us-east-1";
    for (i = 0; i < n; i++)
        run_cfg.hosts[i] = hosts[i];
    run_cfg.nhosts = n;
    run_cfg.region = region;
    /* other regions' names go into the certificate too */
    if (dl_regions_names(&s.regions, cfg, hosts, &n, err, sizeof err) != 0)
        goto fail;

    /* keys */
    if (cfg->keys_file) {
        snprintf(s.keys, sizeof s.keys, "%s", cfg->keys_file);
        if (dl_keys_first(s.keys, &key) != 1) {
            snprintf(err, sizeof err, "no key in %s (ACCESS_KEY_ID SECRET [SESSION_TOKEN] a line)", s.keys);
            goto fail;
        }
    } else {
        snprintf(s.keys, sizeof s.keys, "%s/%s", s.dir, DL_KEYS_NAME);
        if (dl_keys_generate(s.keys, cfg->temporary, &key) != 0) {
            snprintf(err, sizeof err, "cannot create %s: %s", s.keys, strerror(errno));
            goto fail;
        }
    }
    CHECK_STOP();
    if (dl_certs_make(s.dir, hosts, n, err, sizeof err) != 0)
        goto fail;
    /* listen first, so a busy --port fails before initdb; nobody knows
     * the port until we report, and PostgreSQL is up by then */
    s.base = event_base_new();
    if (!s.base) {
        snprintf(err, sizeof err, "cannot create the event loop");
        goto fail;
    }
    if (snprintf(sockdir, sizeof sockdir, "%s/pg", s.dir) >= (int)sizeof sockdir) {
        snprintf(err, sizeof err, "state directory path too long");
        goto fail;
    }
    gw = dl_gateway_new(s.base, &run_cfg, s.dir, s.keys, sockdir, err, sizeof err);
    if (!gw)
        goto fail;
    s.gw = gw;
    if (dl_regions_start(&s.regions, s.base, &run_cfg, s.dir, s.keys, sockdir, err,
                         sizeof err) != 0)
        goto fail;
    if (dl_cluster_start(&s.cluster, s.dir, !cfg->postgres_compat, err, sizeof err) != 0)
        goto fail;
    CHECK_STOP();
    sigs[0] = evsignal_new(s.base, SIGTERM, on_stop_signal, &s);
    sigs[1] = evsignal_new(s.base, SIGINT, on_stop_signal, &s);
    sigs[2] = evsignal_new(s.base, SIGHUP, on_stop_signal, &s);
    sigs[3] = evsignal_new(s.base, SIGCHLD, on_sigchld, &s);
    sigs[4] = evsignal_new(s.base, SIGUSR1, on_sigusr1, &s);
    for (i = 0; i < 5; i++)
        if (sigs[i])
            evsignal_add(sigs[i], NULL);
    CHECK_STOP(); /* a signal before evsignal_add only set the flag */
    {
        char pidpath[600], pidtext[32];
        /* for people and scripts; `stop` trusts only the lock */
        snprintf(pidpath, sizeof pidpath, "%s/%s", s.dir, DL_PID_NAME);
        snprintf(pidtext, sizeof pidtext, "%ld\n", (long)getpid());
        if (dl_write_file(pidpath, pidtext, strlen(pidtext), 0644) != 0) {
            snprintf(err, sizeof err, "cannot write %s", pidpath);
            goto fail;
        }
    }
    dl_log("serving %s (%s) on 127.0.0.1:%d, max connection duration %d s",
           hosts[0], region, dl_gateway_port(gw), cfg->max_conn_seconds);
    build_report(&s, hosts, region, dl_gateway_port(gw), &key, text, sizeof text);
    *strstr(text, "END\n") = '\0';
    dl_regions_report(&s.regions, gw, hosts[0], text, sizeof text - 8);
    strcat(text, "END\n");
    OPENSSL_cleanse(&key, sizeof key);
    report(report_fd, text);
    OPENSSL_cleanse(text, sizeof text);
    close(report_fd);

    s.run_cfg = &run_cfg;
    for (;;) {
        event_base_dispatch(s.base);
        if (!s.restart_pending || stop_requested)
            break;
        s.restart_pending = 0;
        if (restart_gateways(&s, sockdir, err, sizeof err) != 0) {
            dl_log("restart failed, stopping: %s", err);
            dl_request_done(s.dir);
            break;
        }
        dl_request_done(s.dir); /* the answer `restart` waits for */
    }

    dl_regions_free(&s.regions);
    dl_gateway_free(s.gw);
    for (i = 0; i < 5; i++)
        if (sigs[i])
            event_free(sigs[i]);
    event_base_free(s.base);
    cleanup(&s);
    return 0;

fail:
    dl_log("cannot start: %s", err);
    dl_regions_free(&s.regions);
    dl_gateway_free(gw);
    for (i = 0; i < 5; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (s.base)
        event_base_free(s.base);
    cleanup(&s);
    OPENSSL_cleanse(&key, sizeof key);
    snprintf(text, sizeof text, "ERR %s\n", err);
    report(report_fd, text);
    close(report_fd);
    return 1;
}
