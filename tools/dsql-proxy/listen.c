/* dsql-proxy: where clients connect, and who may. A Unix socket in a
 * directory (psql -h DIR finds DIR/.s.PGSQL.5432), its peers checked by
 * uid; TCP only on a loopback address and only with --trust-loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "peercred.h"
#include "proxy.h"

static int parse_port(const char *s, int *port)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9') /* strtol would take a sign or spaces */
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* "unix:DIR", "tcp:127.0.0.1:PORT", "tcp:[::1]:PORT"; "unix:" alone is
 * the default private directory. -2: not a loopback address, -1: any
 * other mistake. err starts with opt (the option's name) and shows at
 * most 80 bytes of the spec, so the reason after it is never cut off. */
int dp_listen_parse(dp_listen *l, const char *opt, const char *spec, char *err, size_t errcap)
{
    struct sockaddr_storage ss;

    memset(l, 0, sizeof *l);
    if (strncmp(spec, "unix:", 5) == 0) {
        l->is_unix = 1;
        if (strlen(spec + 5) >= sizeof l->dir - 16) {
            snprintf(err, errcap, "%s %.80s...: the directory name is too long (%zu "
                     "bytes, at most %zu)", opt, spec, strlen(spec + 5), sizeof l->dir - 17);
            return -1;
        }
        snprintf(l->dir, sizeof l->dir, "%s", spec + 5);
        return 0;
    }
    if (strncmp(spec, "tcp:", 4) == 0) {
        const char *hp = spec + 4, *colon = strrchr(hp, ':');
        size_t hlen;
        if (!colon || parse_port(colon + 1, &l->port) != 0) {
            snprintf(err, errcap, "%s %.80s: expected tcp:127.0.0.1:PORT (a port "
                     "0..65535)", opt, spec);
            return -1;
        }
        hlen = (size_t)(colon - hp);
        if (hlen >= 2 && hp[0] == '[' && hp[hlen - 1] == ']') {
            hp++;
            hlen -= 2;
        }
        if (hlen >= sizeof l->host) {
            snprintf(err, errcap, "%s %.80s: not a loopback address", opt, spec);
            return -1;
        }
        memcpy(l->host, hp, hlen);
        l->host[hlen] = '\0';
        if (strncmp(l->host, "127.", 4) != 0 && strcmp(l->host, "::1") != 0) {
            snprintf(err, errcap, "%s %.80s: only loopback addresses (127.0.0.0/8, ::1): "
                     "a token-less login must not be reachable from the network", opt, spec);
            return -2;
        }
        if (dp_listen_tcp_addr(l, &ss) == 0) { /* "127.example.com" */
            snprintf(err, errcap, "%s %.80s: %s is not an IP address (give "
                     "127.0.0.1 or [::1], not a name)", opt, spec, l->host);
            return -1;
        }
        return 0;
    }
    snprintf(err, errcap, "%s %.80s: expected unix:DIR or tcp:127.0.0.1:PORT", opt, spec);
    return -1;
}

static void accepted_unix(int fd, void *arg)
{
    dp_session_accept(arg, fd, 1);
}

static void accepted_tcp(int fd, void *arg)
{
    dp_session_accept(arg, fd, 0);
}

static int shortage(void *arg)
{
    return dp_session_evict_one(arg);
}

/* The default directory: private (0700), made fresh, gone at exit. With
 * --allow-uid others must reach the socket: searchable, not listable. */
static int make_default_dir(const dp_options *o, dp_listen *l, char *err, size_t errcap)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(l->dir, sizeof l->dir, "%s/dsql-proxy-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(l->dir)) {
        snprintf(err, errcap, "cannot make a directory for the socket in %s: %s",
                 tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return -1;
    }
    l->made_dir = 1;
    if (o->nallow_uid > 0 && chmod(l->dir, 0711) != 0) {
        snprintf(err, errcap, "cannot chmod %s: %s", l->dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A socket left by a proxy that died is removed; a live one is not. */
static int clear_stale_socket(const char *path, char *err, size_t errcap)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, live;

    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errcap, "%s exists and is not a socket", path);
        return -1;
    }
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path)
        return -1; /* the caller checked */
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    live = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    if (fd >= 0)
        close(fd);
    if (live) {
        snprintf(err, errcap, "%s is in use by another server", path);
        return -1;
    }
    if (unlink(path) != 0) {
        snprintf(err, errcap, "cannot remove the stale socket %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_unix(dp_proxy *p, dp_listen *l, char *err, size_t errcap)
{
    struct sockaddr_un sun;
    pgs_listener_cbs cbs = {accepted_unix, shortage, p};
    char lerr[200];

    if (!l->dir[0] && make_default_dir(p->opt, l, err, errcap) != 0)
        return -1;
    if (mkdir(l->dir, 0700) == 0) /* a new directory: private, ours to remove */
        l->made_dir = 1;
    else if (errno != EEXIST) {
        snprintf(err, errcap, "cannot make the directory %s: %s", l->dir, strerror(errno));
        return -1;
    }
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.5432", l->dir) >=
        (int)sizeof sun.sun_path) {
        snprintf(err, errcap, "%s: the path is too long for a Unix socket", l->dir);
        return -1;
    }
    if (clear_stale_socket(sun.sun_path, err, errcap) != 0)
        return -1;
    l->l = pgs_listener_new(p->base, (struct sockaddr *)&sun, sizeof sun, 1024, &cbs, lerr,
                            sizeof lerr);
    if (!l->l) {
        snprintf(err, errcap, "cannot listen on %s: %s", sun.sun_path, lerr);
        return -1;
    }
    /* only now is the socket ours to remove at exit: before, the path
     * may be another server's live socket or someone's file */
    snprintf(l->path, sizeof l->path, "%s", sun.sun_path);
    /* who may connect is the peer check's job (own uid, --allow-uid);
     * the directory's mode decides who can reach the socket at all */
    chmod(l->path, 0777);
    return 0;
}

socklen_t dp_listen_tcp_addr(const dp_listen *l, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (strchr(l->host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)l->port);
        return inet_pton(AF_INET6, l->host, &s6->sin6_addr) == 1 ? sizeof *s6 : 0;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)l->port);
        return inet_pton(AF_INET, l->host, &s4->sin_addr) == 1 ? sizeof *s4 : 0;
    }
}

static int open_tcp(dp_proxy *p, dp_listen *l, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t len = dp_listen_tcp_addr(l, &ss);
    pgs_listener_cbs cbs = {accepted_tcp, shortage, p};
    char lerr[200];

    if (len == 0) {
        snprintf(err, errcap, "--listen tcp:%s: not an IP address", l->host);
        return -1;
    }
    l->l = pgs_listener_new(p->base, (struct sockaddr *)&ss, len, 1024, &cbs, lerr, sizeof lerr);
    if (!l->l) {
        snprintf(err, errcap, "cannot listen on %s port %d: %s", l->host, l->port, lerr);
        return -1;
    }
    l->port = pgs_listener_port(l->l);
    return 0;
}

int dp_listen_open(dp_proxy *p, dp_listen *l, char *err, size_t errcap)
{
    return l->is_unix ? open_unix(p, l, err, errcap) : open_tcp(p, l, err, errcap);
}

/* Stops accepting; a Unix socket (and the default directory) goes. */
void dp_listen_close(dp_listen *l)
{
    pgs_listener_free(l->l);
    l->l = NULL;
    if (l->is_unix && l->path[0]) {
        unlink(l->path);
        l->path[0] = '\0';
    }
    if (l->made_dir) {
        rmdir(l->dir);
        l->made_dir = 0;
    }
}

int dp_peer_allowed(const dp_options *o, int fd, uid_t *uid)
{
    int i;

    if (pgs_peer_uid(fd, uid) != 0)
        return 0;
    if (*uid == geteuid())
        return 1;
    for (i = 0; i < o->nallow_uid; i++)
        if (o->allow_uid[i] == *uid)
            return 1;
    return 0;
}
