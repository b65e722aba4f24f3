/* pgserver: connecting to PostgreSQL's Unix socket. A non-blocking
 * connect() to a Unix socket whose listen backlog is full fails at once
 * with EAGAIN (it does not wait like TCP), so a busy postmaster (a flood of
 * CancelRequests, each a fork) used to fail logins. pgs_dial retries with
 * a short backoff instead. */
#ifndef PGSERVER_UNIXCONN_H
#define PGSERVER_UNIXCONN_H

struct event_base;
struct event;

/* A connected non-blocking, close-on-exec socket to path, or -1 (errno). */
int pgs_unix_connect(const char *path);

/* 1 for the errors worth another try: a full backlog, or descriptors or
 * buffers that may be free again in a moment. */
int pgs_unix_connect_retriable(int err);

typedef struct pgs_dial {
    struct event_base *base;
    struct event *timer;
    const char *path;   /* the caller's; lives until done */
    int tries, delay_ms, patience_ms;
    double started;     /* monotonic seconds: a busy machine fires timers late */
    /* fd >= 0: connected (the callee owns it); else err is errno */
    void (*done)(int fd, int err, void *arg);
    /* before each retry on EMFILE/ENFILE: free a descriptor if possible */
    int (*shortage)(void *arg);
    void *arg;
} pgs_dial;

/* Connects to path. Returns the socket when that works at once; -1 with
 * errno set when it failed for good; -1 with errno EINPROGRESS when it will
 * retry for up to patience_ms and then call d->done (fill done, shortage,
 * arg first). */
int pgs_dial_start(pgs_dial *d, struct event_base *base, const char *path, int patience_ms);
/* Stops a pending dial (done is not called) and frees its timer: call it
 * once the dial is over too. Harmless when none is pending. */
void pgs_dial_stop(pgs_dial *d);

#endif
