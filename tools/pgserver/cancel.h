/* pgserver: forwarding CancelRequests to PostgreSQL. Each one costs the
 * postmaster a fork, and a client can send thousands a second for free (no
 * login needed): forwarded as they come they fill PostgreSQL's listen
 * backlog, and logins fail. So a cancel is forwarded only while fewer than
 * PGS_CANCEL_IN_FLIGHT are being handled (PostgreSQL closes the connection
 * when done), and at most PGS_CANCEL_PER_SECOND a second (bursts of
 * PGS_CANCEL_BURST); the rest are dropped, as a lost cancel would be: the
 * protocol gives the client no answer either way. */
#ifndef PGSERVER_CANCEL_H
#define PGSERVER_CANCEL_H

#include "ratelimit.h"

#define PGS_CANCEL_IN_FLIGHT 4
#define PGS_CANCEL_PER_SECOND 100
#define PGS_CANCEL_BURST 200

struct event_base;
struct event;
struct pgs_cancel_relay;

typedef struct pgs_cancel_slot {
    struct pgs_cancel_relay *relay;
    struct event *ev; /* made once, reassigned to each forward's socket */
    int fd;           /* -1: free */
} pgs_cancel_slot;

typedef struct pgs_cancel_relay {
    struct event_base *base;
    pgs_cancel_slot slots[PGS_CANCEL_IN_FLIGHT];
    pgs_ratelimit budget, log_rl;
    unsigned long forwarded, dropped, failed;
} pgs_cancel_relay;

/* 0, or -1 when out of memory. */
int pgs_cancel_relay_init(pgs_cancel_relay *r, struct event_base *base);
/* Forwards the 16-byte CancelRequest pkt to the Unix socket at path:
 * 0 forwarded, 1 dropped (too many in flight, or over the rate), -1 failed.
 * Each outcome is logged at a bounded rate. */
int pgs_cancel_forward(pgs_cancel_relay *r, const char *path, const unsigned char *pkt);
/* Closes the connections still waiting for PostgreSQL and frees the
 * slots; before the event base goes. */
void pgs_cancel_relay_free(pgs_cancel_relay *r);

#endif
