/* dsql-local: a ring of (generation, relation) entries, one per relation a
 * committed DDL changed. */
#include "catalog.h"

typedef struct change {
    unsigned long gen;
    unsigned oid;
} change;

static change ring[DL_CATALOG_HISTORY];
static size_t ring_next, ring_used; /* where the next goes; how many are kept */
static unsigned long gen_now, gen_lost; /* the newest generation an entry was lost of */

unsigned long dl_catalog_gen(void)
{
    return gen_now;
}

static void remember(unsigned oid)
{
    if (ring_used == DL_CATALOG_HISTORY)
        gen_lost = ring[ring_next].gen;
    ring[ring_next].gen = gen_now;
    ring[ring_next].oid = oid;
    ring_next = (ring_next + 1) % DL_CATALOG_HISTORY;
    if (ring_used < DL_CATALOG_HISTORY)
        ring_used++;
}

void dl_catalog_committed(const unsigned *oids, size_t n)
{
    size_t i;

    gen_now++;
    if (n == 0)
        remember(DL_CATALOG_ANY);
    for (i = 0; i < n; i++)
        remember(oids[i]);
}

size_t dl_catalog_changed_since(unsigned long gen, unsigned *out, size_t cap)
{
    size_t i, n = 0, oldest = (ring_next + DL_CATALOG_HISTORY - ring_used) % DL_CATALOG_HISTORY;

    if (gen >= gen_now || cap == 0)
        return 0;
    if (gen_lost > gen) /* a change after gen is forgotten */
        goto any;
    for (i = 0; i < ring_used; i++) {
        const change *ch = &ring[(oldest + i) % DL_CATALOG_HISTORY];
        if (ch->gen <= gen)
            continue;
        if (ch->oid == DL_CATALOG_ANY || n == cap)
            goto any;
        out[n++] = ch->oid;
    }
    return n;
any:
    out[0] = DL_CATALOG_ANY;
    return 1;
}
