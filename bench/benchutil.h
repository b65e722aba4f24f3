/* Timing helpers shared by the benchmarks. */
#ifndef DSQL_BENCHUTIL_H
#define DSQL_BENCHUTIL_H

#include <stdlib.h>
#include <time.h>

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts samples in place; the value at the given percentile (0..100). */
static inline double percentile(double *samples, size_t n, unsigned pct)
{
    qsort(samples, n, sizeof samples[0], cmp_double);
    return samples[n * pct / 100 < n ? n * pct / 100 : n - 1];
}

#endif
