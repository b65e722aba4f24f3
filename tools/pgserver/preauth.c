/* pgserver: the pre-login cap, two lists in arrival order. */
#include "preauth.h"

size_t pgs_preauth_default_limit(long fd_limit)
{
    if (fd_limit <= 0)
        fd_limit = 1024;
    return fd_limit / 2 > 16 ? (size_t)(fd_limit / 2) : 16;
}

static void head_init(pgs_preauth_node *h)
{
    h->prev = h->next = h;
    h->listed = 0;
}

void pgs_preauth_init(pgs_preauth *p, size_t limit,
                      void (*evict)(pgs_preauth_node *n, void *arg), void *arg)
{
    head_init(&p->silent);
    head_init(&p->talking);
    p->count = 0;
    p->arrivals = 0;
    p->limit = limit > 0 ? limit : 1;
    p->evicted = 0;
    p->evict = evict;
    p->arg = arg;
}

/* Before pos; before a list head is at the list's end. */
static void insert_before(pgs_preauth_node *pos, pgs_preauth_node *n)
{
    n->prev = pos->prev;
    n->next = pos;
    pos->prev->next = n;
    pos->prev = n;
    n->listed = 1;
}

static void unlink_node(pgs_preauth_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->listed = 0;
}

int pgs_preauth_evict_one(pgs_preauth *p)
{
    pgs_preauth_node *victim = p->silent.next != &p->silent ? p->silent.next
                               : p->talking.next != &p->talking ? p->talking.next
                                                                 : NULL;
    if (!victim)
        return 0;
    p->evicted++;
    pgs_preauth_remove(p, victim); /* before the callback frees it */
    p->evict(victim, p->arg);
    return 1;
}

void pgs_preauth_add(pgs_preauth *p, pgs_preauth_node *n)
{
    while (p->count >= p->limit && pgs_preauth_evict_one(p))
        ;
    insert_before(&p->silent, n);
    n->talking = 0;
    n->seq = ++p->arrivals;
    p->count++;
}

void pgs_preauth_talking(pgs_preauth *p, pgs_preauth_node *n)
{
    pgs_preauth_node *after;

    if (!n->listed || n->talking)
        return;
    unlink_node(n);
    /* in arrival order, so speaking late does not make a connection look
     * younger; most speak at once, so this walk is short */
    after = p->talking.prev;
    while (after != &p->talking && after->seq > n->seq)
        after = after->prev;
    insert_before(after->next, n);
    n->talking = 1;
}

void pgs_preauth_remove(pgs_preauth *p, pgs_preauth_node *n)
{
    if (!n->listed)
        return;
    unlink_node(n);
    p->count--;
}
