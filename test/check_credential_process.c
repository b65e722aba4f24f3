/* credential_process helpers as they are in the wild: one that starts a
 * grandchild and hangs (a timeout must kill both, with and without a
 * controlling terminal), one that asks for an MFA code on /dev/tty (it must
 * still work, and the terminal must come back to the caller), and helpers
 * whose stderr is noisy, hostile or repeats the secret (it is logged only
 * at debug level, bounded, escaped, without the secret). The terminal
 * cases run in a child process that is the leader of a new session, with
 * a pseudo-terminal as its controlling terminal, or with none. */
/* posix_openpt, grantpt, unlockpt, ptsname */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "creds/profile.h"

#define SECRET "CpSeCrEtwJalrXUtnFEMIK7MDENGbPxRfiCYzz"
#define SESSION "CpSeSsIoNtOkEnIQoJb3JpZ2luX2VjEJr"
#define JSON_OUT                                                                           \
    "{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"" SECRET \
    "\", \"SessionToken\": \"" SESSION "\"}"

static char tmpdir[256];

static void setup(void)
{
    test_make_home(tmpdir, sizeof tmpdir, "dsql-cproc");
    test_clear_profile_env();
}

static void teardown(void)
{
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    test_remove_tree(tmpdir);
}

/* tmpdir/rel, in a static buffer */
static const char *in_tmp(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    return path;
}

/* A helper script tmpdir/name with this body; the command line that runs
 * it with tmpdir/pid as its argument (where it may write a pid). */
static const char *helper_command(const char *name, const char *body)
{
    char text[4096];
    snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
    const char *path = test_write_file_in(tmpdir, name, text, 0755);
    static char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' '%s/pid'", path, tmpdir);
    return cmd;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The pid the helper wrote to tmpdir/pid; 0 when there is none. */
static pid_t helper_pid_file(void)
{
    FILE *f = fopen(in_tmp("pid"), "r");
    if (!f)
        return 0;
    long pid = 0;
    int n = fscanf(f, "%ld", &pid);
    fclose(f);
    return n == 1 && pid > 1 ? (pid_t)pid : 0;
}

/* Gone: no such process, or a zombie waiting for init to reap it. */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Polls up to 5 s for pid to be gone. */
static int wait_gone(pid_t pid)
{
    for (int i = 0; i < 100 && !process_gone(pid); i++)
        sleep_ms(50);
    return process_gone(pid);
}

/* ---- running in a session of its own --------------------------------------- */

typedef struct outcome {
    dsql_status st;
    char message[512];
    char token[64];   /* the session token returned, if any */
    int tty_restored; /* with a terminal: the caller's group is its foreground again */
    long ms;          /* how long the call took */
    pid_t grandchild; /* the pid the helper wrote, 0 if none */
    int grandchild_gone; /* checked before this session ends (its end would
                          * SIGHUP the terminal's foreground group) */
} outcome;

/* In the leader of a new session (with the pty `slave` as controlling
 * terminal when given): run cmd, report through fd. */
static void child_run(const char *slave, const char *cmd, int timeout_ms, int fd)
{
    outcome o;
    memset(&o, 0, sizeof o);
    int tty = -1;
    if (setsid() < 0 || (slave && (tty = open(slave, O_RDWR)) < 0))
        _exit(2);
    dsql_credentials c;
    dsql_error err = {0};
    int64_t t0 = mono_ms();
    o.st = dsql__credential_process_run(cmd, timeout_ms, &c, &err);
    o.ms = (long)(mono_ms() - t0);
    snprintf(o.message, sizeof o.message, "%s", o.st == DSQL_OK ? "" : err.message);
    if (o.st == DSQL_OK) {
        snprintf(o.token, sizeof o.token, "%s", c.session_token ? c.session_token : "");
        dsql_credentials_clear(&c);
    }
    o.tty_restored = tty >= 0 && tcgetpgrp(tty) == getpgrp();
    o.grandchild = helper_pid_file();
    o.grandchild_gone = o.grandchild && wait_gone(o.grandchild);
    _exit(write(fd, &o, sizeof o) == (ssize_t)sizeof o ? 0 : 3);
}

/* Runs cmd in a new session: without a controlling terminal, or (pty) on
 * a pseudo-terminal whose other end this process plays the user on: when
 * `answer` is given it is typed once "MFA code: " appears. */
static outcome run_in_session(const char *cmd, int timeout_ms, int pty, const char *answer)
{
    int master = -1;
    char slave[128] = "";
    if (pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        ck_assert_msg(master >= 0, "posix_openpt: %s", strerror(errno));
        ck_assert(grantpt(master) == 0 && unlockpt(master) == 0);
        ck_assert(ptsname(master) != NULL);
        snprintf(slave, sizeof slave, "%s", ptsname(master));
    }
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        close(p[0]);
        if (master >= 0)
            close(master);
        child_run(pty ? slave : NULL, cmd, timeout_ms, p[1]);
    }
    close(p[1]);
    char screen[4096] = "";
    size_t shown = 0;
    int answered = 0;
    int64_t give_up = mono_ms() + 60000;
    for (;;) { /* play the user until the outcome arrives */
        struct pollfd pfd[2] = {{p[0], POLLIN, 0}, {master, POLLIN, 0}};
        ck_assert_msg(mono_ms() < give_up, "no outcome after 60 s; terminal shows: %s", screen);
        int r = poll(pfd, master >= 0 ? 2 : 1, 200);
        if (r > 0 && pfd[0].revents)
            break;
        if (r > 0 && master >= 0 && (pfd[1].revents & POLLIN)) {
            ssize_t n = read(master, screen + shown, sizeof screen - 1 - shown);
            if (n > 0)
                screen[shown += (size_t)n] = '\0';
        }
        if (answer && !answered && strstr(screen, "MFA code: ")) {
            ck_assert(write(master, answer, strlen(answer)) == (ssize_t)strlen(answer));
            answered = 1;
        }
    }
    outcome o;
    ck_assert_int_eq(read(p[0], &o, sizeof o), (ssize_t)sizeof o);
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (master >= 0)
        close(master);
    return o;
}

/* The helper's grandchild must be gone by the time the call returned
 * (give it 5 s to be reaped); kills it when it is not. */
static void expect_grandchild_gone(const outcome *o)
{
    ck_assert_msg(o->grandchild, "the helper did not write its grandchild's pid");
    if (!o->grandchild_gone && !process_gone(o->grandchild))
        kill(o->grandchild, SIGKILL); /* do not leave it behind */
    ck_assert_msg(o->grandchild_gone, "grandchild %ld outlived the timeout",
                  (long)o->grandchild);
}

/* A helper that starts a grandchild, records its pid, and hangs. */
#define HANGS_WITH_GRANDCHILD "sleep 300 &\necho $! > \"$1\"\nwait"

/* ---- timeouts kill the whole process group --------------------------------- */

START_TEST(test_timeout_kills_grandchild_without_terminal)
{
    const char *cmd = helper_command("hang.sh", HANGS_WITH_GRANDCHILD);
    outcome o = run_in_session(cmd, 3000, 0, NULL);
    ck_assert_msg(o.st == DSQL_ETIMEOUT, "%s: %s", dsql_status_name(o.st), o.message);
    expect_grandchild_gone(&o);
    ck_assert_msg(strstr(o.message, "process group"), "%s", o.message);
    ck_assert_msg(o.ms < 10000, "took %ld ms", o.ms);
}
END_TEST

START_TEST(test_timeout_kills_grandchild_on_a_terminal)
{
    const char *cmd = helper_command("hang.sh", "sleep 300 &\necho $! > \"$1\"\n"
                                                "printf 'MFA code: ' > /dev/tty\n"
                                                "read code < /dev/tty\nwait");
    outcome o = run_in_session(cmd, 3000, 1, NULL); /* nobody answers */
    ck_assert_msg(o.st == DSQL_ETIMEOUT, "%s: %s", dsql_status_name(o.st), o.message);
    expect_grandchild_gone(&o);
    ck_assert_msg(o.tty_restored, "the terminal was not given back to the caller");
}
END_TEST

/* ---- a helper that prompts on the terminal ---------------------------------- */

/* Reads an MFA code from /dev/tty with echo off, as MFA helpers do:
 * writing the prompt, changing the terminal modes and reading all need
 * the helper's group in the terminal's foreground. */
#define PROMPTS_ON_TTY                                                                  \
    "printf 'MFA code: ' > /dev/tty\n"                                                  \
    "stty -echo < /dev/tty\n"                                                           \
    "read code < /dev/tty\n"                                                            \
    "stty echo < /dev/tty\n"                                                            \
    "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDTTY\", \"SecretAccessKey\": \"s\", " \
    "\"SessionToken\": \"%s\"}' \"$code\""

START_TEST(test_tty_prompt_still_works)
{
    const char *cmd = helper_command("mfa.sh", PROMPTS_ON_TTY);
    outcome o = run_in_session(cmd, 30000, 1, "123456\n");
    ck_assert_msg(o.st == DSQL_OK, "%s: %s", dsql_status_name(o.st), o.message);
    ck_assert_str_eq(o.token, "123456");
    ck_assert_msg(o.tty_restored, "the terminal was not given back to the caller");
}
END_TEST

/* ---- stderr ---------------------------------------------------------------- */

static char logbuf[1 << 16];
static int log_lines;
static void capture_log(dsql_log_level level, const char *msg, void *ud)
{
    (void)ud;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%d:%s\n", (int)level, msg);
    log_lines++;
}

static dsql_status run_with_log(const char *body, dsql_log_level level)
{
    logbuf[0] = '\0';
    log_lines = 0;
    dsql_set_log_handler(capture_log, level, NULL);
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql__credential_process_run(helper_command("noisy.sh", body), 10000, &c,
                                                  &err);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    if (st == DSQL_OK)
        dsql_credentials_clear(&c);
    return st;
}

START_TEST(test_stderr_stays_out_of_the_default_level)
{
    const char *body = "echo 'helper says hi' >&2\necho '" JSON_OUT "'";
    for (int level = DSQL_LOG_ERROR; level <= DSQL_LOG_INFO; level++) {
        ck_assert_int_eq(run_with_log(body, (dsql_log_level)level), DSQL_OK);
        ck_assert_msg(!strstr(logbuf, "helper says hi"), "level %d: %s", level, logbuf);
    }
    ck_assert_int_eq(run_with_log(body, DSQL_LOG_DEBUG), DSQL_OK);
    ck_assert_msg(strstr(logbuf, "3:credential_process ") &&
                      strstr(logbuf, "stderr (15 bytes): helper says hi\\n"),
                  "%s", logbuf);
}
END_TEST

START_TEST(test_stderr_is_escaped_and_bounded)
{
    /* a forged log line, a terminal escape, a non-ASCII byte, then 100 kB */
    const char *body = "printf 'line1\\nFORGED: admin logged in\\033[31m\\377\\n' >&2\n"
                       "head -c 100000 /dev/zero | tr '\\0' a >&2\n"
                       "echo '" JSON_OUT "'";
    ck_assert_int_eq(run_with_log(body, DSQL_LOG_DEBUG), DSQL_OK);
    const char *line = strstr(logbuf, "stderr (");
    ck_assert_msg(line, "%s", logbuf);
    ck_assert_msg(strstr(line, "stderr (100036 bytes, the first ") &&
                      strstr(line, "line1\\nFORGED: admin logged in\\x1b[31m\\xff\\naaaa"),
                  "%s", line);
    const char *eol = strchr(line, '\n');
    ck_assert(eol && (size_t)(eol - line) < 1000);
    ck_assert(!strchr(logbuf, '\033'));
    ck_assert(!strstr(logbuf, "\nFORGED"));
    int stderr_lines = 0;
    for (const char *s = logbuf; (s = strstr(s, "stderr")); s++)
        stderr_lines++;
    ck_assert_msg(stderr_lines == 1, "%d stderr lines: %.2000s", stderr_lines, logbuf);
}
END_TEST

START_TEST(test_stderr_never_shows_the_secret)
{
    /* the whole JSON on stderr too */
    ck_assert_int_eq(run_with_log("echo '" JSON_OUT "' >&2\necho '" JSON_OUT "'",
                                  DSQL_LOG_DEBUG),
                     DSQL_OK);
    ck_assert_msg(strstr(logbuf, "stderr ("), "%s", logbuf);
    ck_assert_msg(!strstr(logbuf, SECRET) && !strstr(logbuf, SESSION), "%s", logbuf);
    /* the secret where the shown part ends: no prefix of it either */
    ck_assert_int_eq(run_with_log("head -c 780 /dev/zero | tr '\\0' x >&2\n"
                                  "echo '" SECRET "' >&2\necho '" JSON_OUT "'",
                                  DSQL_LOG_DEBUG),
                     DSQL_OK);
    ck_assert_msg(strstr(logbuf, "xxxx"), "%s", logbuf);
    ck_assert_msg(!strstr(logbuf, "CpSeCrEt"), "%s", logbuf);
}
END_TEST

START_TEST(test_failure_points_at_the_debug_log)
{
    dsql_error err = {0};
    dsql_credentials c;
    dsql_status st = dsql__credential_process_run(
        helper_command("fail.sh", "echo 'MFA device not found' >&2\nexit 4"), 10000, &c, &err);
    ck_assert_int_eq(st, DSQL_EIO);
    ck_assert_msg(strstr(err.message, "status 4") && strstr(err.message, "debug level"), "%s",
                  err.message);
    ck_assert(!strstr(err.message, "MFA device"));
}
END_TEST

static Suite *credential_process_suite(void)
{
    Suite *s = suite_create("credential_process");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_timeout_kills_grandchild_without_terminal);
    tcase_add_test(tc, test_timeout_kills_grandchild_on_a_terminal);
    tcase_add_test(tc, test_tty_prompt_still_works);
    tcase_add_test(tc, test_stderr_stays_out_of_the_default_level);
    tcase_add_test(tc, test_stderr_is_escaped_and_bounded);
    tcase_add_test(tc, test_stderr_never_shows_the_secret);
    tcase_add_test(tc, test_failure_points_at_the_debug_log);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(credential_process_suite)
