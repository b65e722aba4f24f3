/* pgserver: the descriptor limit a server lives within. */
#ifndef PGSERVER_FDLIMIT_H
#define PGSERVER_FDLIMIT_H

/* Raises the soft RLIMIT_NOFILE to the hard one (at most 1,048,576) and
 * returns the soft limit then in force (-1 when unknown). */
long pgs_fd_limit_raise(void);

#endif
