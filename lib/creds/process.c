/* credential_process: the command is split with shell-like quoting and run
 * directly (posix_spawnp, no shell), with stdin from /dev/null, a timeout,
 * stderr forwarded line by line to the log callback, and stdout parsed as
 * the Version 1 JSON document the AWS CLI defines. */
#include "profile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "../strbuf.h"

extern char **environ;

#define MAX_STDOUT (4u << 20)

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

static void log_stderr_lines(const char *prog, dsql__strbuf *line, int flush)
{
    for (;;) {
        char *nl = line->len ? memchr(line->data, '\n', line->len) : NULL;
        if (!nl && !(flush && line->len) && line->len < 1000)
            return;
        size_t n = nl ? (size_t)(nl - line->data) : line->len;
        size_t shown = n;
        if (shown && line->data[shown - 1] == '\r')
            shown--;
        dsql__log(DSQL_LOG_WARN, "credential_process %s: stderr: %.*s", prog, (int)shown,
                  line->data);
        size_t used = nl ? n + 1 : n;
        memmove(line->data, line->data + used, line->len - used);
        line->len -= used;
        if (!line->len)
            return;
    }
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

dsql_status dsql__credential_process_run(const char *command, int timeout_ms,
                                         dsql_credentials *out, dsql_error *err)
{
    memset(out, 0, sizeof *out);
    char **argv;
    dsql_status st = dsql__split_command(command, &argv, err);
    if (st != DSQL_OK)
        return st;
    const char *prog = argv[0];
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    dsql__strbuf sout = {0}, serr = {0};
    pid_t pid = -1;
    int spawned = 0;
    posix_spawn_file_actions_t fa;
    int fa_ok = 0;
    if (pipe(outp) != 0 || pipe(errp) != 0 || set_cloexec(outp[0]) || set_cloexec(outp[1]) ||
        set_cloexec(errp[0]) || set_cloexec(errp[1])) {
        st = dsql__error(err, DSQL_EIO, "credential_process %s: pipe: %s", prog,
                         strerror(errno));
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        st = dsql__error(err, DSQL_ENOMEM, "credential_process %s: out of memory", prog);
        goto done;
    }
    fa_ok = 1;
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (!rc)
        rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    if (rc != 0) {
        st = dsql__error(err, rc == ENOMEM ? DSQL_ENOMEM : DSQL_EIO,
                         "credential_process: cannot run %s: %s", prog, strerror(rc));
        goto done;
    }
    spawned = 1;
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;

    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : DSQL__PROCESS_TIMEOUT_MS);
    int open_fds = 2;
    while (open_fds > 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            st = dsql__error(err, DSQL_ETIMEOUT,
                             "credential_process %s: no result within %d ms; killed", prog,
                             timeout_ms);
            goto done;
        }
        struct pollfd pfd[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
        int r = poll(pfd, 2, left > 1000 ? 1000 : (int)left);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = dsql__error(err, DSQL_EIO, "credential_process %s: poll: %s", prog,
                             strerror(errno));
            goto done;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(pfd[i].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                close(pfd[i].fd);
                if (i == 0)
                    outp[0] = -1;
                else
                    errp[0] = -1;
                open_fds--;
                continue;
            }
            if (i == 0) {
                if (sout.len + (size_t)got > MAX_STDOUT) {
                    OPENSSL_cleanse(buf, sizeof buf);
                    st = dsql__error(err, DSQL_EPARSE,
                                     "credential_process %s: output larger than %u bytes",
                                     prog, MAX_STDOUT);
                    goto done;
                }
                dsql__sb_append(&sout, buf, (size_t)got);
                OPENSSL_cleanse(buf, (size_t)got);
            } else {
                dsql__sb_append(&serr, buf, (size_t)got);
                if (!serr.failed)
                    log_stderr_lines(prog, &serr, 0);
            }
            if (sout.failed || serr.failed) {
                st = dsql__error(err, DSQL_ENOMEM, "credential_process %s: out of memory",
                                 prog);
                goto done;
            }
        }
    }
    if (serr.len)
        log_stderr_lines(prog, &serr, 1);
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            st = dsql__error(err, DSQL_EIO, "credential_process %s: waitpid: %s", prog,
                             strerror(errno));
            spawned = 0;
            goto done;
        }
        if (now_ms() >= deadline) {
            st = dsql__error(err, DSQL_ETIMEOUT,
                             "credential_process %s: did not exit within %d ms; killed", prog,
                             timeout_ms);
            goto done;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    spawned = 0;
    if (WIFSIGNALED(status)) {
        st = dsql__error(err, DSQL_EIO, "credential_process %s: killed by signal %d", prog,
                         WTERMSIG(status));
        goto done;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        st = dsql__error(err, DSQL_EIO, "credential_process %s: exited with status %d", prog,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto done;
    }
    st = parse_output(prog, sout.data ? sout.data : "", sout.len, out, err);
done:
    if (spawned) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    dsql__sb_free(&sout);
    dsql__sb_free(&serr);
    /* prog points into argv: free last (error text is already formatted) */
    dsql__argv_free(argv);
    return st;
}
