/* pgserver: reading the startup packet. */
#include <stdlib.h>
#include <string.h>

#include "startup.h"
#include "wire.h"

int pgs_startup_valid(const unsigned char *pkt, size_t len)
{
    size_t i = 8;
    int pairs_done = 0;

    if (len < 9 || pgs_be32(pkt) != len || (pgs_be32(pkt + 4) >> 16) != 3 ||
        pkt[len - 1] != '\0')
        return 0;
    while (i < len) {
        const unsigned char *name = pkt + i, *nul;
        if (*name == '\0') {
            pairs_done = i + 1 == len;
            break;
        }
        nul = memchr(name, '\0', len - i);
        if (!nul)
            return 0;
        i = (size_t)(nul - pkt) + 1;
        nul = memchr(pkt + i, '\0', len - i);
        if (!nul)
            return 0;
        i = (size_t)(nul - pkt) + 1;
    }
    return pairs_done;
}

/* Lists the parameter names of a valid packet into names (when not NULL);
 * returns how many there are. */
static size_t walk(const unsigned char *pkt, size_t len, const char **names)
{
    size_t i = 8, n = 0;

    while (i < len && pkt[i] != '\0') {
        const char *k = (const char *)pkt + i;
        const char *v = k + strlen(k) + 1;
        if (names)
            names[n] = k;
        n++;
        i = (size_t)((const unsigned char *)v - pkt) + strlen(v) + 1;
    }
    return n;
}

const char *pgs_startup_param(const unsigned char *pkt, size_t len, const char *name)
{
    size_t i = 8;

    if (!pgs_startup_valid(pkt, len))
        return NULL;
    while (i < len && pkt[i] != '\0') {
        const char *k = (const char *)pkt + i;
        const char *v = k + strlen(k) + 1;
        if (strcmp(k, name) == 0)
            return v;
        i = (size_t)((const unsigned char *)v - pkt) + strlen(v) + 1;
    }
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pgs_startup_duplicate(const unsigned char *pkt, size_t len, const char **name)
{
    const char **names;
    size_t n, i;
    int found = 0;

    *name = NULL;
    if (!pgs_startup_valid(pkt, len))
        return -1;
    n = walk(pkt, len, NULL);
    if (n < 2)
        return 0;
    /* sorted, so a 64 KiB packet of 16,000 tiny pairs costs no n² compares */
    names = malloc(n * sizeof *names);
    if (!names)
        return -1;
    walk(pkt, len, names);
    qsort(names, n, sizeof *names, by_name);
    for (i = 1; i < n && !found; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            *name = names[i];
            found = 1;
        }
    free(names);
    return found;
}
