/* dsql-local: logging, random names, small file helpers, stop signals. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "local.h"
#include "log.h"

/* The log itself is shared with the other servers (tools/pgserver/log.c). */
void dl_log_open(const char *path)
{
    pgs_log_open(path, "dsql-local");
}

void dl_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pgs_vlog(fmt, ap);
    va_end(ap);
}

int dl_random_string(char *buf, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet), i;
    unsigned char r[256];

    if (n > sizeof r || RAND_bytes(r, (int)n) != 1)
        return -1;
    /* alphabets here are at most 64 long; 256 % alen bias is irrelevant */
    for (i = 0; i < n; i++)
        buf[i] = alphabet[r[i] % alen];
    buf[n] = '\0';
    return 0;
}

int dl_rmtree(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char sub[4096];

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    d = opendir(path);
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= sizeof sub)
            continue;
        dl_rmtree(sub);
    }
    closedir(d);
    return rmdir(path);
}

/* Only ever a new file: O_EXCL also refuses a symbolic link, so a planted
 * link or file in the state directory is never written through. */
int dl_write_file(const char *path, const char *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    size_t off = 0;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

void dl_on_stop_signals(void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}
