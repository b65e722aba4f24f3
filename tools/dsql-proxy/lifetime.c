/* dsql-proxy: DSQL's one-hour connection limit, said to the client.
 * DSQL closes every connection after an hour ("Cluster quotas and database
 * limits"). Nothing promises that the close comes with an ErrorResponse,
 * and it may fall inside a message; a client then sees only "server closed
 * the connection unexpectedly". So the proxy knows the limit
 * (--max-connection-duration, default 3600 s) and keeps time from the
 * moment it starts the upstream connection, before DSQL's own clock
 * starts:
 *   - in the last tenth of the limit (at most the last minute) the session
 *     is ended by the proxy at its first idle moment: every Query, Sync and
 *     FunctionCall the client sent answered by a ReadyForQuery, nothing
 *     half-sent either way. The client gets a FATAL (57P01) naming the
 *     limit, then the close. No query is cut and no answer is lost.
 *   - a session busy to the end is left to the upstream's own close, and
 *     when that comes inside the window between two messages without an
 *     ErrorResponse of its own, the client gets the same FATAL.
 * Following the framing costs a look at each message's 5-byte header as
 * it passes (frames.h); nothing is copied or kept. */
#include <stdio.h>
#include <time.h>

#include "session.h"
#include "wire.h"

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The window: the last tenth of the limit, at most a minute. */
static int64_t window_ms(const dp_options *o)
{
    int64_t limit = (int64_t)o->max_duration * 1000, w = limit / 10;

    return w > 60000 ? 60000 : w;
}

static int in_window(const dp_session *s)
{
    const dp_options *o = s->p->opt;

    return o->max_duration > 0 &&
           now_ms() - s->born_ms >= (int64_t)o->max_duration * 1000 - window_ms(o);
}

static int idle(const dp_session *s)
{
    return s->asked.seen == s->answered.seen && pgs_frames_between(&s->asked) &&
           pgs_frames_between(&s->answered);
}

static void goodbye(dp_session *s)
{
    unsigned char buf[400];
    char msg[300];
    size_t n;

    snprintf(msg, sizeof msg, "terminating connection: it reached Aurora DSQL's one-hour "
             "connection limit (dsql-proxy --max-connection-duration %d s); reconnect to "
             "continue", s->p->opt->max_duration);
    n = pgs_error_response(buf, sizeof buf, "57P01", msg);
    s->p->stats.duration_closes++;
    pgs_log_limited(&s->p->log_rl, "conn %lu: maximum connection duration reached, closing",
                    s->id);
    if (dp_relay_say(s->relay, buf, n) != 0)
        pgs_log("conn %lu: out of memory for the closing message", s->id);
    dp_session_close_client(s);
}

static void window_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_session *s = arg;

    (void)fd;
    (void)what;
    if (s->state != DP_RELAY)
        return;
    s->expiring = 1;
    if (idle(s))
        goodbye(s);
}

int dp_lifetime_start(dp_session *s)
{
    const dp_options *o = s->p->opt;
    int64_t left;
    struct timeval tv;

    pgs_frames_init(&s->asked, "QSF");
    pgs_frames_init(&s->answered, "Z");
    if (o->max_duration <= 0)
        return 0;
    left = s->born_ms + (int64_t)o->max_duration * 1000 - window_ms(o) - now_ms();
    if (left < 0)
        left = 0;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
    s->life_timer = evtimer_new(s->p->base, window_cb, s);
    return s->life_timer && evtimer_add(s->life_timer, &tv) == 0 ? 0 : -1;
}

void dp_lifetime_born(dp_session *s)
{
    s->born_ms = now_ms();
}

void dp_lifetime_follow(dp_session *s, const unsigned char *p, size_t n, int to_upstream)
{
    pgs_frames_feed(to_upstream ? &s->asked : &s->answered, p, n);
}

int dp_lifetime_check(dp_session *s)
{
    if (!s->expiring || !idle(s))
        return 0;
    goodbye(s);
    return 1;
}

int dp_lifetime_upstream_closed(dp_session *s)
{
    /* the upstream's own FATAL (its last message) already says why */
    if (!in_window(s) || !pgs_frames_between(&s->answered) || s->answered.last == 'E')
        return 0;
    goodbye(s);
    return 1;
}
