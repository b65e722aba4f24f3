/* pgserver: connections that have not finished logging in. Each holds a
 * descriptor and costs the client nothing, so their number is capped;
 * at the cap the next arrival evicts one of them: the oldest that has not
 * sent a byte yet, else the oldest of the rest. A client that is logging
 * in sends its first bytes at once, so idle connections go first. */
#ifndef PGSERVER_PREAUTH_H
#define PGSERVER_PREAUTH_H

#include <stddef.h>

typedef struct pgs_preauth_node {
    struct pgs_preauth_node *prev, *next;
    unsigned long seq; /* arrival order */
    int listed, talking;
} pgs_preauth_node;

typedef struct pgs_preauth {
    pgs_preauth_node silent;  /* list heads, oldest first */
    pgs_preauth_node talking;
    size_t count, limit;
    unsigned long arrivals, evicted;
    /* closes the connection of n (already off the lists) */
    void (*evict)(pgs_preauth_node *n, void *arg);
    void *arg;
} pgs_preauth;

/* The default cap: half of the descriptor limit, so logged-in sessions
 * (two descriptors each) always find room. */
size_t pgs_preauth_default_limit(long fd_limit);
void pgs_preauth_init(pgs_preauth *p, size_t limit,
                      void (*evict)(pgs_preauth_node *n, void *arg), void *arg);
/* Adds a new connection, evicting one first when at the cap. */
void pgs_preauth_add(pgs_preauth *p, pgs_preauth_node *n);
/* The client sent its first bytes. */
void pgs_preauth_talking(pgs_preauth *p, pgs_preauth_node *n);
/* Logged in, or gone. Harmless for a node not listed. */
void pgs_preauth_remove(pgs_preauth *p, pgs_preauth_node *n);
/* Evicts one connection (descriptors ran out); 1 if there was one. */
int pgs_preauth_evict_one(pgs_preauth *p);

#endif
