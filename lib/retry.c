/* The retry schedule every adapter shares: exponential backoff with
 * jitter, bounded by a deadline and a cancel callback. */
#include "internal.h"

#include "dsqlauth/retry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Cancellation is noticed within this long while waiting. */
#define CANCEL_SLICE_US 10000u

void dsql_retry_options_init(dsql_retry_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = DSQL_STRUCT_VERSION;
    o->max_retries = DSQL_RETRY_DEFAULT_MAX_RETRIES;
    o->base_delay_us = DSQL_RETRY_DEFAULT_BASE_DELAY_US;
    o->max_delay_us = DSQL_RETRY_DEFAULT_MAX_DELAY_US;
    o->jitter = DSQL_RETRY_DEFAULT_JITTER;
}

dsql_status dsql_retry_options_check(const dsql_retry_options *o, const char *prefix,
                                     dsql_error *err)
{
    if (!prefix)
        prefix = "retry options";
    if (!o)
        return DSQL_OK;
    if (o->version != DSQL_STRUCT_VERSION)
        return dsql__error(err, DSQL_EINVAL, "%s: version %d is not %d "
                           "(use dsql_retry_options_init)", prefix, o->version,
                           DSQL_STRUCT_VERSION);
    if (o->max_retries > DSQL_RETRY_MAX_RETRIES_LIMIT)
        return dsql__error(err, DSQL_EINVAL, "%s: max_retries %u is not in 0..%u", prefix,
                           o->max_retries, DSQL_RETRY_MAX_RETRIES_LIMIT);
    if (!(o->jitter >= 0.0 && o->jitter <= 1.0))
        return dsql__error(err, DSQL_EINVAL, "%s: jitter is not in 0..1", prefix);
    if (o->base_delay_us > o->max_delay_us)
        return dsql__error(err, DSQL_EINVAL, "%s: base_delay_us %u is above max_delay_us %u",
                           prefix, (unsigned)o->base_delay_us, (unsigned)o->max_delay_us);
    if (o->deadline_ms < 0)
        return dsql__error(err, DSQL_EINVAL, "%s: deadline_ms is negative", prefix);
    return DSQL_OK;
}

int64_t dsql_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t dsql_retry_delay_us(const dsql_retry_options *o, unsigned retry, double u)
{
    if (!o)
        return 0;
    double d = (double)o->base_delay_us;
    for (unsigned i = 1; i < retry && d < (double)o->max_delay_us; i++)
        d *= 2.0;
    if (d > (double)o->max_delay_us)
        d = (double)o->max_delay_us;
    if (u < 0.0 || !(u < 1.0))
        u = 0.5;
    d *= 1.0 - o->jitter + 2.0 * o->jitter * u;
    return d < 1.0 ? 0 : (uint64_t)d;
}

dsql_status dsql_retry_check(const dsql_retry_options *o, dsql_error *err)
{
    if (!o)
        return DSQL_OK;
    if (o->cancelled && o->cancelled(o->cancel_arg))
        return dsql__error(err, DSQL_ECANCELLED, "cancelled by the caller");
    if (o->deadline_ms > 0 && dsql_monotonic_ms() >= o->deadline_ms)
        return dsql__error(err, DSQL_ETIMEOUT, "the deadline passed");
    return DSQL_OK;
}

static _Thread_local uint64_t rng_state;

/* Jitter needs spread, not secrecy: xorshift64* per thread. */
static double random01(void)
{
    if (rng_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                    (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b97f4a7c15ull;
        if (rng_state == 0)
            rng_state = 1;
    }
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

dsql_status dsql_retry_wait(const dsql_retry_options *o, unsigned retry, dsql_error *err)
{
    dsql_status st = dsql_retry_check(o, err);
    if (st != DSQL_OK || !o)
        return st;
    uint64_t left = dsql_retry_delay_us(o, retry, random01());
    if (o->deadline_ms > 0) {
        int64_t room_ms = o->deadline_ms - dsql_monotonic_ms();
        if (room_ms <= 0 || (uint64_t)room_ms * 1000u <= left)
            return dsql__error(err, DSQL_ETIMEOUT,
                               "the deadline comes before the next retry (wait %llu us, "
                               "%lld ms left)", (unsigned long long)left,
                               (long long)(room_ms > 0 ? room_ms : 0));
    }
    while (left > 0) {
        uint64_t step = o->cancelled && left > CANCEL_SLICE_US ? CANCEL_SLICE_US : left;
        sleep_us(step);
        left -= step;
        if (o->cancelled && o->cancelled(o->cancel_arg))
            return dsql__error(err, DSQL_ECANCELLED, "cancelled by the caller");
    }
    return DSQL_OK;
}

/* err says the loop stopped early (st, why) after done attempts, keeping
 * the last attempt's error after it; no SQLSTATE: the status is not the
 * server's. */
static dsql_status stopped(dsql_status st, const dsql_error *why, unsigned done,
                           dsql_error *err)
{
    if (!err)
        return st;
    char last[sizeof err->message];
    memcpy(last, err->message, sizeof last);
    last[sizeof last - 1] = '\0';
    err->status = st;
    err->sqlstate[0] = '\0';
    if (done == 0)
        memcpy(err->message, why->message, sizeof err->message);
    else
        snprintf(err->message, sizeof err->message, "%.150s after %u attempt%s; the last: %.300s",
                 why->message, done, done == 1 ? "" : "s", last);
    return st;
}

dsql_status dsql_retry_before_attempt(const dsql_retry_options *o, unsigned done,
                                      dsql_error *err)
{
    dsql_error why;
    dsql_status st = dsql_retry_check(o, &why);
    return st == DSQL_OK ? DSQL_OK : stopped(st, &why, done, err);
}

static void count_conflict(dsql_retry_result *r, dsql_conflict_kind kind)
{
    if (kind == DSQL_CONFLICT_NONE)
        kind = DSQL_CONFLICT_UNKNOWN; /* a conflict all the same */
    r->conflicts++;
    r->last_conflict = kind;
    if (kind == DSQL_CONFLICT_DATA)
        r->data_conflicts++;
    else if (kind == DSQL_CONFLICT_SCHEMA)
        r->schema_conflicts++;
    else
        r->unknown_conflicts++;
}

dsql_status dsql_retry_after_conflict(const dsql_retry_options *o, unsigned done,
                                      dsql_conflict_kind kind, dsql_retry_result *result,
                                      dsql_error *err)
{
    dsql_retry_options defaults;
    if (!o) {
        dsql_retry_options_init(&defaults);
        o = &defaults;
    }
    if (result)
        count_conflict(result, kind);
    if (done >= o->max_retries + 1u)
        return DSQL_ECONFLICT;
    dsql_error why;
    dsql_status st = dsql_retry_wait(o, done, &why);
    return st == DSQL_OK ? DSQL_OK : stopped(st, &why, done, err);
}
