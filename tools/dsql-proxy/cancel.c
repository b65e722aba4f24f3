/* dsql-proxy: CancelRequests. A client cancels with the key the proxy gave
 * it; the proxy finds that session and sends the upstream's own key over a
 * fresh TLS connection, as PostgreSQL expects. Cancels need no login, so
 * they are bounded: few in flight, a token bucket, keys compared in
 * constant time; an unknown key is dropped silently (the protocol gives
 * no answer either way). */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "session.h"
#include "wire.h"

typedef struct dp_cancel_job {
    dp_proxy *p;
    struct dp_cancel_job *prev, *next;
    dp_connect *connecting;
    struct bufferevent *bev;
    struct event *timer;
    unsigned char pkt[PGS_CANCEL_LEN];
} cancel_job;

static void job_free(cancel_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        j->p->cancel_jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    dp_connect_abort(j->connecting);
    if (j->bev)
        dp_upstream_free(j->bev);
    if (j->timer)
        event_free(j->timer);
    OPENSSL_cleanse(j->pkt, sizeof j->pkt);
    j->p->cancels_in_flight--;
    free(j);
}

static void job_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        job_free(arg); /* the server read it and closed */
}

static void job_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void job_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_free(arg);
}

static void job_connected(struct bufferevent *bev, const char *err, void *arg)
{
    cancel_job *j = arg;
    struct timeval five = {5, 0};

    j->connecting = NULL;
    if (!bev) {
        pgs_log_limited(&j->p->log_rl, "cancel request not forwarded: %s", err);
        job_free(j);
        return;
    }
    j->bev = bev;
    bufferevent_setcb(bev, job_read_cb, NULL, job_event_cb, j);
    if (bufferevent_write(bev, j->pkt, sizeof j->pkt) != 0 ||
        bufferevent_enable(bev, EV_READ | EV_WRITE) != 0 || evtimer_add(j->timer, &five) != 0)
        job_free(j);
}

static dp_session *find(dp_proxy *p, const unsigned char *key)
{
    dp_session *s;

    for (s = p->sessions; s; s = s->next)
        if (s->state == DP_RELAY && s->can_cancel && CRYPTO_memcmp(s->key, key, 8) == 0)
            return s;
    return NULL;
}

void dp_cancel_route(dp_proxy *p, const unsigned char *pkt)
{
    dp_session *s = find(p, pkt + 8);
    cancel_job *j;

    if (!s) {
        pgs_log_limited(&p->log_rl, "cancel request for no session of this proxy: dropped");
        return;
    }
    if (p->cancels_in_flight >= DP_CANCEL_IN_FLIGHT || !pgs_ratelimit_take(&p->cancel_rl)) {
        pgs_log_limited(&p->log_rl, "conn %lu: too many cancel requests: dropped", s->id);
        return;
    }
    j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->p = p;
    j->next = p->cancel_jobs;
    if (p->cancel_jobs)
        p->cancel_jobs->prev = j;
    p->cancel_jobs = j;
    p->cancels_in_flight++;
    memcpy(j->pkt, pkt, 8); /* length and code */
    memcpy(j->pkt + 8, s->up_key, 8);
    j->timer = evtimer_new(p->base, job_timeout_cb, j);
    if (j->timer)
        j->connecting = dp_connect_start(p, job_connected, j);
    if (!j->connecting) {
        job_free(j);
        return;
    }
    p->stats.cancels++;
    pgs_log("conn %lu: cancel request forwarded", s->id);
}

void dp_cancel_close_all(dp_proxy *p)
{
    while (p->cancel_jobs)
        job_free(p->cancel_jobs);
}
