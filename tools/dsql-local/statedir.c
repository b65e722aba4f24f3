/* dsql-local: the state directory policy (see statedir.h). The rules are
 * those of OpenSSH's StrictModes and of private runtime directories: the
 * directory is ours and private, nobody else can rename it, and files in
 * it are created new, so a planted symbolic link or file is refused, never
 * followed or truncated. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "statedir.h"

/* The names certs.c and cluster.c write; the pid file comes last, as a
 * server removes it last. */
static int state_names(int made, const char *names[8])
{
    int n = 0;

    names[n++] = "pg";
    names[n++] = "ca.pem";
    names[n++] = "server.pem";
    names[n++] = "server.key";
    names[n++] = "postgres.log";
    if (made & DL_MADE_KEYS)
        names[n++] = DL_KEYS_NAME;
    if (made & DL_MADE_LOG)
        names[n++] = DL_LOG_NAME;
    names[n++] = DL_PID_NAME;
    return n;
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Walks from real (symlink-free) up to "/": each directory must be ours
 * or root's, and writable by nobody else unless sticky. */
static int check_parents(const char *real, const char *dir, char *err, size_t errcap)
{
    char p[PATH_MAX], *slash;
    struct stat st;

    snprintf(p, sizeof p, "%s", real);
    for (;;) {
        if (stat(p, &st) != 0) {
            snprintf(err, errcap, "cannot check %s: %s", p, strerror(errno));
            return -1;
        }
        if (st.st_uid != geteuid() && st.st_uid != 0) {
            snprintf(err, errcap, "%s (above state directory %s) belongs to uid %ld, "
                     "who could replace the state directory; choose another one",
                     p, dir, (long)st.st_uid);
            errno = EPERM;
            return -1;
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
            snprintf(err, errcap, "%s (above state directory %s) is writable by group or "
                     "others and not sticky (mode %04o), so they could replace the state "
                     "directory; choose another one", p, dir, (unsigned)(st.st_mode & 07777));
            errno = EPERM;
            return -1;
        }
        if (strcmp(p, "/") == 0)
            return 0;
        slash = strrchr(p, '/');
        if (slash == p)
            p[1] = '\0';
        else
            *slash = '\0';
    }
}

int dl_state_dir_resolve(const char *dir, char *out, size_t cap, char *err, size_t errcap)
{
    char buf[PATH_MAX], *slash, *name, *real;
    const char *parent;
    size_t n = strlen(dir);
    int rc;

    if (n == 0 || n >= sizeof buf) {
        snprintf(err, errcap, "state directory '%s' is not a usable path", dir);
        errno = EINVAL;
        return -1;
    }
    memcpy(buf, dir, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    slash = strrchr(buf, '/');
    parent = !slash ? "." : slash == buf ? "/" : buf;
    name = slash ? slash + 1 : buf;
    if (slash)
        *slash = '\0';
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(err, errcap, "state directory '%s' must name a directory of its own", dir);
        errno = EINVAL;
        return -1;
    }
    real = realpath(parent, NULL);
    if (!real) {
        int e = errno;
        snprintf(err, errcap, "cannot use state directory %s: %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    if ((size_t)snprintf(out, cap, "%s/%s", strcmp(real, "/") == 0 ? "" : real, name) >= cap) {
        snprintf(err, errcap, "state directory path %s is too long", dir);
        free(real);
        errno = ENAMETOOLONG;
        return -1;
    }
    rc = check_parents(real, dir, err, errcap);
    free(real);
    return rc;
}

int dl_state_dir_check(const char *dir, char *err, size_t errcap)
{
    struct stat st;

    if (lstat(dir, &st) != 0) {
        int e = errno;
        snprintf(err, errcap, "cannot use state directory %s: %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errcap, "state directory %s is a symbolic link; refusing it "
                 "(name the real directory)", dir);
        errno = ELOOP;
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "state directory %s is not a directory", dir);
        errno = ENOTDIR;
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errcap, "state directory %s belongs to uid %ld, not to you (uid %ld); "
                 "refusing it", dir, (long)st.st_uid, (long)geteuid());
        errno = EPERM;
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errcap, "state directory %s is writable by group or others "
                 "(mode %04o); refusing it", dir, (unsigned)(st.st_mode & 07777));
        errno = EPERM;
        return -1;
    }
    return 0;
}

int dl_state_create(const char *path, int mode)
{
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
}

/* The DL_MADE_* bits in a lock file: -1 when empty (nothing recorded:
 * no server got past taking the lock), 0 when unreadable. */
static int read_made(int fd)
{
    char buf[16];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long v;
    char *end;

    if (n == 0)
        return -1;
    if (n < 0)
        return 0;
    buf[n] = '\0';
    v = strtol(buf, &end, 10);
    return end != buf && v >= 0 && v <= 7 ? (int)v : 0;
}

int dl_state_record(int lock_fd, int made)
{
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d\n", made);

    if (ftruncate(lock_fd, 0) != 0 || pwrite(lock_fd, buf, (size_t)n, 0) != n)
        return -1;
    return 0;
}

int dl_state_lock(const char *dir, int *left)
{
    char path[PATH_MAX];
    struct flock fl;
    struct stat fst, pst;
    int tries, fd = -1;

    *left = -1;
    if (join(path, sizeof path, dir, DL_LOCK_NAME) != 0)
        return -1;
    for (tries = 0; tries < 10 && fd < 0; tries++) {
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int e = errno;
            close(fd);
            errno = e == EACCES ? EAGAIN : e;
            return -1;
        }
        /* a `stop` cleaning up after a dead server unlinks the lock file
         * while holding it: hold the file that has the name now */
        if (fstat(fd, &fst) != 0 || lstat(path, &pst) != 0 || fst.st_dev != pst.st_dev ||
            fst.st_ino != pst.st_ino) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        errno = EAGAIN;
        return -1;
    }
    if (!S_ISREG(fst.st_mode) || fst.st_uid != geteuid()) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    *left = read_made(fd);
    return fd;
}

pid_t dl_state_lock_holder(const char *dir)
{
    char path[PATH_MAX];
    struct flock fl;
    int fd, rc, e;

    if (join(path, sizeof path, dir, DL_LOCK_NAME) != 0)
        return -1;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    rc = fcntl(fd, F_GETLK, &fl);
    e = errno;
    close(fd); /* we hold no lock on it, so this drops nothing */
    if (rc != 0) {
        errno = e;
        return -1;
    }
    if (fl.l_type == F_UNLCK)
        return 0;
    if (fl.l_pid <= 0) { /* a holder outside our pid namespace */
        errno = ESRCH;
        return -1;
    }
    return fl.l_pid;
}

const char *dl_state_find_existing(const char *dir, int made)
{
    const char *names[8];
    char path[PATH_MAX];
    struct stat st;
    int i, n = state_names(made, names);

    for (i = 0; i < n; i++) {
        if (join(path, sizeof path, dir, names[i]) != 0)
            return names[i];
        if (lstat(path, &st) == 0 || errno != ENOENT)
            return names[i];
    }
    return NULL;
}

void dl_state_remove(const char *dir, int made, int all)
{
    const char *names[8];
    char path[PATH_MAX];
    int i, n = state_names(made, names);

    for (i = 0; i < n; i++)
        if (join(path, sizeof path, dir, names[i]) == 0)
            dl_rmtree(path); /* lstat: a symbolic link is removed, not followed */
    if (!all)
        return;
    if (join(path, sizeof path, dir, DL_LOCK_NAME) == 0)
        unlink(path);
    if (made & DL_MADE_DIR)
        rmdir(dir);
}
