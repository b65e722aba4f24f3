/* libpq adapter: the small waiting rules every poll loop of the adapter
 * shares (connect, pool acquire, statements with retry). Not installed. */
#ifndef DSQL_PQ_POLL_WAIT_H
#define DSQL_PQ_POLL_WAIT_H

#include "dsqlauth/retry.h"

#include <stdint.h>

/* The start of a poll function: NULL out-parameters point at the caller's
 * scratch, and both read -1 (no fd, no timeout) until the poll sets them. */
static inline void dsql__pq_poll_outs_init(int **fd, int **timeout_ms, int scratch[2])
{
    if (!*fd)
        *fd = &scratch[0];
    if (!*timeout_ms)
        *timeout_ms = &scratch[1];
    **fd = -1;
    **timeout_ms = -1;
}

/* How long a wait of timeout_ms (-1: unbounded) may last under until
 * (NULL: no limit): never past until->deadline_ms, and at most 10 ms when
 * there is a cancel callback to ask again. */
static inline int dsql__pq_wait_ms(const dsql_retry_options *until, int timeout_ms)
{
    if (!until)
        return timeout_ms;
    if (until->deadline_ms > 0) {
        int64_t left = until->deadline_ms - dsql_monotonic_ms();
        if (left < 0)
            left = 0;
        if (timeout_ms < 0 || left < timeout_ms)
            timeout_ms = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    if (until->cancelled && (timeout_ms < 0 || timeout_ms > 10))
        timeout_ms = 10;
    return timeout_ms;
}

#endif
