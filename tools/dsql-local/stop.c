/* dsql-local stop: signals the server of a state directory, and only it.
 * The proof is the lock: a server takes an fcntl write lock on
 * DIR/dsql-local.lock before it makes anything and holds it until it
 * exits, and the kernel names the holder (F_GETLK). The pid file is never
 * trusted: it only tells an unrelated process from a dead server. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "statedir.h"

#define STOP_WAIT_MS 30000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* kill(pid, 0) also succeeds for a zombie nobody reaps (containers whose
 * init does not): look at the state in /proc too. */
static int process_alive(long pid)
{
    char path[64], buf[256], *paren;
    FILE *fp;
    size_t n;

    if (pid <= 0 || kill((pid_t)pid, 0) != 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    fp = fopen(path, "re");
    if (!fp)
        return 1;
    n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

/* The pid the pid file names; 0 when there is none or it is unreadable. */
static long named_pid(const char *dir)
{
    char path[600], buf[32];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, DL_PID_NAME);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

static int lock_file_exists(const char *dir)
{
    char path[600];
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", dir, DL_LOCK_NAME);
    return lstat(path, &st) == 0;
}

/* Removes what a dead server left, holding the lock meanwhile so that no
 * new server starts in the middle. */
static void remove_leftovers(const char *dir)
{
    int left, fd = dl_state_lock(dir, &left);

    if (fd < 0) {
        if (errno == EAGAIN)
            fprintf(stderr, "dsql-local: a new server is starting in %s\n", dir);
        else
            fprintf(stderr, "dsql-local: cannot lock %s/%s: %s\n", dir, DL_LOCK_NAME,
                    strerror(errno));
        return;
    }
    if (left >= 0) {
        dl_state_remove(dir, left, 1);
    } else { /* no server recorded anything: only a stale pid file */
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, DL_PID_NAME);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s", dir, DL_LOCK_NAME);
        unlink(path);
    }
    close(fd);
}

static int not_running(const char *dir)
{
    long pid = named_pid(dir);

    if (pid <= 0 && !lock_file_exists(dir)) {
        fprintf(stderr, "dsql-local: not running (no server holds %s/%s)\n", dir, DL_LOCK_NAME);
        return 1;
    }
    if (process_alive(pid)) {
        fprintf(stderr, "dsql-local: process %ld named in %s/%s is not the dsql-local server "
                "of %s (it does not hold %s); not signalling it\n",
                pid, dir, DL_PID_NAME, dir, DL_LOCK_NAME);
        return 1;
    }
    fprintf(stderr, "dsql-local: the server of %s is gone; removing what it left\n", dir);
    remove_leftovers(dir);
    return 1;
}

/* 1 once the process has exited (or is a zombie), 0 after ms. */
static int wait_exit(pid_t pid, int pidfd, long ms)
{
    long waited;

    for (waited = 0; waited < ms; waited += 50) {
        if (pidfd >= 0) {
            struct pollfd p = {pidfd, POLLIN, 0};
            if (poll(&p, 1, 50) > 0)
                return 1;
            continue;
        }
        if (!process_alive(pid))
            return 1;
        sleep_ms(50);
    }
    return 0;
}

/* A pidfd pins the process: once it is open and the lock holder is still
 * that pid, the signal cannot reach a process that reused the pid. */
static int signal_holder(const char *dir, pid_t pid, int *pidfd)
{
    *pidfd = pidfd_open(pid, 0);
    if (*pidfd < 0 && errno == ESRCH)
        return 1;
    /* no pidfd (old kernel, seccomp): kill(2) right after the check */
    if (dl_state_lock_holder(dir) != pid)
        return 1;
    if ((*pidfd >= 0 ? pidfd_send_signal(*pidfd, SIGTERM, NULL, 0) : kill(pid, SIGTERM)) == 0)
        return 0;
    if (errno == ESRCH)
        return 1;
    fprintf(stderr, "dsql-local: cannot signal the server of %s (process %ld): %s\n", dir,
            (long)pid, strerror(errno));
    return -1;
}

/* Returns the exit status, or -1 when the holder changed under us. */
static int stop_holder(const char *dir, pid_t pid)
{
    int pidfd, rc = signal_holder(dir, pid, &pidfd);

    if (rc == 1) { /* it exited, or another server took over, meanwhile */
        if (pidfd >= 0)
            close(pidfd);
        return -1;
    }
    if (rc == 0 && !wait_exit(pid, pidfd, STOP_WAIT_MS)) {
        fprintf(stderr, "dsql-local: process %ld did not stop in %d s\n", (long)pid,
                STOP_WAIT_MS / 1000);
        rc = -1;
    }
    if (pidfd >= 0)
        close(pidfd);
    if (rc != 0)
        return 1;
    /* a server killed while stopping leaves its lock file behind */
    if (lock_file_exists(dir) && dl_state_lock_holder(dir) == 0)
        remove_leftovers(dir);
    return 0;
}

int dl_stop(const char *given)
{
    char dir[512], err[1200];
    pid_t holder;
    int tries, rc = -1;

    if (dl_state_dir_resolve(given, dir, sizeof dir, err, sizeof err) != 0 ||
        dl_state_dir_check(dir, err, sizeof err) != 0) {
        if (errno == ENOENT)
            fprintf(stderr, "dsql-local: not running (no %s)\n", given);
        else
            fprintf(stderr, "dsql-local: %s\n", err);
        return 1;
    }
    for (tries = 0; tries < 3 && rc < 0; tries++) {
        holder = dl_state_lock_holder(dir);
        if (holder < 0) {
            fprintf(stderr, "dsql-local: cannot tell which process holds %s/%s: %s\n", dir,
                    DL_LOCK_NAME, strerror(errno));
            return 1;
        }
        rc = holder > 0 ? stop_holder(dir, holder) : not_running(dir);
    }
    return rc < 0 ? 1 : rc;
}
