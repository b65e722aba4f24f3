/* pgserver: raising the soft descriptor limit. Each client costs one
 * descriptor before login and two after (client + PostgreSQL), and the
 * usual soft limit of 1024 is far below what the hard limit allows. */
#include <sys/resource.h>

#include "fdlimit.h"

#define CEILING 1048576L /* the kernel's default fs.nr_open */

long pgs_fd_limit_raise(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)CEILING
                            ? (rlim_t)CEILING
                            : rl.rlim_max;
        if (want.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)CEILING)
        return CEILING;
    return (long)rl.rlim_cur;
}
