/* dsql-local: fault settings and the dice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"

static int parse_prob(const char *name, const char *s, double *out, char *err, size_t cap)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= 0.0 && v <= 1.0)) {
        snprintf(err, cap, "%s '%s' is not a probability in 0..1", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

int dl_faults_set(dl_faults *f, const char *name, const char *value, char *err, size_t cap)
{
    if (strcmp(name, "conflict-rate") == 0)
        return parse_prob(name, value, &f->conflict_rate, err, cap);
    if (strcmp(name, "drop-after-commit") == 0)
        return parse_prob(name, value, &f->drop_after_commit, err, cap);
    if (strcmp(name, "refuse-connections") == 0)
        return parse_prob(name, value, &f->refuse_rate, err, cap);
    if (strcmp(name, "latency") == 0) {
        char *end;
        long v;
        errno = 0;
        v = strtol(value, &end, 10);
        if (!*value || *end || errno || v < 0 || v > 60000) {
            snprintf(err, cap, "latency '%s' is not a number of milliseconds in 0..60000", value);
            return -1;
        }
        f->latency_ms = (int)v;
        return 0;
    }
    snprintf(err, cap, "unknown fault '%s' (conflict-rate, drop-after-commit, "
             "refuse-connections, latency)", name);
    return -1;
}

int dl_faults_roll(double p)
{
    /* not for secrets: which commit fails only has to look random */
    return p > 0.0 && (p >= 1.0 || (double)random() / ((double)RAND_MAX + 1.0) < p);
}
