/* pgserver: who is on the other end of a Unix-socket connection. File
 * permissions alone are not a policy (a directory made world-searchable
 * by mistake, a socket inherited by a child): a server that trusts local
 * clients checks the peer's uid on every connection. */
#ifndef PGSERVER_PEERCRED_H
#define PGSERVER_PEERCRED_H

#include <sys/types.h>

/* The uid of the process that connected fd (a Unix socket): 0 ok, -1
 * with errno set (not a Unix socket, no credentials). */
int pgs_peer_uid(int fd, uid_t *uid);

#endif
