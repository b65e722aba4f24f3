/* dsql-local: a throwaway PostgreSQL 15 cluster under <state>/pg, Unix
 * socket only, trust auth, REPEATABLE READ by default. When we run as root
 * the server runs as the unprivileged "postgres" (or "nobody") user. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "statedir.h"

#ifndef DL_PG_BINDIR
#define DL_PG_BINDIR "/usr/lib/postgresql/15/bin"
#endif

/* DSQL_LOCAL_PG_BINDIR, else PostgreSQL 15 (what DSQL speaks), else the
 * newest Debian-style /usr/lib/postgresql/N/bin with an initdb. */
static const char *pg_bindir(void)
{
    static char found[64];
    const char *d = getenv("DSQL_LOCAL_PG_BINDIR");
    char path[128];
    int v;

    if (d && *d)
        return d;
    snprintf(path, sizeof path, "%s/initdb", DL_PG_BINDIR);
    if (access(path, X_OK) == 0)
        return DL_PG_BINDIR;
    for (v = 20; v >= 12; v--) {
        snprintf(found, sizeof found, "/usr/lib/postgresql/%d/bin", v);
        snprintf(path, sizeof path, "%s/initdb", found);
        if (access(path, X_OK) == 0)
            return found;
    }
    return DL_PG_BINDIR;
}

/* uid/gid the server runs as: ourselves unless we are root. */
static int server_ids(uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    *uid = getuid();
    *gid = getgid();
    if (*uid != 0)
        return 0;
    pw = getpwnam("postgres");
    if (!pw)
        pw = getpwnam("nobody");
    if (!pw)
        return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* Child side of spawn: drop privileges, stdin from infd (-1: /dev/null),
 * stdout and stderr to logfd, exec. */
static void exec_as(char *const argv[], uid_t uid, gid_t gid, int infd, int logfd,
                    int die_with_parent)
{
    int nullfd = infd >= 0 ? infd : open("/dev/null", O_RDONLY);

    if (nullfd >= 0)
        dup2(nullfd, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    setsid();
    if (getuid() == 0) {
        if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
            _exit(126);
    }
    /* after setuid: a credential change clears the parent-death signal */
    if (die_with_parent)
        prctl(PR_SET_PDEATHSIG, SIGQUIT);
    execv(argv[0], argv);
    _exit(127);
}

static pid_t spawn(char *const argv[], uid_t uid, gid_t gid, int infd, int logfd,
                   int die_with_parent)
{
    pid_t pid = fork();
    if (pid == 0)
        exec_as(argv, uid, gid, infd, logfd, die_with_parent);
    return pid;
}

static int wait_ok(pid_t pid)
{
    int status;

    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ; /* a stop signal: let the child finish, the caller then cleans up */
    return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* DSQL's SQL rules (rules_sql.c), installed in single-user mode before the
 * server starts: no client can connect before they are in place. */
static int install_rules(const char *data_dir, uid_t uid, gid_t gid, int logfd)
{
    char bin[600];
    char *argv[] = {bin, "--single", "-j", "-D", (char *)data_dir, "postgres", NULL};
    size_t off = 0, len = strlen(dl_rules_sql);
    int p[2];
    pid_t pid;

    snprintf(bin, sizeof bin, "%s/postgres", pg_bindir());
    if (pipe(p) != 0)
        return -1;
    /* only the child's stdin may hold the read end, and nobody else the write end */
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    pid = spawn(argv, uid, gid, p[0], logfd, 1);
    close(p[0]);
    while (pid > 0 && off < len) { /* the script fits a pipe; a dead child: EPIPE */
        ssize_t n = write(p[1], dl_rules_sql + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(p[1]);
    return wait_ok(pid) == 0 && off == len ? 0 : -1;
}

static int append_conf(const char *path, const char *sock_dir, int dsql_rules)
{
    FILE *fp = fopen(path, "a");
    if (!fp)
        return -1;
    fprintf(fp,
            "\n# dsql-local\n"
            "listen_addresses = ''\n"
            "port = 5432\n"
            "unix_socket_directories = '%s'\n"
            "unix_socket_permissions = 0700\n"
            "default_transaction_isolation = 'repeatable read'\n"
            "max_connections = %d\n"
            "shared_buffers = 32MB\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "logging_collector = off\n"
            "log_min_messages = warning\n",
            sock_dir, DL_PG_MAX_CONNECTIONS);
    if (dsql_rules) /* writers do not wait on each other ("Concurrency control in Aurora DSQL") */
        fprintf(fp, "lock_timeout = '%dms'\n", DL_LOCK_TIMEOUT_MS);
    return fclose(fp);
}

/* The postmaster writes "ready" on line 8 of postmaster.pid when it
 * accepts connections. */
static int server_ready(const char *data_dir)
{
    char path[700], line[128];
    FILE *fp;
    int n = 0, ready = 0;

    if (snprintf(path, sizeof path, "%s/postmaster.pid", data_dir) >= (int)sizeof path)
        return 0;
    fp = fopen(path, "r");
    if (!fp)
        return 0;
    while (fgets(line, sizeof line, fp))
        if (++n == 8 && strncmp(line, "ready", 5) == 0)
            ready = 1;
    fclose(fp);
    return ready;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int dl_cluster_start(dl_cluster *c, const char *state_dir, int dsql_rules, char *err,
                     size_t errcap)
{
    char data_dir[600], conf[640], logpath[600], bin[600];
    uid_t uid;
    gid_t gid;
    int logfd, status, i;
    pid_t pid;

    memset(c, 0, sizeof *c);
    c->pid = -1;
    if (server_ids(&uid, &gid) != 0) {
        snprintf(err, errcap, "no unprivileged user (postgres, nobody) to run PostgreSQL as");
        return -1;
    }
    snprintf(c->dir, sizeof c->dir, "%s/pg", state_dir);
    snprintf(c->sock_dir, sizeof c->sock_dir, "%s/pg", state_dir);
    snprintf(data_dir, sizeof data_dir, "%s/data", c->dir);
    snprintf(logpath, sizeof logpath, "%s/postgres.log", state_dir);
    if (mkdir(c->dir, 0700) != 0 || (getuid() == 0 && chown(c->dir, uid, gid) != 0)) {
        snprintf(err, errcap, "cannot create %s: %s", c->dir, strerror(errno));
        return -1;
    }
    logfd = dl_state_create(logpath, 0600); /* new: never through a planted link */
    if (logfd < 0 || (getuid() == 0 && fchown(logfd, uid, gid) != 0)) {
        snprintf(err, errcap, "cannot create %s", logpath);
        if (logfd >= 0)
            close(logfd);
        return -1;
    }
    snprintf(bin, sizeof bin, "%s/initdb", pg_bindir());
    {
        char *argv[] = {bin, "-D", data_dir, "-U", "admin", "-A", "trust",
                        "-E", "UTF8", "--no-sync", "--no-instructions",
                        "--locale=C", NULL};
        pid = spawn(argv, uid, gid, -1, logfd, 1);
    }
    if (wait_ok(pid) != 0) {
        snprintf(err, errcap, "initdb failed (see %s)", logpath);
        close(logfd);
        return -1;
    }
    snprintf(conf, sizeof conf, "%s/postgresql.conf", data_dir);
    if (append_conf(conf, c->sock_dir, dsql_rules) != 0) {
        snprintf(err, errcap, "cannot write %s", conf);
        close(logfd);
        return -1;
    }
    if (dsql_rules && install_rules(data_dir, uid, gid, logfd) != 0) {
        snprintf(err, errcap, "cannot install DSQL's SQL rules (see %s)", logpath);
        close(logfd);
        return -1;
    }
    snprintf(bin, sizeof bin, "%s/postgres", pg_bindir());
    {
        char *argv[] = {bin, "-D", data_dir, "-p", "5432", NULL};
        c->pid = spawn(argv, uid, gid, -1, logfd, 1);
    }
    close(logfd);
    if (c->pid < 0) {
        snprintf(err, errcap, "cannot start postgres");
        return -1;
    }
    for (i = 0; i < 600; i++) { /* 30 s */
        if (server_ready(data_dir))
            return 0;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = -1;
            snprintf(err, errcap, "postgres exited during startup (see %s)", logpath);
            return -1;
        }
        sleep_ms(50);
    }
    snprintf(err, errcap, "postgres did not become ready (see %s)", logpath);
    dl_cluster_stop(c);
    return -1;
}

void dl_cluster_stop(dl_cluster *c)
{
    int i, status;

    if (c->pid <= 0)
        return;
    /* immediate shutdown: the cluster is thrown away anyway */
    kill(c->pid, SIGQUIT);
    for (i = 0; i < 200; i++) {
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = -1;
            return;
        }
        sleep_ms(50);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &status, 0);
    c->pid = -1;
}
