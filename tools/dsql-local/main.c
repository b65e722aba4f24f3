/* dsql-local: command line. `start` runs the stand-in as a daemon and
 * prints the environment a client needs, `stop` ends it, `run -- CMD`
 * wraps one command with a private instance. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define DL_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DL_LEAK_CHECK 1
#endif
#endif
#ifdef DL_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

#include "dsqlauth.h"
#include "local.h"
#include "control.h"
#include "server.h"
#include "statedir.h"

static void usage(FILE *fp)
{
    fputs("usage: dsql-local start [options]\n"
          "       dsql-local stop [--state-dir DIR]\n"
          "       dsql-local set FAULT VALUE [--state-dir DIR]   (FAULT: conflict-rate,\n"
          "                  drop-after-commit, refuse-connections, latency)\n"
          "       dsql-local restart [--state-dir DIR]   (every connection cut; the same\n"
          "                  port, keys, certificates and database again)\n"
          "       dsql-local run [options] -- COMMAND [ARGS...]\n"
          "\n"
          "A local Aurora DSQL stand-in: a throwaway PostgreSQL behind a TLS gateway\n"
          "on 127.0.0.1 that accepts only valid IAM authentication tokens.\n"
          "\n"
          "  --hostname NAME            cluster name (repeat for extra names; default\n"
          "                             <26 chars>.dsql.<region>.on.aws)\n"
          "  --region REGION            region of the default name (us-east-1)\n"
          "  --port N                   gateway port on 127.0.0.1 (0: a free one)\n"
          "  --max-connection-duration SECONDS   default 3600\n"
          "  --auth-timeout SECONDS     time to finish TLS and login (default 30)\n"
          "  --clock-skew SECONDS       allowed X-Amz-Date skew (default 300)\n"
          "  --max-preauth N            connections that may wait to log in; more\n"
          "                             close the oldest idle one (default: half\n"
          "                             the descriptor limit)\n"
          "  --regions R1,R2            one front door per region over the same database\n"
          "                             (exports DSQL_LOCAL_HOSTS, DSQL_LOCAL_PORTS)\n"
          "  --max-connections N        logged-in sessions at once (default: what\n"
          "                             PostgreSQL and the descriptor limit allow)\n"
          "  --connection-rate N[/s]    new sessions a second (default: no limit)\n"
          "  --burst N                  sessions above the rate at once (default 10 x rate)\n"
          "  --max-transaction-duration SECONDS   default 300\n"
          "  --conflict-rate P          write commits fail with OC000 at rate P (0..1)\n"
          "  --drop-after-commit P      write commits applied, then the connection cut\n"
          "  --refuse-connections P     logins refused (53400) at rate P\n"
          "  --latency MS               added to each client round trip\n"
          "  --keys FILE                key table: ACCESS_KEY_ID SECRET [SESSION_TOKEN]\n"
          "                             a line (default: one generated key)\n"
          "  --temporary-credentials    generate a key with a session token\n"
          "  --postgres-compat          plain PostgreSQL: DSQL's SQL rules off (temporary\n"
          "                             tables, triggers, sequences, SAVEPOINT, ...)\n"
          "  --state-dir DIR            where state lives (start/stop default\n"
          "                             $TMPDIR/dsql-local-<uid>; run: a new temp dir);\n"
          "                             an existing one must be yours and private\n"
          "  --log FILE                 gateway log (default DIR/dsql-local.log)\n"
          "  --help, --version\n",
          fp);
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "dsql-local: %s '%s' is not a number in %d..%d\n", opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* "N" or "N/s": new sessions a second. */
static int parse_rate(const char *opt, const char *s, double *out)
{
    char num[32];
    size_t n = strcspn(s, "/");
    int v;

    if (n >= sizeof num || (s[n] && strcmp(s + n, "/s") != 0)) {
        fprintf(stderr, "dsql-local: %s '%s' is not a rate (N or N/s)\n", opt, s);
        return -1;
    }
    memcpy(num, s, n);
    num[n] = '\0';
    if (parse_int(opt, num, 1, 1000000, &v) != 0)
        return -1;
    *out = v;
    return 0;
}

static int valid_hostname(const char *h);

/* "us-east-1,us-east-2": one front door per region (the first is PGHOST). */
static int parse_regions(const char *v, dl_config *cfg)
{
    static char buf[256];
    char *save = NULL, *r;

    if (strlen(v) >= sizeof buf) {
        fprintf(stderr, "dsql-local: --regions '%s' is too long\n", v);
        return -1;
    }
    strcpy(buf, v);
    cfg->nregions = 0;
    for (r = strtok_r(buf, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
        if (!valid_hostname(r) || strchr(r, '.') || cfg->nregions == DL_MAX_REGIONS) {
            fprintf(stderr, "dsql-local: --regions '%s': at most %d region names, "
                    "comma-separated\n", v, DL_MAX_REGIONS);
            return -1;
        }
        cfg->regions[cfg->nregions++] = r;
    }
    if (cfg->nregions == 0) {
        fprintf(stderr, "dsql-local: --regions '%s' names no region\n", v);
        return -1;
    }
    if (!cfg->region)
        cfg->region = cfg->regions[0];
    return 0;
}

static int valid_hostname(const char *h)
{
    size_t n = strlen(h), i;
    if (n == 0 || n > DSQL_HOSTNAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

/* Returns the index of the first non-option argument, or -1 on error. */
static int parse_options(int argc, char **argv, int i, dl_config *cfg)
{
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0)
            return i + 1;
        if (strcmp(a, "--temporary-credentials") == 0) {
            cfg->temporary = 1;
            continue;
        }
        if (strcmp(a, "--postgres-compat") == 0) {
            cfg->postgres_compat = 1;
            continue;
        }
        if (a[0] != '-')
            return i;
        if (!v) {
            fprintf(stderr, "dsql-local: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--hostname") == 0) {
            if (!valid_hostname(v)) {
                fprintf(stderr, "dsql-local: --hostname '%s' is not a valid host name\n", v);
                return -1;
            }
            if (cfg->nhosts == DL_MAX_HOSTS) {
                fprintf(stderr, "dsql-local: at most %d --hostname\n", DL_MAX_HOSTS);
                return -1;
            }
            cfg->hosts[cfg->nhosts++] = v;
        } else if (strcmp(a, "--region") == 0) {
            if (!valid_hostname(v)) {
                fprintf(stderr, "dsql-local: --region '%s' is not valid\n", v);
                return -1;
            }
            cfg->region = v;
        } else if (strcmp(a, "--port") == 0) {
            if (parse_int(a, v, 0, 65535, &cfg->port) != 0)
                return -1;
        } else if (strcmp(a, "--max-connection-duration") == 0) {
            if (parse_int(a, v, 1, 7 * 86400, &cfg->max_conn_seconds) != 0)
                return -1;
        } else if (strcmp(a, "--auth-timeout") == 0) {
            if (parse_int(a, v, 1, 3600, &cfg->auth_timeout) != 0)
                return -1;
        } else if (strcmp(a, "--clock-skew") == 0) {
            if (parse_int(a, v, 0, 86400, &cfg->clock_skew) != 0)
                return -1;
        } else if (strcmp(a, "--max-preauth") == 0) {
            if (parse_int(a, v, 1, 1000000, &cfg->max_preauth) != 0)
                return -1;
        } else if (strcmp(a, "--max-connections") == 0) {
            if (parse_int(a, v, 1, 1000000, &cfg->max_connections) != 0)
                return -1;
        } else if (strcmp(a, "--connection-rate") == 0) {
            if (parse_rate(a, v, &cfg->conn_rate) != 0)
                return -1;
        } else if (strcmp(a, "--burst") == 0) {
            int b;
            if (parse_int(a, v, 1, 1000000, &b) != 0)
                return -1;
            cfg->conn_burst = b;
        } else if (strcmp(a, "--max-transaction-duration") == 0) {
            if (parse_int(a, v, 1, 86400, &cfg->max_txn_seconds) != 0)
                return -1;
        } else if (strcmp(a, "--conflict-rate") == 0 || strcmp(a, "--drop-after-commit") == 0 ||
                   strcmp(a, "--refuse-connections") == 0 || strcmp(a, "--latency") == 0) {
            char ferr[160];
            if (dl_faults_set(&cfg->faults, a + 2, v, ferr, sizeof ferr) != 0) {
                fprintf(stderr, "dsql-local: --%s\n", ferr);
                return -1;
            }
        } else if (strcmp(a, "--regions") == 0) {
            if (parse_regions(v, cfg) != 0)
                return -1;
        } else if (strcmp(a, "--keys") == 0) {
            cfg->keys_file = v;
        } else if (strcmp(a, "--state-dir") == 0) {
            cfg->state_dir = v;
        } else if (strcmp(a, "--log") == 0) {
            cfg->log_file = v;
        } else {
            fprintf(stderr, "dsql-local: unknown option '%s'\n", a);
            return -1;
        }
    }
    return i;
}

static void default_state_dir(char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, cap, "%s/dsql-local-%ld", tmp && *tmp ? tmp : "/tmp", (long)getuid());
}

/* Reads the server's report: "OK\n<env lines>END\n" or "ERR msg\n". */
static int read_report(int fd, char *buf, size_t cap)
{
    size_t have = 0;

    while (have + 1 < cap) {
        ssize_t n = read(fd, buf + have, cap - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "END\n") || (strncmp(buf, "ERR", 3) == 0 && strchr(buf, '\n')))
            break;
    }
    buf[have] = '\0';
    if (strncmp(buf, "OK\n", 3) == 0 && strstr(buf, "END\n"))
        return 0;
    if (strncmp(buf, "ERR ", 4) == 0)
        fprintf(stderr, "dsql-local: %s", buf + 4);
    else
        fprintf(stderr, "dsql-local: the server did not start (see its log)\n");
    return -1;
}

/* The server child leaves with _exit (the parent's stdio buffers and
 * atexit handlers are not its own), which skips LeakSanitizer's check at
 * exit: under ASan it is run here, so the daemon's leaks are reported too. */
static void server_exit(int status)
{
#ifdef DL_LEAK_CHECK
    __lsan_do_leak_check();
#endif
    _exit(status);
}

/* Forks the server. The child never returns. */
static pid_t spawn_server(const dl_config *cfg, int die_with_parent, int *report_fd)
{
    int p[2];
    pid_t pid;

    if (pipe(p) != 0)
        return -1;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        setsid();
        if (die_with_parent)
            prctl(PR_SET_PDEATHSIG, SIGTERM);
        server_exit(dl_server_main(cfg, p[1]));
    }
    close(p[1]);
    *report_fd = p[0];
    return pid;
}

/* Forks the server and reads its report into buf: the server's pid, or -1
 * when it did not start (said on stderr). */
static pid_t start_server(const dl_config *cfg, int die_with_parent, char *buf, size_t cap)
{
    int fd, rc;
    pid_t pid;

    pid = spawn_server(cfg, die_with_parent, &fd);
    if (pid < 0) {
        fprintf(stderr, "dsql-local: cannot fork: %s\n", strerror(errno));
        return -1;
    }
    rc = read_report(fd, buf, cap);
    close(fd);
    if (rc != 0) {
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static int cmd_start(dl_config *cfg)
{
    char dir[512], report[16384];

    if (!cfg->state_dir) {
        default_state_dir(dir, sizeof dir);
        cfg->state_dir = dir;
    }
    if (start_server(cfg, 0, report, sizeof report) < 0)
        return 1;
    *strstr(report, "END\n") = '\0';
    fputs(strchr(report, '\n') + 1, stdout);
    return 0;
}

static const char *state_dir_for(const dl_config *cfg, char *buf, size_t cap)
{
    const char *env = getenv("DSQL_LOCAL_STATE_DIR");

    if (cfg->state_dir)
        return cfg->state_dir;
    if (env && *env)
        return env;
    default_state_dir(buf, cap);
    return buf;
}

/* dsql-local set FAULT VALUE [--state-dir DIR] */
static int cmd_set(int argc, char **argv)
{
    dl_config cfg;
    char dir[512];

    memset(&cfg, 0, sizeof cfg);
    if (argc < 4 || argv[2][0] == '-' || parse_options(argc, argv, 4, &cfg) != argc) {
        fprintf(stderr, "dsql-local: usage: dsql-local set FAULT VALUE [--state-dir DIR]\n");
        return 2;
    }
    return dl_set(state_dir_for(&cfg, dir, sizeof dir), argv[2], argv[3]);
}

/* dsql-local restart [--state-dir DIR] */
static int cmd_restart(int argc, char **argv)
{
    dl_config cfg;
    char dir[512];

    memset(&cfg, 0, sizeof cfg);
    if (parse_options(argc, argv, 2, &cfg) != argc) {
        fprintf(stderr, "dsql-local: usage: dsql-local restart [--state-dir DIR]\n");
        return 2;
    }
    return dl_restart(state_dir_for(&cfg, dir, sizeof dir));
}

static int cmd_stop(const dl_config *cfg)
{
    char dir[512];
    const char *env = getenv("DSQL_LOCAL_STATE_DIR");

    if (cfg->state_dir)
        return dl_stop(cfg->state_dir);
    if (env && *env)
        return dl_stop(env);
    default_state_dir(dir, sizeof dir);
    return dl_stop(dir);
}

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/* Puts "export NAME='value'" and "unset NAME" lines into our environment. */
static void apply_env(char *lines)
{
    char *save = NULL, *line;

    for (line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "unset ", 6) == 0) {
            unsetenv(line + 6);
        } else if (strncmp(line, "export ", 7) == 0) {
            char *eq = strchr(line, '='), *val;
            size_t n;
            if (!eq)
                continue;
            *eq = '\0';
            val = eq + 1;
            n = strlen(val);
            if (n >= 2 && val[0] == '\'' && val[n - 1] == '\'') {
                val[n - 1] = '\0';
                val++;
            }
            setenv(line + 7, val, 1);
        }
    }
}

static int cmd_run(dl_config *cfg, char **cmd)
{
    char report[16384];
    int status = 0, rc;
    pid_t server, child, parent;

    server = start_server(cfg, 1, report, sizeof report);
    if (server < 0)
        return 125;
    apply_env(strchr(report, '\n') + 1);
    dl_on_stop_signals(forward_signal);
    parent = getpid();
    child = fork();
    if (child == 0) {
        /* if `run` itself is killed, the command goes too */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(125);
        dl_on_stop_signals(SIG_DFL);
        execvp(cmd[0], cmd);
        fprintf(stderr, "dsql-local: cannot run %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    if (child < 0) {
        fprintf(stderr, "dsql-local: cannot fork: %s\n", strerror(errno));
        rc = 125;
    } else {
        child_pid = child;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
        child_pid = 0;
        rc = WIFEXITED(status) ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
    }
    kill(server, SIGTERM);
    while (waitpid(server, NULL, 0) < 0 && errno == EINTR)
        ;
    return rc;
}

int main(int argc, char **argv)
{
    dl_config cfg;
    const char *verb;
    int i;

    memset(&cfg, 0, sizeof cfg);
    cfg.max_conn_seconds = 3600;
    cfg.auth_timeout = 30;
    cfg.clock_skew = 300;
    cfg.max_txn_seconds = 300;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(verb, "--version") == 0) {
        printf("dsql-local %s\n", dsql_version());
        return 0;
    }
    if (strcmp(verb, "set") == 0)
        return cmd_set(argc, argv);
    if (strcmp(verb, "restart") == 0)
        return cmd_restart(argc, argv);
    if (strcmp(verb, "start") != 0 && strcmp(verb, "stop") != 0 && strcmp(verb, "run") != 0) {
        fprintf(stderr, "dsql-local: unknown command '%s' (start, stop, restart, set or run)\n",
                verb);
        return 2;
    }
    i = parse_options(argc, argv, 2, &cfg);
    if (i < 0)
        return 2;
    if (cfg.conn_burst > 0 && cfg.conn_rate <= 0) {
        fprintf(stderr, "dsql-local: --burst needs --connection-rate\n");
        return 2;
    }
    if (cfg.conn_rate > 0 && cfg.conn_burst <= 0)
        cfg.conn_burst = 10 * cfg.conn_rate; /* DSQL: 100/s, bursts of 1,000 */
    if (strcmp(verb, "run") == 0) {
        if (i >= argc) {
            fprintf(stderr, "dsql-local: run needs a command after --\n");
            return 2;
        }
        return cmd_run(&cfg, argv + i);
    }
    if (i < argc) {
        fprintf(stderr, "dsql-local: unexpected argument '%s'\n", argv[i]);
        return 2;
    }
    return strcmp(verb, "start") == 0 ? cmd_start(&cfg) : cmd_stop(&cfg);
}
