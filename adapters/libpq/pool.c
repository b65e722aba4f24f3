/* libpq adapter: a thread-safe connection pool.
 *
 * One mutex guards everything. Slots are fixed (max_size of them); idle
 * slots sit in a ring used as a stack (the most recently released on top,
 * so the bottom is the longest idle and goes first on idle timeout).
 * Waiters queue in FIFO order; a released connection is handed straight to
 * the first waiter, and a freed slot (a closed connection) wakes the first
 * waiter so it can open a replacement. Network work (connect, reset on
 * release, PQfinish, health checks) always happens outside the mutex.
 * Uses only the public libdsqlauth API plus libpq. */
#include "dsqlauth/adapter.h"
#include "poll_wait.h"
#include "pool_internal.h"
#include "txn_options.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define fail dsql_error_set /* the adapter kit's */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define MS ((int64_t)1000000)

/* ---- types ---- */

typedef enum slot_state { SLOT_FREE, SLOT_OPENING, SLOT_IDLE, SLOT_IN_USE } slot_state;

typedef struct slot {
    PGconn *conn;
    slot_state state;
    int64_t expires;    /* monotonic ns; INT64_MAX: never */
    int64_t idle_since; /* monotonic ns */
    dsql__pq_reset_memo reset; /* what the default reset learned of conn */
} slot;

typedef struct waiter {
    struct waiter *next, *prev;
    int queued;
    int wake;      /* a slot was freed or the pool closed: look again */
    slot *handed;  /* a connection handed over (state IN_USE) */
    pthread_cond_t cond; /* sync waiters */
    int pipe_r, pipe_w;  /* async waiters (-1 for sync) */
} waiter;

typedef enum close_reason {
    CLOSE_NONE = 0,
    CLOSE_LIFETIME,
    CLOSE_IDLE,
    CLOSE_BROKEN,
    CLOSE_DIRTY,
    CLOSE_POOL
} close_reason;

struct dsql_pq_pool {
    pthread_mutex_t mu;
    pthread_condattr_t condattr;
    dsql_pq_pool_options opts;
    const dsql__pq_reset_step *reset_steps; /* the default reset; NULL: */
    unsigned n_reset_steps;
    char *reset_query;     /* the caller's reset; NULL: none */
    char *rollback_query;  /* "ROLLBACK" or "ROLLBACK; <reset>" */
    char *txn_begin;
    const dsql_pq_connector_vtable *vt;
    void *self;
    int owns_default_vt;

    slot *slots;
    unsigned nslots;
    unsigned *ring; /* idle slot indices */
    unsigned ring_head, n_idle;
    unsigned n_in_use, n_opening;
    waiter *wq_head, *wq_tail;
    unsigned n_waiting;
    int closed;
    uint64_t rng;
    dsql_pq_pool_stats st;

    pthread_t thread;
    int thread_started, thread_stop;
    pthread_cond_t thread_cond;
};

/* ---- default connector: the dsql_pq_connect family ---- */

typedef struct default_connector {
    dsql_config *cfg;
    dsql_token_provider *provider;
} default_connector;

static PGconn *dc_connect(void *self, dsql_error *err)
{
    default_connector *d = self;
    return dsql_pq_connect(d->cfg, d->provider, err);
}

static void *dc_start(void *self, dsql_error *err)
{
    default_connector *d = self;
    return dsql_pq_connect_start(d->cfg, d->provider, err);
}

static dsql_pq_poll_status dc_poll(void *self, void *attempt, int *fd, int *timeout_ms,
                                   dsql_error *err)
{
    (void)self;
    return dsql_pq_connect_poll(attempt, fd, timeout_ms, err);
}

static PGconn *dc_finish(void *self, void *attempt)
{
    (void)self;
    return dsql_pq_connect_finish(attempt);
}

static void dc_destroy(void *self)
{
    default_connector *d = self;
    if (d) {
        dsql_config_free(d->cfg);
        free(d);
    }
}

static const dsql_pq_connector_vtable default_vt = {
    DSQL_STRUCT_VERSION, dc_connect, dc_start, dc_poll, dc_finish, dc_destroy,
};

/* ---- options ---- */

void dsql_pq_pool_options_init(dsql_pq_pool_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = DSQL_STRUCT_VERSION;
    o->min_size = 0;
    o->max_size = DSQL_PQ_POOL_DEFAULT_MAX_SIZE;
    o->acquire_timeout_ms = DSQL_PQ_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS;
    o->max_lifetime_ms = DSQL_PQ_POOL_DEFAULT_MAX_LIFETIME_MS;
    o->lifetime_jitter = DSQL_PQ_POOL_DEFAULT_LIFETIME_JITTER;
    o->idle_timeout_ms = DSQL_PQ_POOL_DEFAULT_IDLE_TIMEOUT_MS;
    o->check_idle_ms = DSQL_PQ_POOL_DEFAULT_CHECK_IDLE_MS;
    o->ping_idle_ms = 0;
    o->reset_query = NULL;
    o->background_thread = 0;
    o->maintain_interval_ms = 1000;
    dsql_pq_txn_options_init(&o->txn);
    o->connector = NULL;
    o->connector_self = NULL;
}

const dsql_pq_txn_options *dsql__pq_pool_txn_defaults(const dsql_pq_pool *pool)
{
    return &pool->opts.txn;
}

/* ---- locked helpers ---- */

static int64_t new_expiry_locked(dsql_pq_pool *p, int64_t now)
{
    if (p->opts.max_lifetime_ms == 0)
        return INT64_MAX;
    /* xorshift64 under the mutex */
    uint64_t x = p->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    double u = (double)(x >> 11) / 9007199254740992.0;
    double life = (double)p->opts.max_lifetime_ms * (1.0 - p->opts.lifetime_jitter * u);
    return now + (int64_t)(life * (double)MS);
}

static unsigned size_locked(const dsql_pq_pool *p)
{
    return p->n_idle + p->n_in_use + p->n_opening;
}

/* A free slot reserved for opening (OPENING), or NULL when the pool is full. */
static slot *reserve_locked(dsql_pq_pool *p)
{
    if (size_locked(p) >= p->opts.max_size)
        return NULL;
    for (unsigned i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        if (s->state == SLOT_FREE) {
            s->state = SLOT_OPENING;
            s->conn = NULL;
            p->n_opening++;
            return s;
        }
    }
    return NULL;
}

static void ring_push_top(dsql_pq_pool *p, slot *s)
{
    p->ring[(p->ring_head + p->n_idle) % p->nslots] = (unsigned)(s - p->slots);
    p->n_idle++;
}

static slot *ring_pop_top(dsql_pq_pool *p)
{
    p->n_idle--;
    return &p->slots[p->ring[(p->ring_head + p->n_idle) % p->nslots]];
}

static slot *ring_bottom(dsql_pq_pool *p)
{
    return &p->slots[p->ring[p->ring_head]];
}

static slot *ring_pop_bottom(dsql_pq_pool *p)
{
    slot *s = &p->slots[p->ring[p->ring_head]];
    p->ring_head = (p->ring_head + 1) % p->nslots;
    p->n_idle--;
    return s;
}

static void count_close_locked(dsql_pq_pool *p, close_reason r)
{
    switch (r) {
    case CLOSE_LIFETIME: p->st.closed_lifetime++; break;
    case CLOSE_IDLE: p->st.closed_idle++; break;
    case CLOSE_BROKEN: p->st.closed_broken++; break;
    case CLOSE_DIRTY: p->st.closed_dirty++; break;
    case CLOSE_POOL: p->st.closed_pool++; break;
    case CLOSE_NONE: break;
    }
}

static void waiter_signal(waiter *w)
{
    if (w->pipe_w >= 0) {
        ssize_t n;
        do
            n = write(w->pipe_w, "x", 1);
        while (n < 0 && errno == EINTR);
        /* EAGAIN: the pipe is full, so it is readable already */
    } else {
        pthread_cond_signal(&w->cond);
    }
}

static void waiter_enqueue_locked(dsql_pq_pool *p, waiter *w)
{
    w->next = NULL;
    w->prev = p->wq_tail;
    if (p->wq_tail)
        p->wq_tail->next = w;
    else
        p->wq_head = w;
    p->wq_tail = w;
    w->queued = 1;
    p->n_waiting++;
}

static void waiter_dequeue_locked(dsql_pq_pool *p, waiter *w)
{
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->wq_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->wq_tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = 0;
    p->n_waiting--;
}

/* A slot was freed: let the first waiter look again (it may open one). */
static void wake_one_locked(dsql_pq_pool *p)
{
    waiter *w = p->wq_head;
    if (w) {
        waiter_dequeue_locked(p, w);
        w->wake = 1;
        waiter_signal(w);
    }
}

/* Drop slot s: IN_USE, OPENING (its connection NULL: a reservation given
 * up), or IDLE already popped off the ring. Returns the connection, the
 * caller's to PQfinish outside the mutex. */
static PGconn *drop_slot_locked(dsql_pq_pool *p, slot *s, close_reason r)
{
    PGconn *c = s->conn;
    if (s->state == SLOT_IN_USE)
        p->n_in_use--;
    else if (s->state == SLOT_OPENING)
        p->n_opening--;
    s->conn = NULL;
    s->state = SLOT_FREE;
    count_close_locked(p, r);
    wake_one_locked(p);
    return c;
}

/* A healthy connection becomes available: hand it to the first waiter, or
 * put it on top of the idle stack. s is IN_USE or OPENING on entry. */
static void make_available_locked(dsql_pq_pool *p, slot *s, int64_t now)
{
    if (s->state == SLOT_OPENING) {
        p->n_opening--;
        p->n_in_use++;
        s->state = SLOT_IN_USE;
    }
    waiter *w = p->wq_head;
    if (w) {
        waiter_dequeue_locked(p, w);
        w->handed = s; /* stays IN_USE */
        waiter_signal(w);
        return;
    }
    p->n_in_use--;
    s->state = SLOT_IDLE;
    s->idle_since = now;
    ring_push_top(p, s);
}

/* ---- health and reset (outside the mutex; the caller owns the slot) ---- */

static void drain_notifies(PGconn *c)
{
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL)
        PQfreemem(n);
}

/* 1 when the connection's socket has input (or is closed). */
static int socket_readable(PGconn *c)
{
    int fd = PQsocket(c);
    if (fd < 0)
        return 1;
    struct pollfd pfd = {fd, POLLIN, 0};
    int r;
    do
        r = poll(&pfd, 1, 0);
    while (r < 0 && errno == EINTR);
    return r != 0;
}

/* What conn_healthy() may do beyond the socket check. */
typedef enum ping_mode {
    PING_NEVER,    /* no round trip: input on the socket gives it up */
    PING_ON_INPUT, /* a round trip after input on the socket */
    PING_ALWAYS    /* a round trip in any case */
} ping_mode;

/* 1 when the idle connection c looks usable. check_socket: poll its socket
 * first. Input that arrives on an idle connection is usually the server's
 * goodbye (a FATAL ErrorResponse, which libpq only passes to the notice
 * processor) with the close right behind it, but it can be a harmless
 * notice or parameter status: after any, the connection must answer a
 * round trip (unless PING_NEVER: then it is given up). */
static int conn_healthy(PGconn *c, int check_socket, ping_mode ping)
{
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
        return 0;
    int unsolicited = 0;
    if (check_socket) {
        int rounds = 0;
        while (socket_readable(c)) {
            unsolicited = 1;
            if (PQsocket(c) < 0 || ++rounds > 8 || !PQconsumeInput(c) ||
                PQstatus(c) != CONNECTION_OK)
                return 0;
            drain_notifies(c);
        }
        if (PQisBusy(c))
            return 0;
    }
    if (unsolicited && ping == PING_NEVER)
        return 0;
    if (unsolicited || ping == PING_ALWAYS) {
        PGresult *r = PQexec(c, "");
        int ok = r && PQresultStatus(r) == PGRES_EMPTY_QUERY;
        PQclear(r);
        if (!ok || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
            return 0;
    }
    return 1;
}

/* Run the reset (after a ROLLBACK when in_txn): the default steps, or
 * the caller's reset query. 1 when it succeeded. */
static int reset_conn(const dsql_pq_pool *p, slot *s, int in_txn)
{
    PGconn *c = s->conn;
    if (p->reset_steps)
        return dsql__pq_reset_run(c, p->reset_steps, p->n_reset_steps, in_txn, &s->reset) == 0;
    const char *q = in_txn ? p->rollback_query : p->reset_query;
    if (!q)
        return 1;
    PGresult *r = PQexec(c, q);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

/* Bring a returned connection back to a clean idle state, or say why not.
 * A reset that fails closes it: it is never handed out half reset. */
static close_reason clean_conn(const dsql_pq_pool *p, slot *s)
{
    PGconn *c = s->conn;
    if (PQstatus(c) != CONNECTION_OK)
        return CLOSE_BROKEN;
#ifdef LIBPQ_HAS_PIPELINING
    if (PQpipelineStatus(c) != PQ_PIPELINE_OFF)
        return CLOSE_DIRTY;
#endif
    if (PQisnonblocking(c) && PQsetnonblocking(c, 0) != 0)
        return CLOSE_DIRTY;
    int in_txn;
    switch (PQtransactionStatus(c)) {
    case PQTRANS_IDLE:
        if (PQisBusy(c))
            return CLOSE_DIRTY;
        in_txn = 0;
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        if (PQisBusy(c))
            return CLOSE_DIRTY;
        in_txn = 1;
        break;
    case PQTRANS_ACTIVE: /* a command still running or results unread */
        return CLOSE_DIRTY;
    default:
        return CLOSE_BROKEN;
    }
    int ok = reset_conn(p, s, in_txn);
    if (PQstatus(c) != CONNECTION_OK)
        return CLOSE_BROKEN;
    if (!ok)
        return CLOSE_DIRTY;
    drain_notifies(c);
    if (PQstatus(c) != CONNECTION_OK)
        return CLOSE_BROKEN;
    return PQtransactionStatus(c) == PQTRANS_IDLE ? CLOSE_NONE : CLOSE_DIRTY;
}

/* ---- creation ---- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void *maintenance_thread(void *arg);

static void pool_destroy(dsql_pq_pool *p)
{
    if (p->vt && p->vt->destroy)
        p->vt->destroy(p->self);
    pthread_condattr_destroy(&p->condattr);
    pthread_mutex_destroy(&p->mu);
    free(p->reset_query);
    free(p->rollback_query);
    free(p->txn_begin);
    free(p->slots);
    free(p->ring);
    free(p);
}

/* dsql_pq_pool_new, step 1: the options make sense. DSQL_EINVAL naming the
 * option otherwise. */
static dsql_status pool_options_check(const dsql_pq_pool_options *o, const dsql_config *cfg,
                                      dsql_error *err)
{
    const dsql_pq_connector_vtable *cvt = o->connector;
    if (o->version != DSQL_STRUCT_VERSION)
        return fail(err, DSQL_EINVAL,
                    "pool options: version %d is not %d (use dsql_pq_pool_options_init)",
                    o->version, DSQL_STRUCT_VERSION);
    if (cvt && (cvt->version != DSQL_STRUCT_VERSION || !cvt->connect))
        return fail(err, DSQL_EINVAL,
                    "pool options: connector needs version %d and a connect function",
                    DSQL_STRUCT_VERSION);
    if (cvt && (cvt->connect_start || cvt->connect_poll || cvt->connect_finish) &&
        !(cvt->connect_start && cvt->connect_poll && cvt->connect_finish))
        return fail(err, DSQL_EINVAL, "pool options: connector: connect_start, connect_poll "
                                      "and connect_finish go together");
    if (o->max_size < 1 || o->max_size > 100000)
        return fail(err, DSQL_EINVAL, "pool options: max_size %u is not in 1..100000",
                    o->max_size);
    if (o->min_size > o->max_size)
        return fail(err, DSQL_EINVAL, "pool options: min_size %u is above max_size %u",
                    o->min_size, o->max_size);
    if (o->acquire_timeout_ms > INT_MAX)
        return fail(err, DSQL_EINVAL, "pool options: acquire_timeout_ms is above %d", INT_MAX);
    if (!(o->lifetime_jitter >= 0.0 && o->lifetime_jitter <= 1.0))
        return fail(err, DSQL_EINVAL, "pool options: lifetime_jitter is not in 0..1");
    if (o->background_thread && o->maintain_interval_ms == 0)
        return fail(err, DSQL_EINVAL,
                    "pool options: maintain_interval_ms is 0 with background_thread");
    if (!cvt && !cfg)
        return fail(err, DSQL_EINVAL, "configuration is NULL (and no connector given)");
    return dsql__pq_txn_options_check(&o->txn, err);
}

/* Step 2: the pool and its lock, owning the options' connector (which
 * pool_destroy destroys from then on). NULL with err set on failure; the
 * connector is then still the caller's. */
static dsql_pq_pool *pool_alloc(const dsql_pq_pool_options *o, dsql_error *err)
{
    dsql_pq_pool *p = calloc(1, sizeof *p);
    if (!p) {
        fail(err, DSQL_ENOMEM, "out of memory creating the pool");
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        fail(err, DSQL_ENOMEM, "cannot create the pool mutex");
        return NULL;
    }
    if (pthread_condattr_init(&p->condattr) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        fail(err, DSQL_ENOMEM, "cannot create the pool condition attributes");
        return NULL;
    }
    p->vt = o->connector;
    p->self = o->connector_self;
    pthread_condattr_setclock(&p->condattr, CLOCK_MONOTONIC);
    p->opts = *o;
    p->opts.connector = NULL;
    p->opts.connector_self = NULL;
    p->opts.txn.begin = NULL;
    p->opts.reset_query = NULL;
    p->nslots = o->max_size;
    p->rng = (uint64_t)now_ns() ^ (uint64_t)(uintptr_t)p ^ 0x2545f4914f6cdd1dull;
    if (p->rng == 0)
        p->rng = 1;
    p->st.version = DSQL_STRUCT_VERSION;
    return p;
}

/* Step 3: the pool's own copies (reset statements, BEGIN text) and its
 * slots. 0 when out of memory. */
static int pool_take_options(dsql_pq_pool *p, const dsql_pq_pool_options *o)
{
    const char *reset = o->reset_query ? o->reset_query : DSQL_PQ_POOL_DEFAULT_RESET_QUERY;
    int oom = 0;
    if (strcmp(reset, DSQL_PQ_POOL_DEFAULT_RESET_QUERY) == 0) {
        p->reset_steps = dsql__pq_reset_default_steps(&p->n_reset_steps);
    } else if (*reset) {
        p->reset_query = dup_str(reset);
        size_t n = strlen("ROLLBACK; ") + strlen(reset) + 1;
        p->rollback_query = malloc(n);
        if (p->rollback_query)
            snprintf(p->rollback_query, n, "ROLLBACK; %s", reset);
        oom |= !p->reset_query || !p->rollback_query;
    } else {
        p->rollback_query = dup_str("ROLLBACK");
        oom |= !p->rollback_query;
    }
    if (o->txn.begin) {
        p->txn_begin = dup_str(o->txn.begin);
        p->opts.txn.begin = p->txn_begin;
        oom |= !p->txn_begin;
    }
    p->slots = calloc(p->nslots, sizeof *p->slots);
    p->ring = calloc(p->nslots, sizeof *p->ring);
    if (oom || !p->slots || !p->ring)
        return 0;
    for (unsigned i = 0; i < p->nslots; i++) {
        p->slots[i].state = SLOT_FREE;
        p->slots[i].expires = INT64_MAX;
    }
    return 1;
}

/* Step 4 (no connector given): connect with dsql_pq_connect over the pool's
 * own resolved copy of cfg. */
static dsql_status pool_default_connector(dsql_pq_pool *p, const dsql_config *cfg,
                                          dsql_token_provider *provider, dsql_error *err)
{
    default_connector *d = calloc(1, sizeof *d);
    if (!d)
        return fail(err, DSQL_ENOMEM, "out of memory creating the pool");
    d->provider = provider;
    if (!(d->cfg = dsql_config_dup(cfg, err))) {
        free(d);
        return err ? err->status : DSQL_ENOMEM;
    }
    p->vt = &default_vt; /* pool_destroy frees d from here on */
    p->self = d;
    return dsql_config_resolve(d->cfg, err);
}

/* Step 5: the first min_size connections and the maintenance thread. On
 * failure the caller closes and destroys the pool. */
static dsql_status pool_start(dsql_pq_pool *p, dsql_error *err)
{
    dsql_status st;
    if (p->opts.min_size > 0 && (st = dsql_pq_pool_maintain(p, NULL, err)) != DSQL_OK)
        return st;
    if (!p->opts.background_thread)
        return DSQL_OK;
    if (pthread_cond_init(&p->thread_cond, &p->condattr) != 0)
        return fail(err, DSQL_ENOMEM, "cannot create the maintenance condition variable");
    if (pthread_create(&p->thread, NULL, maintenance_thread, p) != 0) {
        pthread_cond_destroy(&p->thread_cond);
        return fail(err, DSQL_ENOMEM, "cannot start the maintenance thread");
    }
    p->thread_started = 1;
    return DSQL_OK;
}

dsql_pq_pool *dsql_pq_pool_new(const dsql_config *cfg, dsql_token_provider *provider,
                               const dsql_pq_pool_options *opts, dsql_error *err)
{
    dsql_pq_pool_options o;
    if (opts)
        o = *opts;
    else
        dsql_pq_pool_options_init(&o);
    /* The connector's self is ours from here on, also on failure: destroyed
     * here until the pool owns it, by pool_destroy after. */
    dsql_pq_pool *p = NULL;
    if (pool_options_check(&o, cfg, err) != DSQL_OK || !(p = pool_alloc(&o, err))) {
        const dsql_pq_connector_vtable *cvt = o.connector;
        if (cvt && cvt->version == DSQL_STRUCT_VERSION && cvt->destroy)
            cvt->destroy(o.connector_self);
        return NULL;
    }
    if (!pool_take_options(p, &o)) {
        pool_destroy(p);
        fail(err, DSQL_ENOMEM, "out of memory creating the pool");
        return NULL;
    }
    if (!p->vt && pool_default_connector(p, cfg, provider, err) != DSQL_OK) {
        pool_destroy(p);
        return NULL;
    }
    if (pool_start(p, err) != DSQL_OK) {
        dsql_pq_pool_close(p);
        pool_destroy(p);
        return NULL;
    }
    return p;
}

void dsql__pq_pool_set_reset_steps(dsql_pq_pool *p, const dsql__pq_reset_step *steps,
                                   unsigned n)
{
    pthread_mutex_lock(&p->mu);
    p->reset_steps = steps;
    p->n_reset_steps = n;
    pthread_mutex_unlock(&p->mu);
}

/* ---- acquire / release ---- */

/* The connector's answer c for the OPENING slot s. Open: it goes into s
 * (still OPENING) and DSQL_OK comes back with the mutex locked. Not: the
 * slot is freed, and the status (e says why) comes back with the mutex
 * unlocked. */
static dsql_status open_done(dsql_pq_pool *p, slot *s, PGconn *c, dsql_error *e)
{
    if (c && PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = NULL;
        fail(e, DSQL_ENETWORK, "the connector returned a connection that is not open");
    }
    pthread_mutex_lock(&p->mu);
    if (!c) {
        p->st.open_failures++;
        drop_slot_locked(p, s, CLOSE_NONE);
        pthread_mutex_unlock(&p->mu);
        if (e->status == DSQL_OK)
            fail(e, DSQL_EINTERNAL, "the connector failed without saying why");
        return e->status;
    }
    s->conn = c;
    s->expires = new_expiry_locked(p, now_ns());
    s->reset = (dsql__pq_reset_memo){0, 0};
    p->st.opened++;
    return DSQL_OK;
}

/* Open a connection into the OPENING slot s (blocking), as open_done. */
static dsql_status open_into(dsql_pq_pool *p, slot *s, dsql_error *err)
{
    dsql_error local = {0}; /* read if the connector fails silently */
    dsql_error *e = err ? err : &local;
    return open_done(p, s, p->vt->connect(p->self, e), e);
}

/* The connector's non-blocking trio driven with poll(2), abandoned as soon
 * as until says stop (its status in e). */
static PGconn *connect_until(dsql_pq_pool *p, const dsql_retry_options *until, dsql_error *e)
{
    void *a = p->vt->connect_start(p->self, e);
    if (!a)
        return NULL;
    for (;;) {
        int fd = -1, tmo = -1;
        dsql_pq_poll_status st = p->vt->connect_poll(p->self, a, &fd, &tmo, e);
        if (st == DSQL_PQ_POLL_OK || st == DSQL_PQ_POLL_FAILED)
            return p->vt->connect_finish(p->self, a);
        if (dsql_retry_check(until, e) != DSQL_OK) {
            PQfinish(p->vt->connect_finish(p->self, a));
            return NULL;
        }
        struct pollfd pf = {fd, st == DSQL_PQ_POLL_READING ? POLLIN : POLLOUT, 0};
        int wait = dsql__pq_wait_ms(until, tmo), r;
        do
            r = poll(&pf, fd < 0 ? 0 : 1, wait);
        while (r < 0 && errno == EINTR);
    }
}

/* open_into, but a connection that is still opening when until's deadline
 * passes or its cancel callback fires is abandoned (with the connector's
 * non-blocking trio; without it the blocking connect runs to its end). */
static dsql_status open_into_until(dsql_pq_pool *p, slot *s, const dsql_retry_options *until,
                                   dsql_error *err)
{
    if (!until || (!until->deadline_ms && !until->cancelled) || !p->vt->connect_start ||
        !p->vt->connect_poll || !p->vt->connect_finish)
        return open_into(p, s, err);
    dsql_error local = {0};
    dsql_error *e = err ? err : &local;
    return open_done(p, s, connect_until(p, until, e), e);
}

/* The connection just opened into s goes to the caller that opened it. */
static void acquire_opened_locked(dsql_pq_pool *p, slot *s)
{
    p->n_opening--;
    p->n_in_use++;
    s->state = SLOT_IN_USE;
    p->st.acquires++;
}

typedef enum take_result { TAKE_IDLE, TAKE_OPEN, TAKE_AGAIN, TAKE_FULL } take_result;

/* Under the mutex: take the top idle connection (marked IN_USE), or reserve
 * a free slot for opening, or report the pool full. The idle connection is
 * checked first: its lifetime and status, then (the mutex released
 * meanwhile) its socket when it has been idle for check_idle_ms, and a
 * round trip when it has been idle for ping_idle_ms or input arrived on the
 * socket; may_ping 0 (non-blocking acquire): no round trip, and input gives
 * it up. One that fails is dropped and closed: TAKE_AGAIN, the mutex having
 * been released (*now is fresh); call again. */
static take_result take_locked(dsql_pq_pool *p, int64_t *now, int may_ping, slot **out)
{
    if (p->n_idle == 0) {
        *out = reserve_locked(p);
        return *out ? TAKE_OPEN : TAKE_FULL;
    }
    slot *s = ring_pop_top(p);
    s->state = SLOT_IN_USE;
    p->n_in_use++;
    /* *now was read before the mutex: a release in between looks idle < 0 */
    int64_t idle = *now > s->idle_since ? *now - s->idle_since : 0;
    int check_socket =
        p->opts.check_idle_ms != UINT32_MAX && idle >= (int64_t)p->opts.check_idle_ms * MS;
    ping_mode ping = PING_NEVER;
    if (may_ping)
        ping = p->opts.ping_idle_ms && idle >= (int64_t)p->opts.ping_idle_ms * MS
                   ? PING_ALWAYS : PING_ON_INPUT;
    close_reason r = CLOSE_NONE;
    if (*now >= s->expires) {
        r = CLOSE_LIFETIME;
    } else if (PQstatus(s->conn) != CONNECTION_OK) {
        r = CLOSE_BROKEN;
    } else if (check_socket || ping == PING_ALWAYS) {
        pthread_mutex_unlock(&p->mu);
        int ok = conn_healthy(s->conn, check_socket, ping);
        pthread_mutex_lock(&p->mu);
        if (!ok)
            r = CLOSE_BROKEN;
    }
    if (r == CLOSE_NONE) {
        *out = s;
        return TAKE_IDLE;
    }
    PGconn *c = drop_slot_locked(p, s, r);
    pthread_mutex_unlock(&p->mu);
    PQfinish(c);
    *now = now_ns();
    pthread_mutex_lock(&p->mu);
    return TAKE_AGAIN;
}

PGconn *dsql_pq_pool_acquire(dsql_pq_pool *p, int timeout_ms, dsql_error *err)
{
    return dsql__pq_pool_acquire_until(p, timeout_ms, NULL, err);
}

PGconn *dsql_pq_pool_acquire_until(dsql_pq_pool *p, int timeout_ms,
                                   const dsql_retry_options *until, dsql_error *err)
{
    if (until && until->version != DSQL_STRUCT_VERSION) {
        fail(err, DSQL_EINVAL, "acquire: until->version %d is not %d", until->version,
             DSQL_STRUCT_VERSION);
        return NULL;
    }
    return dsql__pq_pool_acquire_until(p, timeout_ms, until, err);
}

/* Ask until's cancel callback with the mutex released (it may call in). */
static int cancelled_unlocked(dsql_pq_pool *p, const dsql_retry_options *until)
{
    if (!until || !until->cancelled)
        return 0;
    pthread_mutex_unlock(&p->mu);
    int c = until->cancelled(until->cancel_arg);
    pthread_mutex_lock(&p->mu);
    return c;
}

PGconn *dsql__pq_pool_acquire_until(dsql_pq_pool *p, int timeout_ms,
                                    const dsql_retry_options *until, dsql_error *err)
{
    if (!p) {
        fail(err, DSQL_EINVAL, "pool is NULL");
        return NULL;
    }
    if (dsql_retry_check(until, err) != DSQL_OK)
        return NULL;
    int64_t now = now_ns();
    int64_t tmo = timeout_ms < 0 ? (int64_t)p->opts.acquire_timeout_ms : timeout_ms;
    int64_t deadline = now + tmo * MS;
    int by_caller = 0; /* the caller's deadline comes first */
    if (until && until->deadline_ms > 0 && until->deadline_ms * MS < deadline) {
        deadline = until->deadline_ms * MS;
        by_caller = 1;
    }
    int waited = 0, cancelled = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closed) {
            pthread_mutex_unlock(&p->mu);
            fail(err, DSQL_EINVAL, "the pool is closed");
            return NULL;
        }
        slot *s = NULL;
        switch (take_locked(p, &now, 1, &s)) {
        case TAKE_AGAIN:
            continue;
        case TAKE_IDLE:
            p->st.acquires++;
            pthread_mutex_unlock(&p->mu);
            return s->conn;
        case TAKE_OPEN:
            pthread_mutex_unlock(&p->mu);
            if (open_into_until(p, s, until, err) != DSQL_OK)
                return NULL;
            acquire_opened_locked(p, s); /* open_into locked again */
            pthread_mutex_unlock(&p->mu);
            return s->conn;
        case TAKE_FULL:
            break;
        }
        if (cancelled) {
            pthread_mutex_unlock(&p->mu);
            fail(err, DSQL_ECANCELLED, "acquire cancelled by the caller");
            return NULL;
        }
        if (now >= deadline) {
            p->st.timeouts++;
            unsigned size = size_locked(p);
            pthread_mutex_unlock(&p->mu);
            if (by_caller)
                fail(err, DSQL_ETIMEOUT,
                     "the deadline passed while waiting for a connection (pool of %u, all "
                     "in use)", size);
            else
                fail(err, DSQL_ETIMEOUT,
                     "no connection available within %lld ms (pool of %u, all in use)",
                     (long long)tmo, size);
            return NULL;
        }
        if (!waited) {
            waited = 1;
            p->st.waits++;
        }
        waiter w;
        memset(&w, 0, sizeof w);
        w.pipe_r = w.pipe_w = -1;
        if (pthread_cond_init(&w.cond, &p->condattr) != 0) {
            pthread_mutex_unlock(&p->mu);
            fail(err, DSQL_ENOMEM, "cannot create a condition variable");
            return NULL;
        }
        waiter_enqueue_locked(p, &w);
        while (w.queued && !p->closed) {
            int64_t wake = deadline;
            if (until && until->cancelled && now_ns() + 10 * MS < wake)
                wake = now_ns() + 10 * MS; /* ask the callback again */
            struct timespec ts = {(time_t)(wake / 1000000000), (long)(wake % 1000000000)};
            int rc = pthread_cond_timedwait(&w.cond, &p->mu, &ts);
            if (rc != ETIMEDOUT)
                continue;
            if (w.queued && cancelled_unlocked(p, until)) {
                cancelled = 1;
                break;
            }
            if (now_ns() >= deadline)
                break;
        }
        waiter_dequeue_locked(p, &w);
        pthread_cond_destroy(&w.cond);
        now = now_ns();
        if (w.handed) {
            p->st.acquires++;
            pthread_mutex_unlock(&p->mu);
            return w.handed->conn;
        }
        /* woken to look again, closed, cancelled or timed out (at the top) */
    }
}

static slot *find_in_use_locked(dsql_pq_pool *p, const PGconn *c)
{
    for (unsigned i = 0; i < p->nslots; i++)
        if (p->slots[i].conn == c && p->slots[i].state == SLOT_IN_USE)
            return &p->slots[i];
    return NULL;
}

/* Idle connections past their lifetime, or idle too long above min_size,
 * at the bottom of the stack: pop one (to close outside the mutex). */
static PGconn *expired_bottom_locked(dsql_pq_pool *p, int64_t now)
{
    if (p->n_idle == 0)
        return NULL;
    slot *b = ring_bottom(p);
    close_reason r = CLOSE_NONE;
    if (now >= b->expires)
        r = CLOSE_LIFETIME;
    else if (p->opts.idle_timeout_ms && size_locked(p) > p->opts.min_size &&
             now - b->idle_since >= (int64_t)p->opts.idle_timeout_ms * MS)
        r = CLOSE_IDLE;
    if (r == CLOSE_NONE)
        return NULL;
    ring_pop_bottom(p);
    return drop_slot_locked(p, b, r);
}

dsql_status dsql_pq_pool_release(dsql_pq_pool *p, PGconn *c)
{
    if (!p)
        return DSQL_EINVAL;
    if (!c)
        return DSQL_OK;
    pthread_mutex_lock(&p->mu);
    slot *s = find_in_use_locked(p, c);
    if (!s) {
        pthread_mutex_unlock(&p->mu);
        return DSQL_EINVAL;
    }
    int64_t expires = s->expires;
    int closed = p->closed;
    pthread_mutex_unlock(&p->mu);

    int64_t now = now_ns();
    close_reason r = closed ? CLOSE_POOL : now >= expires ? CLOSE_LIFETIME : clean_conn(p, s);
    if (r == CLOSE_NONE && !closed)
        now = now_ns();

    PGconn *extra = NULL;
    pthread_mutex_lock(&p->mu);
    if (r == CLOSE_NONE && p->closed)
        r = CLOSE_POOL;
    if (r == CLOSE_NONE) {
        make_available_locked(p, s, now);
        extra = expired_bottom_locked(p, now);
        pthread_mutex_unlock(&p->mu);
    } else {
        drop_slot_locked(p, s, r);
        pthread_mutex_unlock(&p->mu);
        PQfinish(c);
    }
    if (extra)
        PQfinish(extra);
    return DSQL_OK;
}

/* ---- non-blocking acquire ---- */

typedef enum acq_state {
    ACQ_READY,      /* s holds the connection */
    ACQ_CONNECTING, /* attempt in progress (non-blocking connector) */
    ACQ_CONNECT_BLOCKING,
    ACQ_WAITING,    /* queued; w.pipe_r becomes readable on news */
    ACQ_FAILED,
    ACQ_DONE
} acq_state;

struct dsql_pq_pool_acquiring {
    dsql_pq_pool *pool;
    acq_state state;
    slot *s;
    void *attempt;
    waiter w;
    int64_t deadline;
    int waited;
    dsql_error err;
};

/* Look for a connection: ready, opening, waiting, or failed. */
static void acq_step(dsql_pq_pool_acquiring *a)
{
    dsql_pq_pool *p = a->pool;
    int64_t now = now_ns();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closed) {
            pthread_mutex_unlock(&p->mu);
            fail(&a->err, DSQL_EINVAL, "the pool is closed");
            a->state = ACQ_FAILED;
            return;
        }
        slot *s = NULL;
        take_result t = take_locked(p, &now, 0, &s);
        if (t == TAKE_AGAIN)
            continue;
        if (t == TAKE_IDLE) {
            p->st.acquires++;
            pthread_mutex_unlock(&p->mu);
            a->s = s;
            a->state = ACQ_READY;
            return;
        }
        if (t == TAKE_OPEN) {
            pthread_mutex_unlock(&p->mu);
            a->s = s;
            if (!p->vt->connect_start) {
                a->state = ACQ_CONNECT_BLOCKING;
            } else if ((a->attempt = p->vt->connect_start(p->self, &a->err)) != NULL) {
                a->state = ACQ_CONNECTING;
            } else {
                open_done(p, s, NULL, &a->err); /* frees the slot, unlocked */
                a->s = NULL;
                a->state = ACQ_FAILED;
            }
            return;
        }
        /* full */
        if (now >= a->deadline) {
            p->st.timeouts++;
            unsigned size = size_locked(p);
            pthread_mutex_unlock(&p->mu);
            fail(&a->err, DSQL_ETIMEOUT, "no connection available in time (pool of %u, all in use)",
                 size);
            a->state = ACQ_FAILED;
            return;
        }
        if (!a->waited) {
            a->waited = 1;
            p->st.waits++;
        }
        a->w.wake = 0;
        a->w.handed = NULL;
        waiter_enqueue_locked(p, &a->w);
        pthread_mutex_unlock(&p->mu);
        a->state = ACQ_WAITING;
        return;
    }
}

dsql_pq_pool_acquiring *dsql_pq_pool_acquire_start(dsql_pq_pool *p, int timeout_ms,
                                                   dsql_error *err)
{
    if (!p) {
        fail(err, DSQL_EINVAL, "pool is NULL");
        return NULL;
    }
    dsql_pq_pool_acquiring *a = calloc(1, sizeof *a);
    if (!a) {
        fail(err, DSQL_ENOMEM, "out of memory starting an acquire");
        return NULL;
    }
    a->pool = p;
    int64_t tmo = timeout_ms < 0 ? (int64_t)p->opts.acquire_timeout_ms : timeout_ms;
    a->deadline = now_ns() + tmo * MS;
    int fds[2];
    if (pipe(fds) != 0) {
        free(a);
        fail(err, DSQL_EIO, "cannot create a wake-up pipe: %s", strerror(errno));
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    a->w.pipe_r = fds[0];
    a->w.pipe_w = fds[1];
    acq_step(a);
    if (a->state == ACQ_FAILED) {
        if (err)
            *err = a->err;
        close(fds[0]);
        close(fds[1]);
        free(a);
        return NULL;
    }
    return a;
}

static void drain_pipe(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* The opened connection of a finished attempt (NULL: failed) into the slot. */
static dsql_pq_poll_status acq_opened(dsql_pq_pool_acquiring *a, PGconn *c, dsql_error *err)
{
    dsql_pq_pool *p = a->pool;
    if (open_done(p, a->s, c, &a->err) != DSQL_OK) {
        a->s = NULL;
        a->state = ACQ_FAILED;
        if (err)
            *err = a->err;
        return DSQL_PQ_POLL_FAILED;
    }
    acquire_opened_locked(p, a->s);
    pthread_mutex_unlock(&p->mu);
    a->state = ACQ_READY;
    return DSQL_PQ_POLL_OK;
}

dsql_pq_poll_status dsql_pq_pool_acquire_poll(dsql_pq_pool_acquiring *a, int *fd,
                                              int *timeout_ms, dsql_error *err)
{
    int scratch[2];
    dsql__pq_poll_outs_init(&fd, &timeout_ms, scratch);
    if (!a) {
        fail(err, DSQL_EINVAL, "acquire handle is NULL");
        return DSQL_PQ_POLL_FAILED;
    }
    dsql_pq_pool *p = a->pool;
    for (;;) {
        switch (a->state) {
        case ACQ_READY:
            return DSQL_PQ_POLL_OK;
        case ACQ_FAILED:
        case ACQ_DONE:
            if (err)
                *err = a->err;
            return DSQL_PQ_POLL_FAILED;
        case ACQ_CONNECT_BLOCKING:
            return acq_opened(a, p->vt->connect(p->self, &a->err), err);
        case ACQ_CONNECTING: {
            dsql_pq_poll_status st = p->vt->connect_poll(p->self, a->attempt, fd, timeout_ms,
                                                         &a->err);
            if (st == DSQL_PQ_POLL_OK || st == DSQL_PQ_POLL_FAILED) {
                PGconn *c = p->vt->connect_finish(p->self, a->attempt);
                a->attempt = NULL;
                if (st == DSQL_PQ_POLL_FAILED && c) {
                    PQfinish(c);
                    c = NULL;
                }
                return acq_opened(a, c, err);
            }
            return st;
        }
        case ACQ_WAITING: {
            drain_pipe(a->w.pipe_r);
            pthread_mutex_lock(&p->mu);
            if (a->w.handed) {
                a->s = a->w.handed;
                a->w.handed = NULL;
                p->st.acquires++;
                pthread_mutex_unlock(&p->mu);
                a->state = ACQ_READY;
                return DSQL_PQ_POLL_OK;
            }
            int64_t now = now_ns();
            if (!a->w.queued || p->closed || now >= a->deadline) {
                /* woken to look again, closed, or out of time: step again */
                waiter_dequeue_locked(p, &a->w);
                pthread_mutex_unlock(&p->mu);
                acq_step(a);
                if (a->state == ACQ_WAITING) {
                    /* still full; fall through to report the wait */
                } else {
                    continue;
                }
                pthread_mutex_lock(&p->mu);
                now = now_ns();
            }
            pthread_mutex_unlock(&p->mu);
            *fd = a->w.pipe_r;
            int64_t left = (a->deadline - now + MS - 1) / MS;
            *timeout_ms = left > INT_MAX ? INT_MAX : left < 0 ? 0 : (int)left;
            return DSQL_PQ_POLL_READING;
        }
        }
    }
}

PGconn *dsql_pq_pool_acquire_finish(dsql_pq_pool_acquiring *a)
{
    if (!a)
        return NULL;
    dsql_pq_pool *p = a->pool;
    PGconn *result = NULL;
    switch (a->state) {
    case ACQ_READY:
        result = a->s->conn;
        break;
    case ACQ_CONNECTING:
    case ACQ_CONNECT_BLOCKING: /* give up the attempt and the reservation */
        if (a->state == ACQ_CONNECTING)
            PQfinish(p->vt->connect_finish(p->self, a->attempt));
        pthread_mutex_lock(&p->mu);
        drop_slot_locked(p, a->s, CLOSE_NONE);
        pthread_mutex_unlock(&p->mu);
        break;
    case ACQ_WAITING: {
        pthread_mutex_lock(&p->mu);
        waiter_dequeue_locked(p, &a->w);
        slot *h = a->w.handed;
        if (a->w.wake && !h)
            wake_one_locked(p); /* pass on the room we were woken for */
        pthread_mutex_unlock(&p->mu);
        if (h) /* handed over just now: give it back */
            dsql_pq_pool_release(p, h->conn);
        break;
    }
    case ACQ_FAILED:
    case ACQ_DONE:
        break;
    }
    close(a->w.pipe_r);
    close(a->w.pipe_w);
    free(a);
    return result;
}

/* ---- maintenance ---- */

dsql_status dsql_pq_pool_maintain(dsql_pq_pool *p, int *next_ms, dsql_error *err)
{
    if (next_ms)
        *next_ms = -1;
    if (!p)
        return fail(err, DSQL_EINVAL, "pool is NULL");
    PGconn **doomed = malloc(p->nslots * sizeof *doomed);
    slot **suspects = malloc(p->nslots * sizeof *suspects);
    if (!doomed || !suspects) {
        free(doomed);
        free(suspects);
        return fail(err, DSQL_ENOMEM, "out of memory in pool maintenance");
    }
    unsigned n_doomed = 0, n_suspects = 0;
    int64_t now = now_ns();
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        free(doomed);
        free(suspects);
        return DSQL_OK;
    }
    /* Walk the idle ring bottom (oldest) to top; keep the survivors in order. */
    unsigned n = p->n_idle;
    int64_t next = INT64_MAX;
    for (unsigned i = 0; i < n; i++) {
        slot *s = ring_pop_bottom(p);
        close_reason r = CLOSE_NONE;
        if (now >= s->expires)
            r = CLOSE_LIFETIME;
        else if (p->opts.idle_timeout_ms && size_locked(p) + 1 > p->opts.min_size &&
                 now - s->idle_since >= (int64_t)p->opts.idle_timeout_ms * MS)
            r = CLOSE_IDLE;
        else if (PQstatus(s->conn) != CONNECTION_OK)
            r = CLOSE_BROKEN;
        else if (socket_readable(s->conn)) {
            /* look at it outside the mutex (libpq may call a notice
             * processor while it reads) */
            s->state = SLOT_IN_USE;
            p->n_in_use++;
            suspects[n_suspects++] = s;
            continue;
        }
        if (r == CLOSE_NONE) {
            ring_push_top(p, s);
            if (s->expires < next)
                next = s->expires;
            if (p->opts.idle_timeout_ms) {
                int64_t it = s->idle_since + (int64_t)p->opts.idle_timeout_ms * MS;
                if (it < next)
                    next = it;
            }
        } else {
            doomed[n_doomed++] = drop_slot_locked(p, s, r);
        }
    }
    for (unsigned i = 0; i < p->nslots; i++)
        if (p->slots[i].state == SLOT_IN_USE && p->slots[i].expires < next)
            next = p->slots[i].expires;
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < n_doomed; i++)
        PQfinish(doomed[i]);
    free(doomed);
    for (unsigned i = 0; i < n_suspects; i++) {
        slot *s = suspects[i];
        PGconn *c = s->conn;
        int ok = conn_healthy(c, 1, PING_ON_INPUT); /* whatever check_idle_ms says */
        pthread_mutex_lock(&p->mu);
        if (ok && !p->closed) {
            make_available_locked(p, s, s->idle_since);
            c = NULL;
        } else {
            drop_slot_locked(p, s, ok ? CLOSE_POOL : CLOSE_BROKEN);
        }
        pthread_mutex_unlock(&p->mu);
        if (c)
            PQfinish(c);
    }
    free(suspects);

    /* Open connections up to min_size (checked each round; at most min_size rounds). */
    dsql_status result = DSQL_OK;
    for (unsigned i = 0; i < p->opts.min_size; i++) {
        pthread_mutex_lock(&p->mu);
        slot *s = NULL;
        if (p->closed || size_locked(p) >= p->opts.min_size || !(s = reserve_locked(p))) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);
        dsql_status st = open_into(p, s, err);
        if (st != DSQL_OK) {
            result = st;
            break;
        }
        if (s->expires < next)
            next = s->expires;
        make_available_locked(p, s, now_ns());
        pthread_mutex_unlock(&p->mu);
    }
    if (next_ms && next != INT64_MAX) {
        int64_t left = (next - now_ns() + MS - 1) / MS;
        *next_ms = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    }
    return result;
}

static void *maintenance_thread(void *arg)
{
    dsql_pq_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->thread_stop) {
        int64_t due = now_ns() + (int64_t)p->opts.maintain_interval_ms * MS;
        struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
        while (!p->thread_stop) {
            if (pthread_cond_timedwait(&p->thread_cond, &p->mu, &ts) == ETIMEDOUT)
                break;
        }
        if (p->thread_stop)
            break;
        pthread_mutex_unlock(&p->mu);
        dsql_pq_pool_maintain(p, NULL, NULL);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- stats, close, free ---- */

dsql_status dsql_pq_pool_stats_get(dsql_pq_pool *p, dsql_pq_pool_stats *out)
{
    if (!p || !out)
        return DSQL_EINVAL;
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    out->version = DSQL_STRUCT_VERSION;
    out->idle = p->n_idle;
    out->in_use = p->n_in_use;
    out->opening = p->n_opening;
    out->size = p->n_idle + p->n_in_use;
    out->waiting = p->n_waiting;
    pthread_mutex_unlock(&p->mu);
    return DSQL_OK;
}

void dsql__pq_pool_count_txn(dsql_pq_pool *p, dsql_status st, const dsql_pq_txn_result *r)
{
    pthread_mutex_lock(&p->mu);
    if (st == DSQL_OK)
        p->st.txn_commits++;
    else
        p->st.txn_failures++;
    if (st == DSQL_EUNKNOWN_COMMIT)
        p->st.txn_unknown_commits++;
    p->st.txn_conflicts += r->conflicts;
    p->st.txn_conflicts_data += r->data_conflicts;
    p->st.txn_conflicts_schema += r->schema_conflicts;
    p->st.txn_conflicts_unknown += r->unknown_conflicts;
    p->st.txn_retries += r->attempts > 1 ? r->attempts - 1 : 0;
    pthread_mutex_unlock(&p->mu);
}

void dsql_pq_pool_close(dsql_pq_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    int join = p->thread_started;
    p->thread_stop = 1;
    p->thread_started = 0;
    if (join)
        pthread_cond_signal(&p->thread_cond);
    pthread_mutex_unlock(&p->mu);
    if (join) {
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->thread_cond);
    }

    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    while (p->wq_head)
        wake_one_locked(p);
    while (p->n_idle > 0) {
        PGconn *c = drop_slot_locked(p, ring_pop_top(p), CLOSE_POOL);
        pthread_mutex_unlock(&p->mu);
        PQfinish(c);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

void dsql_pq_pool_free(dsql_pq_pool *p)
{
    if (!p)
        return;
    dsql_pq_pool_close(p);
    pool_destroy(p);
}
