/* pgserver: the peer's uid from the kernel (SO_PEERCRED, Linux). */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <sys/socket.h>

#include "peercred.h"

int pgs_peer_uid(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -1;
    if (len != sizeof cred) {
        errno = EPROTO;
        return -1;
    }
    *uid = cred.uid;
    return 0;
}
