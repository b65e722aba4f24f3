/* pgserver: the accept loop. Accepting stops being a busy loop when
 * descriptors run out (EMFILE, ENFILE) or memory does: the server is asked
 * to free a descriptor (evict a connection that has not logged in), else
 * accepting pauses for a moment, and the failure is logged at a bounded
 * rate. Connections arrive non-blocking and close-on-exec. */
#ifndef PGSERVER_LISTENER_H
#define PGSERVER_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
typedef struct pgs_listener pgs_listener;

typedef struct pgs_listener_cbs {
    /* a new connection; the callee owns fd */
    void (*accepted)(int fd, void *arg);
    /* out of descriptors: close one if possible; 1 if one was closed */
    int (*shortage)(void *arg);
    void *arg;
} pgs_listener_cbs;

/* Listens on sa; NULL with a message in err on failure. */
pgs_listener *pgs_listener_new(struct event_base *base, const struct sockaddr *sa,
                               socklen_t salen, int backlog, const pgs_listener_cbs *cbs,
                               char *err, size_t errcap);
/* The bound port (host order), for a listener on port 0. */
int pgs_listener_port(const pgs_listener *l);
/* Times accepting paused for lack of descriptors or memory. */
unsigned long pgs_listener_pauses(const pgs_listener *l);
void pgs_listener_free(pgs_listener *l);

#endif
