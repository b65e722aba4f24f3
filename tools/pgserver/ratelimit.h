/* pgserver: a token bucket, for what a flood must not multiply (log
 * lines, CancelRequests forwarded to PostgreSQL). */
#ifndef PGSERVER_RATELIMIT_H
#define PGSERVER_RATELIMIT_H

#include <time.h>

typedef struct pgs_ratelimit {
    double per_second;        /* refill rate */
    double burst;             /* bucket size */
    double tokens;
    struct timespec last;     /* CLOCK_MONOTONIC of the last refill */
    unsigned long refused;    /* since the last pgs_ratelimit_take_refused() */
} pgs_ratelimit;

/* A full bucket. */
void pgs_ratelimit_init(pgs_ratelimit *rl, double per_second, double burst);
/* 1 and one token spent when one is there, else 0 (and counted). */
int pgs_ratelimit_take(pgs_ratelimit *rl);
/* How many takes were refused since the last call; resets the count. */
unsigned long pgs_ratelimit_take_refused(pgs_ratelimit *rl);

#endif
