/* dsql-local set and restart: requests to a running server. */
#ifndef DSQL_LOCAL_CONTROL_H
#define DSQL_LOCAL_CONTROL_H

#include <stddef.h>

#include "faults.h"

#define DL_REQUEST_NAME "faults.request"

/* Client side: asks the server of dir to set fault name to value and
 * waits until it has. Returns an exit status (messages on stderr). */
int dl_set(const char *dir, const char *name, const char *value);
/* Client side: asks the server of dir to restart its gateways (every
 * connection is cut; the same ports, keys, certificates and database
 * serve again) and waits until it has. Returns an exit status. */
int dl_restart(const char *dir);
/* Server side, on SIGUSR1: applies dir's request to f and removes it; a
 * restart request sets *restart and stays until dl_request_done (its
 * removal is the answer). 0, or -1 with the problem in err (the request
 * is removed). */
int dl_apply_request(const char *dir, dl_faults *f, int *restart, char *err, size_t cap);
void dl_request_done(const char *dir);

#endif
