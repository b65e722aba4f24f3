/* dsql-local: injected faults, for application tests (issue 17): commit
 * conflicts, connections cut after a commit, refused logins, latency. */
#ifndef DSQL_LOCAL_FAULTS_H
#define DSQL_LOCAL_FAULTS_H

#include <stddef.h>

typedef struct dl_faults {
    double conflict_rate;     /* write commits that fail with OC000 */
    double drop_after_commit; /* write commits applied, then the connection cut */
    double refuse_rate;       /* logins refused with the 53400 text */
    int latency_ms;           /* added to every client round trip */
} dl_faults;

/* Sets one fault by its option name without dashes ("conflict-rate",
 * "drop-after-commit", "refuse-connections", "latency") from text.
 * 0, or -1 with a message naming the problem in err. */
int dl_faults_set(dl_faults *f, const char *name, const char *value, char *err, size_t cap);
/* 1 with probability p (0..1). */
int dl_faults_roll(double p);

#endif
