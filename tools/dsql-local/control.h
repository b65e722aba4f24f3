/* dsql-local set: changing a running server's injected faults. */
#ifndef DSQL_LOCAL_CONTROL_H
#define DSQL_LOCAL_CONTROL_H

#include <stddef.h>

#include "faults.h"

#define DL_REQUEST_NAME "faults.request"

/* Client side: asks the server of dir to set fault name to value and
 * waits until it has. Returns an exit status (messages on stderr). */
int dl_set(const char *dir, const char *name, const char *value);
/* Server side, on SIGUSR1: applies dir's request to f and removes it.
 * 0, or -1 with the problem in err (the request is removed either way). */
int dl_apply_request(const char *dir, dl_faults *f, char *err, size_t cap);

#endif
