/* What one more process in the path costs on this machine, with no TLS and
 * no PostgreSQL: a 32-byte message sent to a second process over a Unix
 * socket and answered, the round trip a relay adds to each transaction
 * (the relay is woken once each way). bench-proxy prints it next to the
 * latency the proxy and PgBouncer add, as the floor for any relay. It
 * also prints the CPU the echo process spent per round trip (one blocking
 * read and one write): a relay does that work twice per transaction, once
 * per side, before any TLS or event loop. */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "benchutil.h"

#define ROUND_TRIPS 20000
#define REPEATS 5

static int echo_forever(int fd)
{
    char buf[64];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            return 1;
    return n < 0;
}

int main(void)
{
    double us[REPEATS], median, echo_us;
    struct rusage ru;
    char msg[32] = {0}, back[64];
    int sv[2], r, i, status;
    pid_t child;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("hop-bench: socketpair");
        return 1;
    }
    child = fork();
    if (child < 0) {
        perror("hop-bench: fork");
        return 1;
    }
    if (child == 0) {
        close(sv[0]);
        _exit(echo_forever(sv[1]));
    }
    close(sv[1]);
    for (r = 0; r < REPEATS; r++) {
        double t0 = now_ns();
        for (i = 0; i < ROUND_TRIPS; i++)
            if (write(sv[0], msg, sizeof msg) != (ssize_t)sizeof msg ||
                read(sv[0], back, sizeof back) != (ssize_t)sizeof msg) {
                perror("hop-bench: echo");
                return 1;
            }
        us[r] = (now_ns() - t0) / ROUND_TRIPS / 1e3;
    }
    close(sv[0]);
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "hop-bench: the echo process failed\n");
        return 1;
    }
    if (getrusage(RUSAGE_CHILDREN, &ru) != 0) {
        perror("hop-bench: getrusage");
        return 1;
    }
    echo_us = ((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) / (REPEATS * ROUND_TRIPS);
    median = percentile(us, REPEATS, 50); /* sorts: us[0] is then the least */
    printf("one process hop: a 32-byte Unix-socket round trip to a second process, "
           "median %.1f us (%d x %d round trips, from %.1f to %.1f); "
           "the echo process's CPU %.1f us per round trip\n",
           median, REPEATS, ROUND_TRIPS, us[0], us[REPEATS - 1], echo_us);
    return 0;
}
