/* libdsqlauth: retry options shared by every adapter (transactions and
 * single statements that retry optimistic-concurrency conflicts), with a
 * deadline and a cancel callback, and the one backoff schedule they use.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth).
 *
 * Schedule: retry n (n = 1 for the first retry) waits
 *     min(base_delay_us * 2^(n-1), max_delay_us) * U[1 - jitter, 1 + jitter]
 * A wait that would end at or after the deadline is not slept: the caller
 * stops with DSQL_ETIMEOUT at once. While waiting, the cancel callback is
 * asked at least every 10 ms. */
#ifndef DSQLAUTH_RETRY_H
#define DSQLAUTH_RETRY_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSQL_RETRY_DEFAULT_MAX_RETRIES 3u
#define DSQL_RETRY_MAX_RETRIES_LIMIT 100u
#define DSQL_RETRY_DEFAULT_BASE_DELAY_US 1000u
#define DSQL_RETRY_DEFAULT_MAX_DELAY_US 100000u
#define DSQL_RETRY_DEFAULT_JITTER 0.25

/* Fill with dsql_retry_options_init, then change what you need. */
typedef struct dsql_retry_options {
    int version;            /* DSQL_STRUCT_VERSION */
    unsigned max_retries;   /* retries after the first attempt, 0..100 (3);
                               0: never retry */
    uint32_t base_delay_us; /* first backoff (1000), doubling per retry */
    uint32_t max_delay_us;  /* backoff cap (100000) */
    double jitter;          /* 0..1 (0.25): each delay is scaled by a random
                               factor in [1 - jitter, 1 + jitter] */
    int64_t deadline_ms;    /* CLOCK_MONOTONIC milliseconds (dsql_monotonic_ms()
                               + budget); 0: none. Past it: DSQL_ETIMEOUT */
    int (*cancelled)(void *arg); /* NULL, or nonzero when the caller gave
                                    up: DSQL_ECANCELLED. Asked before each
                                    attempt and while waiting; from the
                                    calling thread */
    void *cancel_arg;       /* passed to cancelled */
} dsql_retry_options;

/* Fill *opts with the defaults above (version included, no deadline, no
 * cancel callback). NULL is allowed. */
DSQL_API void dsql_retry_options_init(dsql_retry_options *opts);

/* DSQL_OK when opts is usable (NULL is: the defaults), else DSQL_EINVAL
 * naming the field (prefix starts the message, e.g. "transaction options"). */
DSQL_API dsql_status dsql_retry_options_check(const dsql_retry_options *opts,
                                              const char *prefix, dsql_error *err);

/* CLOCK_MONOTONIC in milliseconds: the clock deadline_ms is read against. */
DSQL_API int64_t dsql_monotonic_ms(void);

/* The wait before retry number retry (1 = first) in microseconds, for a
 * uniform random u in [0, 1): the schedule above, without the deadline. */
DSQL_API uint64_t dsql_retry_delay_us(const dsql_retry_options *opts, unsigned retry, double u);

/* May work go on now? DSQL_OK; DSQL_ECANCELLED when opts->cancelled says
 * so; DSQL_ETIMEOUT when the deadline has passed. err is set only when the
 * answer is not DSQL_OK. opts NULL: DSQL_OK. */
DSQL_API dsql_status dsql_retry_check(const dsql_retry_options *opts, dsql_error *err);

/* Wait before retry number retry (1 = first): DSQL_OK after the wait;
 * DSQL_ETIMEOUT at once (no sleep) when the wait would reach the
 * deadline; DSQL_ECANCELLED as soon as the cancel callback says so. */
DSQL_API dsql_status dsql_retry_wait(const dsql_retry_options *opts, unsigned retry,
                                     dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
