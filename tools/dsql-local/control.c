/* dsql-local set and restart: the request is a new file DIR/faults.request
 * holding "name value" ("restart now" for a restart), created O_EXCL|O_NOFOLLOW in the private state directory;
 * SIGUSR1 goes to the process that holds the directory's lock (the proof
 * `stop` uses, through a pidfd); the server applies the request and removes
 * the file, which is the answer. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "statedir.h"

#define SET_WAIT_MS 10000
#define RESTART_WAIT_MS 30000 /* open connections are cut first */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int write_request(const char *path, const char *name, const char *value)
{
    char line[256];
    int fd, n = snprintf(line, sizeof line, "%s %s\n", name, value);

    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    fd = dl_state_create(path, 0600);
    if (fd < 0)
        return -1;
    if (write(fd, line, (size_t)n) != n) {
        close(fd);
        unlink(path);
        return -1;
    }
    return close(fd);
}

static int signal_server(const char *dir)
{
    pid_t pid = dl_state_lock_holder(dir);
    int pidfd, rc;

    if (pid <= 0) {
        fprintf(stderr, "dsql-local: no server runs in %s\n", dir);
        return -1;
    }
    pidfd = pidfd_open(pid, 0);
    if (dl_state_lock_holder(dir) != pid) { /* it went meanwhile */
        if (pidfd >= 0)
            close(pidfd);
        fprintf(stderr, "dsql-local: no server runs in %s\n", dir);
        return -1;
    }
    rc = pidfd >= 0 ? pidfd_send_signal(pidfd, SIGUSR1, NULL, 0) : kill(pid, SIGUSR1);
    if (pidfd >= 0)
        close(pidfd);
    if (rc != 0)
        fprintf(stderr, "dsql-local: cannot signal the server of %s: %s\n", dir, strerror(errno));
    return rc;
}

/* Sends "name value" to the server of given and waits for the answer (the
 * request file gone). *holder: the server's pid. Returns an exit status. */
static int send_request(const char *given, const char *name, const char *value, long wait_ms,
                        pid_t *holder)
{
    char dir[512], path[600], err[1200];
    long waited;

    if (dl_state_dir_resolve(given, dir, sizeof dir, err, sizeof err) != 0 ||
        dl_state_dir_check(dir, err, sizeof err) != 0) {
        fprintf(stderr, "dsql-local: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, DL_REQUEST_NAME);
    for (waited = 0; write_request(path, name, value) != 0; waited += 50) {
        if (errno != EEXIST || waited >= SET_WAIT_MS) { /* another set not yet answered */
            fprintf(stderr, "dsql-local: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
        sleep_ms(50);
    }
    *holder = dl_state_lock_holder(dir);
    if (signal_server(dir) != 0) {
        unlink(path);
        return 1;
    }
    for (waited = 0; waited < wait_ms; waited += 50) {
        if (access(path, F_OK) != 0)
            return 0;
        sleep_ms(50);
    }
    unlink(path);
    fprintf(stderr, "dsql-local: the server of %s did not answer in %ld s\n", dir,
            wait_ms / 1000);
    return 1;
}

int dl_set(const char *given, const char *name, const char *value)
{
    char err[300];
    dl_faults scratch;
    pid_t holder;

    memset(&scratch, 0, sizeof scratch);
    if (dl_faults_set(&scratch, name, value, err, sizeof err) != 0) {
        fprintf(stderr, "dsql-local: %s\n", err);
        return 2;
    }
    return send_request(given, name, value, SET_WAIT_MS, &holder);
}

/* The server that answered must still hold the directory: a gateway that
 * could not listen again stops the server. */
int dl_restart(const char *given)
{
    char dir[512], err[1200];
    pid_t holder = 0;
    int rc = send_request(given, "restart", "now", RESTART_WAIT_MS, &holder);

    if (rc != 0)
        return rc;
    if (dl_state_dir_resolve(given, dir, sizeof dir, err, sizeof err) == 0 &&
        holder > 0 && dl_state_lock_holder(dir) == holder)
        return 0;
    fprintf(stderr, "dsql-local: the server of %s stopped instead of restarting (see its log)\n",
            given);
    return 1;
}

void dl_request_done(const char *dir)
{
    char path[600];

    snprintf(path, sizeof path, "%s/%s", dir, DL_REQUEST_NAME);
    unlink(path);
}

int dl_apply_request(const char *dir, dl_faults *f, int *restart, char *err, size_t cap)
{
    char path[600], line[256], name[64], value[64];
    struct stat st;
    ssize_t n;
    int fd, rc = -1;

    snprintf(path, sizeof path, "%s/%s", dir, DL_REQUEST_NAME);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "no request in %s: %s", path, strerror(errno));
        return -1;
    }
    /* only our own user's requests (the directory is private anyway) */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
        snprintf(err, cap, "%s is not a request of ours", path);
    } else if ((n = read(fd, line, sizeof line - 1)) <= 0) {
        snprintf(err, cap, "%s is empty", path);
    } else {
        line[n] = '\0';
        if (sscanf(line, "%63s %63s", name, value) != 2) {
            snprintf(err, cap, "%s is not \"name value\"", path);
        } else if (strcmp(name, "restart") == 0) {
            *restart = 1;
            close(fd);
            return 0; /* answered once the gateways listen again */
        } else {
            rc = dl_faults_set(f, name, value, err, cap);
        }
    }
    close(fd);
    unlink(path);
    return rc;
}
