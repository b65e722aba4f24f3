/* pgserver: the startup packet a client sends first (PostgreSQL protocol
 * 3.x): length, version, then NUL-terminated name/value pairs closed by
 * one more NUL. */
#ifndef PGSERVER_STARTUP_H
#define PGSERVER_STARTUP_H

#include <stddef.h>

/* 1 when pkt (len bytes, its length word included) is well formed. */
int pgs_startup_valid(const unsigned char *pkt, size_t len);
/* The value of parameter name, or NULL when absent or the packet is
 * malformed. */
const char *pgs_startup_param(const unsigned char *pkt, size_t len, const char *name);
/* A parameter named twice would let the server and PostgreSQL read
 * different values (the gateway checks the first `user`, PostgreSQL uses
 * the last), so such packets are refused. Returns 1 and sets *name to a
 * repeated parameter, 0 when every name is unique, -1 when out of memory
 * or the packet is malformed. O(n log n) in the number of parameters. */
int pgs_startup_duplicate(const unsigned char *pkt, size_t len, const char **name);

#endif
