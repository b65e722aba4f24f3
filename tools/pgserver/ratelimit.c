/* pgserver: token bucket on the monotonic clock. */
#include "ratelimit.h"

void pgs_ratelimit_init(pgs_ratelimit *rl, double per_second, double burst)
{
    rl->per_second = per_second;
    rl->burst = burst;
    rl->tokens = burst;
    rl->refused = 0;
    clock_gettime(CLOCK_MONOTONIC, &rl->last);
}

int pgs_ratelimit_take(pgs_ratelimit *rl)
{
    struct timespec now;
    double dt;

    clock_gettime(CLOCK_MONOTONIC, &now);
    dt = (double)(now.tv_sec - rl->last.tv_sec) + (double)(now.tv_nsec - rl->last.tv_nsec) / 1e9;
    rl->last = now;
    if (dt > 0)
        rl->tokens += dt * rl->per_second;
    if (rl->tokens > rl->burst)
        rl->tokens = rl->burst;
    if (rl->tokens >= 1) {
        rl->tokens -= 1;
        return 1;
    }
    rl->refused++;
    return 0;
}

unsigned long pgs_ratelimit_take_refused(pgs_ratelimit *rl)
{
    unsigned long n = rl->refused;
    rl->refused = 0;
    return n;
}
