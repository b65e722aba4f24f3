/* libdsqlauth: retry options shared by every adapter (transactions and
 * single statements that retry optimistic-concurrency conflicts), with a
 * deadline and a cancel callback, the one backoff schedule they use, and
 * the steps of the retry loop with what it reports (attempts, conflicts by
 * kind), so every adapter's loop behaves and reports alike.
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
#include "conflict.h"

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

/* ---- One retry loop, the same in every adapter ----
 *
 * What a retried body (a transaction callback) learns about the attempt it
 * runs in. The libpq adapter calls it dsql_pq_txn_info. */
typedef struct dsql_retry_info {
    unsigned attempt;          /* 1 for the first run, 2 for the first retry... */
    unsigned max_attempts;     /* 1 + max_retries */
    dsql_status previous;      /* why the previous attempt failed; DSQL_OK on 1 */
    char previous_sqlstate[6]; /* its SQLSTATE ("40001"), "" when none */
    dsql_conflict_kind previous_conflict; /* the previous attempt's conflict
                                             kind (DSQL_CONFLICT_DATA for
                                             OC000, _SCHEMA for OC001, ...);
                                             DSQL_CONFLICT_NONE when it was
                                             no conflict, or on attempt 1 */
} dsql_retry_info;

/* What one call that retries did. The libpq adapter calls it
 * dsql_pq_txn_result; the ODBC adapter uses this name. */
typedef struct dsql_retry_result {
    unsigned attempts;   /* runs of the body (>= 1 unless it never started) */
    unsigned conflicts;  /* attempts that ended in a conflict */
    unsigned reconnects; /* attempts retried on a fresh connection because
                            the connection broke before COMMIT (pools) */
    dsql_conflict_kind last_conflict; /* kind of the last conflict of the
                                         call (DSQL_CONFLICT_NONE: none) */
    unsigned data_conflicts;    /* conflicts of each kind: OC000 */
    unsigned schema_conflicts;  /* OC001 (a DDL made the catalog stale) */
    unsigned unknown_conflicts; /* 40001 without an OCC code */
} dsql_retry_result;

/* Before attempt done + 1 of a retry loop: DSQL_OK, or DSQL_ETIMEOUT /
 * DSQL_ECANCELLED (dsql_retry_check) when the loop must stop. Then err
 * (when not NULL) gets that status, no SQLSTATE, and the reason followed by
 * the last attempt's error that err held ("the deadline passed after 2
 * attempts; the last: ..."); with done 0, the reason alone. */
DSQL_API dsql_status dsql_retry_before_attempt(const dsql_retry_options *opts, unsigned done,
                                               dsql_error *err);

/* After attempt done ended in a conflict of this kind (err holds the
 * attempt's error): counts it in result (when not NULL; DSQL_CONFLICT_NONE
 * counts as DSQL_CONFLICT_UNKNOWN) and waits for the next attempt
 * (dsql_retry_wait). DSQL_OK: run attempt done + 1. DSQL_ECONFLICT: no
 * retry is left (1 + max_retries attempts ran; err unchanged).
 * DSQL_ETIMEOUT / DSQL_ECANCELLED: the deadline or the caller ended the
 * wait (err as in dsql_retry_before_attempt). opts NULL: the defaults. */
DSQL_API dsql_status dsql_retry_after_conflict(const dsql_retry_options *opts, unsigned done,
                                               dsql_conflict_kind kind,
                                               dsql_retry_result *result, dsql_error *err);

#ifdef __cplusplus
}
#endif
#endif
