/* credential_process: the command is split with shell-like quoting and run
 * directly (posix_spawnp, no shell), with stdin from /dev/null, a timeout,
 * and stdout parsed as the Version 1 JSON document the AWS CLI defines.
 *
 * The helper runs in a process group of its own, so that a timeout kills
 * it and everything it started (grandchildren stay in the group unless
 * they leave it). A helper in a background group would stop on SIGTTIN
 * when it prompts on /dev/tty (an MFA code), so when the caller's group is
 * the foreground group of its controlling terminal, the helper's group is
 * made the foreground group while it runs, and the caller's group is put
 * back afterwards, as a shell does for a job. Its stderr is kept out of
 * the default log level: the first bytes, escaped, at DSQL_LOG_DEBUG. */
#include "profile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "../strbuf.h"

extern char **environ;

#define MAX_STDOUT (4u << 20)
/* How much of the helper's stderr is kept for the log; the rest is
 * counted and dropped. */
#define STDERR_KEPT 1024
/* The escaped text has to fit in one log line (lib/log.c: 1024 bytes). */
#define STDERR_SHOWN_MAX 800

void dsql__argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        dsql__free_secret(*a);
    dsql__free(argv);
}

dsql_status dsql__split_command(const char *cmd, char ***out, dsql_error *err)
{
    *out = NULL;
    size_t cap = 8, n = 0;
    char **argv = dsql__calloc(cap, sizeof *argv);
    char *word = dsql__malloc(strlen(cmd) + 1);
    if (!argv || !word) {
        dsql__free(argv);
        dsql__free(word);
        return dsql__error(err, DSQL_ENOMEM, "out of memory splitting credential_process");
    }
    const char *p = cmd;
    dsql_status st = DSQL_OK;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        size_t wn = 0;
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            if (*p == '\'') {
                const char *q = strchr(p + 1, '\'');
                if (!q) {
                    st = dsql__error(err, DSQL_EINVAL,
                                     "credential_process: unbalanced single quote");
                    goto done;
                }
                memcpy(word + wn, p + 1, (size_t)(q - p - 1));
                wn += (size_t)(q - p - 1);
                p = q + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1] && strchr("\\\"$`", p[1]))
                        p++;
                    word[wn++] = *p++;
                }
                if (*p != '"') {
                    st = dsql__error(err, DSQL_EINVAL,
                                     "credential_process: unbalanced double quote");
                    goto done;
                }
                p++;
            } else if (*p == '\\' && p[1]) {
                word[wn++] = p[1];
                p += 2;
            } else {
                word[wn++] = *p++;
            }
        }
        if (n + 2 > cap) {
            char **na = dsql__realloc(argv, cap * 2 * sizeof *argv);
            if (!na) {
                st = dsql__error(err, DSQL_ENOMEM, "out of memory splitting credential_process");
                goto done;
            }
            argv = na;
            cap *= 2;
        }
        if (!(argv[n] = dsql__strndup(word, wn))) {
            st = dsql__error(err, DSQL_ENOMEM, "out of memory splitting credential_process");
            goto done;
        }
        argv[++n] = NULL;
    }
    if (n == 0)
        st = dsql__error(err, DSQL_EINVAL, "credential_process is empty");
done:
    OPENSSL_cleanse(word, strlen(cmd) + 1);
    dsql__free(word);
    if (st != DSQL_OK)
        dsql__argv_free(argv);
    else
        *out = argv;
    return st;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The helper's stderr: the first STDERR_KEPT bytes and the total. */
typedef struct stderr_capture {
    char kept[STDERR_KEPT];
    size_t n_kept, total;
} stderr_capture;

static void capture_stderr(stderr_capture *c, const char *buf, size_t n)
{
    size_t room = STDERR_KEPT - c->n_kept, take = n < room ? n : room;
    memcpy(c->kept + c->n_kept, buf, take);
    c->n_kept += take;
    c->total += n;
}

/* Replace `secret` in the capture with '*', also a prefix of it (8 bytes
 * or more) cut off at the end of what was kept. */
static void redact(stderr_capture *c, const char *secret)
{
    size_t sn = secret ? strlen(secret) : 0;
    if (sn < 4)
        return;
    for (size_t i = 0; i < c->n_kept; i++) {
        size_t left = c->n_kept - i, cmp = left < sn ? left : sn;
        if ((cmp == sn || cmp >= 8) && memcmp(c->kept + i, secret, cmp) == 0) {
            memset(c->kept + i, '*', cmp);
            i += cmp - 1;
        }
    }
}

/* Printable ASCII as is, everything else (newlines, escape sequences,
 * non-ASCII bytes) as \n, \t, \r, \\ or \xNN, so the helper cannot forge
 * log lines or drive a terminal. Returns how many input bytes fit. */
static size_t escape_for_log(char *out, size_t cap, const char *in, size_t n)
{
    size_t o = 0, i = 0;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        char tmp[5];
        size_t k;
        if (ch == '\n' || ch == '\t' || ch == '\r' || ch == '\\') {
            tmp[0] = '\\';
            tmp[1] = ch == '\n' ? 'n' : ch == '\t' ? 't' : ch == '\r' ? 'r' : '\\';
            k = 2;
        } else if (ch >= 0x20 && ch < 0x7f) {
            tmp[0] = (char)ch;
            k = 1;
        } else {
            snprintf(tmp, sizeof tmp, "\\x%02x", ch);
            k = 4;
        }
        if (o + k + 1 > cap)
            break;
        memcpy(out + o, tmp, k);
        o += k;
    }
    out[o] = '\0';
    return i;
}

/* One DSQL_LOG_DEBUG line with the start of the helper's stderr, the
 * credentials it returned (if any) redacted. */
static void log_stderr(const char *prog, stderr_capture *c, const dsql_credentials *returned)
{
    if (!c->total || !dsql__log_enabled(DSQL_LOG_DEBUG))
        return;
    if (returned) {
        redact(c, returned->secret_access_key);
        redact(c, returned->session_token);
    }
    char shown[STDERR_SHOWN_MAX + 1];
    size_t used = escape_for_log(shown, sizeof shown, c->kept, c->n_kept);
    if (used == c->total)
        dsql__log(DSQL_LOG_DEBUG, "credential_process %s: stderr (%zu bytes): %s", prog,
                  c->total, shown);
    else
        dsql__log(DSQL_LOG_DEBUG,
                  "credential_process %s: stderr (%zu bytes, the first %zu shown): %s", prog,
                  c->total, used, shown);
    OPENSSL_cleanse(shown, sizeof shown); /* may hold secrets (unmasked if it failed) */
}

/* ---- the terminal -------------------------------------------------------- */

/* Hand-over and take-back of the terminal are serialised: two threads must
 * not both see the caller's group in the foreground and hand it away. */
static pthread_mutex_t g_tty_lock = PTHREAD_MUTEX_INITIALIZER;

/* tcsetpgrp with SIGTTOU blocked in this thread: from a background group
 * it would otherwise stop the whole caller (POSIX tcsetpgrp). */
static int set_foreground(int tty, pid_t pgrp)
{
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &ttou, &old);
    int rc = tcsetpgrp(tty, pgrp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* When the caller's group is the foreground group of its controlling
 * terminal, make the helper's group (pgid == pid) the foreground group and
 * wake the helper in case it already stopped on SIGTTIN/SIGTTOU. Returns
 * an fd on the terminal to give it back with, or -1 (no terminal, caller
 * in the background: nothing changes). */
static int hand_terminal_to(pid_t pid)
{
    int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (tty < 0)
        return -1;
    pthread_mutex_lock(&g_tty_lock);
    int handed = tcgetpgrp(tty) == getpgrp() && set_foreground(tty, pid) == 0;
    pthread_mutex_unlock(&g_tty_lock);
    if (!handed) {
        close(tty);
        return -1;
    }
    kill(-pid, SIGCONT);
    dsql__log(DSQL_LOG_DEBUG, "credential_process: the terminal's foreground group is the "
                              "helper's while it runs");
    return tty;
}

static void take_terminal_back(int tty)
{
    if (tty < 0)
        return;
    pthread_mutex_lock(&g_tty_lock);
    set_foreground(tty, getpgrp());
    pthread_mutex_unlock(&g_tty_lock);
    close(tty);
}

static int set_cloexec(int fd) { return fcntl(fd, F_SETFD, FD_CLOEXEC); }

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static void wipe_json(cJSON *o)
{
    for (cJSON *c = o ? o->child : NULL; c; c = c->next)
        if (cJSON_IsString(c) && c->valuestring)
            OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
}

static dsql_status parse_output(const char *prog, const char *text, size_t len,
                                dsql_credentials *out, dsql_error *err)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    if (!doc || !cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return dsql__error(err, DSQL_EPARSE,
                           "credential_process %s: output is not a JSON object", prog);
    }
    dsql_status st = DSQL_OK;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(doc, "Version");
    const char *akid = jstr(doc, "AccessKeyId"), *secret = jstr(doc, "SecretAccessKey");
    const char *token = jstr(doc, "SessionToken"), *exp = jstr(doc, "Expiration");
    int64_t expiration = 0;
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        st = dsql__error(err, DSQL_EPARSE,
                         "credential_process %s: output has no \"Version\": 1", prog);
    else if (!akid || !akid[0])
        st = dsql__error(err, DSQL_EPARSE,
                         "credential_process %s: output has no AccessKeyId", prog);
    else if (!secret || !secret[0])
        st = dsql__error(err, DSQL_EPARSE,
                         "credential_process %s: output has no SecretAccessKey", prog);
    else if (exp && !dsql__utc_parse_iso8601(exp, &expiration))
        st = dsql__error(err, DSQL_EPARSE,
                         "credential_process %s: Expiration is not an ISO 8601 UTC time", prog);
    else if (exp && expiration <= dsql__now())
        st = dsql__error(err, DSQL_EEXPIRED,
                         "credential_process %s: returned credentials that expired at %s", prog,
                         exp);
    if (st == DSQL_OK) {
        dsql_credentials view = {(char *)akid, (char *)secret, (char *)token, expiration};
        st = dsql_credentials_copy(out, &view, err);
    }
    wipe_json(doc);
    cJSON_Delete(doc);
    return st;
}

/* ---- running the helper ---------------------------------------------------- */

typedef struct helper {
    const char *prog;
    int timeout_ms;
    int64_t deadline;
    pid_t pid;          /* also its process group; -1 once reaped or never run */
    int out_fd, err_fd; /* our ends of its stdout and stderr; -1 when closed */
    int tty;            /* the terminal handed to its group, -1 if none */
    dsql__strbuf out;
    stderr_capture errs;
} helper;

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
}

/* Spawn argv with stdin from /dev/null, stdout and stderr into pipes, in
 * a new process group (pgid = its pid). */
static dsql_status helper_start(helper *h, char **argv, dsql_error *err)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe(outp) != 0 || pipe(errp) != 0 || set_cloexec(outp[0]) || set_cloexec(outp[1]) ||
        set_cloexec(errp[0]) || set_cloexec(errp[1])) {
        dsql_status st = dsql__error(err, DSQL_EIO, "credential_process %s: pipe: %s", h->prog,
                                     strerror(errno));
        close_pair(outp);
        close_pair(errp);
        return st;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    int fa_ok = rc == 0, attr_ok = 0;
    if (!rc) {
        rc = posix_spawnattr_init(&attr);
        attr_ok = rc == 0;
    }
    if (!rc)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc)
        rc = posix_spawnp(&h->pid, h->prog, &fa, &attr, argv, environ);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    close(outp[1]);
    close(errp[1]);
    if (rc != 0) {
        h->pid = -1;
        close(outp[0]);
        close(errp[0]);
        return dsql__error(err, rc == ENOMEM ? DSQL_ENOMEM : DSQL_EIO,
                           "credential_process: cannot run %s: %s", h->prog, strerror(rc));
    }
    h->deadline = now_ms() + h->timeout_ms;
    h->out_fd = outp[0];
    h->err_fd = errp[0];
    h->tty = hand_terminal_to(h->pid);
    return DSQL_OK;
}

/* One read from fd into stdout (bounded) or the stderr capture; EOF
 * closes fd. */
static dsql_status helper_read(helper *h, int *fd, int is_stdout, dsql_error *err)
{
    char buf[4096];
    ssize_t got = read(*fd, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return DSQL_OK;
    if (got <= 0) {
        close(*fd);
        *fd = -1;
        return DSQL_OK;
    }
    dsql_status st = DSQL_OK;
    if (!is_stdout) {
        capture_stderr(&h->errs, buf, (size_t)got);
    } else if (h->out.len + (size_t)got > MAX_STDOUT) {
        st = dsql__error(err, DSQL_EPARSE, "credential_process %s: output larger than %u bytes",
                         h->prog, MAX_STDOUT);
    } else {
        dsql__sb_append(&h->out, buf, (size_t)got);
        if (h->out.failed)
            st = dsql__error(err, DSQL_ENOMEM, "credential_process %s: out of memory", h->prog);
    }
    OPENSSL_cleanse(buf, (size_t)got);
    return st;
}

/* Read stdout and stderr until both are closed, or the deadline. */
static dsql_status helper_collect(helper *h, dsql_error *err)
{
    while (h->out_fd >= 0 || h->err_fd >= 0) {
        int64_t left = h->deadline - now_ms();
        if (left <= 0)
            return dsql__error(err, DSQL_ETIMEOUT,
                               "credential_process %s: no result within %d ms; killed it and "
                               "its process group",
                               h->prog, h->timeout_ms);
        struct pollfd pfd[2] = {{h->out_fd, POLLIN, 0}, {h->err_fd, POLLIN, 0}};
        int r = poll(pfd, 2, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return dsql__error(err, DSQL_EIO, "credential_process %s: poll: %s", h->prog,
                               strerror(errno));
        for (int i = 0; r > 0 && i < 2; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            dsql_status st = helper_read(h, i == 0 ? &h->out_fd : &h->err_fd, i == 0, err);
            if (st != DSQL_OK)
                return st;
        }
    }
    return DSQL_OK;
}

/* Wait (until the deadline) for the helper to exit; it must exit 0. */
static dsql_status helper_reap(helper *h, dsql_error *err)
{
    int status = 0;
    for (;;) {
        pid_t w = waitpid(h->pid, &status, WNOHANG);
        if (w == h->pid)
            break;
        if (w < 0 && errno != EINTR) {
            h->pid = -1; /* not ours to wait for (or signal) any more */
            return dsql__error(err, DSQL_EIO, "credential_process %s: waitpid: %s", h->prog,
                               strerror(errno));
        }
        if (now_ms() >= h->deadline)
            return dsql__error(err, DSQL_ETIMEOUT,
                               "credential_process %s: did not exit within %d ms; killed it "
                               "and its process group",
                               h->prog, h->timeout_ms);
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    h->pid = -1;
    const char *hint = h->errs.total ? " (its stderr is logged at debug level)" : "";
    if (WIFSIGNALED(status))
        return dsql__error(err, DSQL_EIO, "credential_process %s: killed by signal %d%s",
                           h->prog, WTERMSIG(status), hint);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return dsql__error(err, DSQL_EIO, "credential_process %s: exited with status %d%s",
                           h->prog, WIFEXITED(status) ? WEXITSTATUS(status) : -1, hint);
    return DSQL_OK;
}

/* A helper not yet reaped (timeout, error) is killed with its whole
 * process group, then reaped; the terminal comes back in any case. */
static void helper_stop(helper *h)
{
    if (h->pid > 0) {
        kill(-h->pid, SIGKILL);
        kill(h->pid, SIGKILL); /* in case it left its group */
        while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        h->pid = -1;
    }
    take_terminal_back(h->tty);
    h->tty = -1;
    if (h->out_fd >= 0)
        close(h->out_fd);
    if (h->err_fd >= 0)
        close(h->err_fd);
    h->out_fd = h->err_fd = -1;
}

dsql_status dsql__credential_process_run(const char *command, int timeout_ms,
                                         dsql_credentials *out, dsql_error *err)
{
    memset(out, 0, sizeof *out);
    char **argv;
    dsql_status st = dsql__split_command(command, &argv, err);
    if (st != DSQL_OK)
        return st;
    helper h;
    memset(&h, 0, sizeof h);
    h.prog = argv[0];
    h.timeout_ms = timeout_ms > 0 ? timeout_ms : DSQL__PROCESS_TIMEOUT_MS;
    h.pid = -1;
    h.out_fd = h.err_fd = h.tty = -1;
    st = helper_start(&h, argv, err);
    if (st == DSQL_OK)
        st = helper_collect(&h, err);
    if (st == DSQL_OK)
        st = helper_reap(&h, err);
    if (st == DSQL_OK)
        st = parse_output(h.prog, h.out.data ? h.out.data : "", h.out.len, out, err);
    helper_stop(&h);
    log_stderr(h.prog, &h.errs, st == DSQL_OK ? out : NULL);
    OPENSSL_cleanse(&h.errs, sizeof h.errs);
    dsql__sb_free(&h.out);
    /* prog points into argv: free last (error text is already formatted) */
    dsql__argv_free(argv);
    return st;
}
