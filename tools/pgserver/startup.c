/* pgserver: reading the startup packet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
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

pgs_packet pgs_packet_kind(const unsigned char *hdr)
{
    uint32_t len = pgs_be32(hdr), code = pgs_be32(hdr + 4);

    if (len < 8 || len > PGS_MAX_PACKET)
        return PGS_PACKET_BAD_LENGTH;
    if (len == 8 && code == PGS_SSL_REQUEST)
        return PGS_PACKET_SSL;
    if (len == 8 && code == PGS_GSSENC_REQUEST)
        return PGS_PACKET_GSSENC;
    if (len == PGS_CANCEL_LEN && code == PGS_CANCEL_REQUEST)
        return PGS_PACKET_CANCEL;
    return (code >> 16) == 3 ? PGS_PACKET_STARTUP : PGS_PACKET_UNSUPPORTED;
}

pgs_startup_verdict pgs_startup_check(const unsigned char *pkt, size_t len, const char **user,
                                      char *msg, size_t cap)
{
    const char *name;
    char shown[200];
    int r;

    if (!pgs_startup_valid(pkt, len)) {
        snprintf(msg, cap, "invalid startup packet layout");
        return PGS_STARTUP_BAD;
    }
    /* a server checking the first `user` while PostgreSQL uses the last
     * would log in someone else: refused, naming the parameter */
    r = pgs_startup_duplicate(pkt, len, &name);
    if (r < 0)
        return PGS_STARTUP_NO_MEMORY;
    if (r > 0) {
        pgs_escape(shown, sizeof shown, name, strlen(name), PGS_ESC_QUOTED);
        snprintf(msg, cap, "invalid startup packet: parameter \"%s\" appears more than once",
                 shown);
        return PGS_STARTUP_BAD;
    }
    *user = pgs_startup_param(pkt, len, "user");
    if (!*user || !**user) {
        snprintf(msg, cap, "no PostgreSQL user name specified in startup packet");
        return PGS_STARTUP_NO_USER;
    }
    return PGS_STARTUP_OK;
}
