/* A tiny loopback PostgreSQL front door for adapter tests: answers the
 * startup with a scripted ErrorResponse (e.g. 53300) a number of times,
 * then asks for a cleartext password and accepts it when it starts with
 * an expected prefix (else 28P01, like DSQL's IAM failure). No TLS: tests
 * using it set sslmode=disable with the opt-in allow_insecure_tls=1 (else
 * the configuration is refused before any byte is sent). One thread per
 * connection. */
#ifndef DSQL_FAKEPG_H
#define DSQL_FAKEPG_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct fake_pg {
    int listen_fd;
    int port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    /* script */
    int error_times;           /* first N connections get the error */
    const char *sqlstate;      /* "53300" */
    const char *message;       /* "sorry, too many clients already" */
    const char *accept_prefix; /* password prefix accepted; NULL: accept any */
    int silent;                /* never answer (for timeouts) */
    int echo_password;         /* a careless server: the refusal quotes it */
    int error_on_sslrequest;   /* answer SSLRequest with the error (as a
                                  postmaster that cannot fork does) */
    /* observations */
    int connections;
    int last_peer_port; /* the client port of the last connection accepted */
    int authenticated;
    char last_password[8192];
    char last_user[128];
    char last_app[128];
    char last_db[128];
    char last_sslmode_seen; /* 'S' if an SSLRequest came */
} fake_pg;

static int fake_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void fake_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t fake_get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void fake_send_error(int fd, const char *sqlstate, const char *msg)
{
    unsigned char buf[1024];
    size_t o = 5;
    o += (size_t)snprintf((char *)buf + o, sizeof buf - o, "SFATAL") + 1;
    o += (size_t)snprintf((char *)buf + o, sizeof buf - o, "VFATAL") + 1;
    o += (size_t)snprintf((char *)buf + o, sizeof buf - o, "C%s", sqlstate) + 1;
    o += (size_t)snprintf((char *)buf + o, sizeof buf - o, "M%s", msg) + 1;
    buf[o++] = 0;
    buf[0] = 'E';
    fake_put32(buf + 1, (uint32_t)(o - 1));
    (void)!write(fd, buf, o);
}

typedef struct fake_conn {
    fake_pg *f;
    int fd;
    int n;
} fake_conn;

static void *fake_conn_main(void *arg)
{
    fake_conn *fc = arg;
    fake_pg *f = fc->f;
    int fd = fc->fd;
    unsigned char hdr[8], *body = NULL;
    for (;;) {
        if (fake_read_full(fd, hdr, 8))
            goto done;
        uint32_t len = fake_get32(hdr), code = fake_get32(hdr + 4);
        if (len < 8 || len > 100000)
            goto done;
        body = malloc(len - 8 + 1);
        if (fake_read_full(fd, body, len - 8))
            goto done;
        body[len - 8] = 0;
        if (code == 80877103 && f->error_on_sslrequest && fc->n <= f->error_times) {
            fake_send_error(fd, f->sqlstate, f->message);
            goto done;
        }
        if (code == 80877103 || code == 80877104) { /* SSL / GSSENC request */
            if (code == 80877103)
                f->last_sslmode_seen = 'S';
            (void)!write(fd, "N", 1);
            free(body);
            body = NULL;
            continue;
        }
        break;
    }
    pthread_mutex_lock(&f->mu);
    for (char *p = (char *)body; *p;) {
        char *v = p + strlen(p) + 1;
        if (strcmp(p, "user") == 0)
            snprintf(f->last_user, sizeof f->last_user, "%s", v);
        else if (strcmp(p, "application_name") == 0)
            snprintf(f->last_app, sizeof f->last_app, "%s", v);
        else if (strcmp(p, "database") == 0)
            snprintf(f->last_db, sizeof f->last_db, "%s", v);
        p = v + strlen(v) + 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (f->silent) {
        char c;
        while (read(fd, &c, 1) > 0) {
        }
        goto done;
    }
    if (fc->n <= f->error_times) {
        fake_send_error(fd, f->sqlstate, f->message);
        goto done;
    }
    unsigned char auth[9] = {'R'};
    fake_put32(auth + 1, 8);
    fake_put32(auth + 5, 3); /* cleartext password */
    (void)!write(fd, auth, 9);
    unsigned char ph[5];
    if (fake_read_full(fd, ph, 5) || ph[0] != 'p')
        goto done;
    uint32_t plen = fake_get32(ph + 1);
    if (plen < 5 || plen > 100000)
        goto done;
    char *pw = calloc(1, plen);
    if (fake_read_full(fd, pw, plen - 4)) {
        free(pw);
        goto done;
    }
    pthread_mutex_lock(&f->mu);
    snprintf(f->last_password, sizeof f->last_password, "%s", pw);
    pthread_mutex_unlock(&f->mu);
    int ok = !f->accept_prefix || strncmp(pw, f->accept_prefix, strlen(f->accept_prefix)) == 0;
    free(pw);
    if (!ok) {
        char m[400];
        if (f->echo_password)
            snprintf(m, sizeof m, "bad password \"%.150s\" for user \"%s\"", f->last_password,
                     f->last_user);
        else
            snprintf(m, sizeof m, "IAM authentication failed for user \"%s\"", f->last_user);
        fake_send_error(fd, "28P01", m);
        goto done;
    }
    unsigned char out[64];
    size_t o = 0;
    out[o++] = 'R';
    fake_put32(out + o, 8), o += 4;
    fake_put32(out + o, 0), o += 4;
    out[o++] = 'K';
    fake_put32(out + o, 12), o += 4;
    fake_put32(out + o, (uint32_t)(1000 + fc->n)), o += 4;
    fake_put32(out + o, 42), o += 4;
    out[o++] = 'Z';
    fake_put32(out + o, 5), o += 4;
    out[o++] = 'I';
    (void)!write(fd, out, o);
    pthread_mutex_lock(&f->mu);
    f->authenticated++;
    pthread_mutex_unlock(&f->mu);
    char c;
    while (read(fd, &c, 1) > 0) { /* until Terminate + close */
    }
done:
    free(body);
    close(fd);
    free(fc);
    return NULL;
}

static void *fake_accept_main(void *arg)
{
    fake_pg *f = arg;
    while (!f->stop) {
        struct pollfd p = {f->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        struct sockaddr_in peer = {0};
        socklen_t pl = sizeof peer;
        int fd = accept(f->listen_fd, (struct sockaddr *)&peer, &pl);
        if (fd < 0)
            continue;
        fake_conn *fc = malloc(sizeof *fc);
        pthread_mutex_lock(&f->mu);
        fc->n = ++f->connections;
        f->last_peer_port = ntohs(peer.sin_port);
        pthread_mutex_unlock(&f->mu);
        fc->f = f;
        fc->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, fake_conn_main, fc);
        pthread_detach(t);
    }
    return NULL;
}

/* Listens on 127.0.0.1 (a free port); returns 0 on success. */
static int fake_pg_start(fake_pg *f)
{
    pthread_mutex_init(&f->mu, NULL);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(f->listen_fd, 64) || getsockname(f->listen_fd, (struct sockaddr *)&a, &al))
        return -1;
    f->port = ntohs(a.sin_port);
    return pthread_create(&f->thread, NULL, fake_accept_main, f);
}

static void fake_pg_stop(fake_pg *f)
{
    f->stop = 1;
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

/* The connections made so far, counted once the accept thread has taken
 * every one of them: a connection of our own (the sentinel) goes to the
 * back of the listen queue, and the one accept thread takes the queue in
 * order, so once the sentinel is accepted every connection made before it
 * is counted. A "no connection was made" check then cannot pass just
 * because the accept thread had not run yet on a loaded machine. -1 if
 * the sentinel is not accepted within 30 s. */
static inline int fake_pg_settled_connections(fake_pg *f)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    int n = -1;
    int s = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)f->port);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) != 0)
        goto out;
    for (int i = 0; i < 3000 && n < 0; i++) {
        pthread_mutex_lock(&f->mu);
        if (f->last_peer_port == ntohs(a.sin_port))
            n = f->connections - 1;
        pthread_mutex_unlock(&f->mu);
        if (n < 0)
            poll(NULL, 0, 10);
    }
out:
    if (s >= 0)
        close(s); /* its thread reads EOF and ends */
    return n;
}

/* A port nothing listens on (bound, then closed). */
static int fake_closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    return ntohs(a.sin_port);
}

static int64_t fake_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
