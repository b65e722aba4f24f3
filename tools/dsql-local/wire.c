/* dsql-local: the few PostgreSQL wire-protocol messages the gateway reads
 * (startup packet) and writes (ErrorResponse). */
#include <string.h>

#include "local.h"

uint32_t dl_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A v3.x startup packet: length, version, then NUL-terminated name/value
 * pairs closed by one more NUL. */
int dl_startup_valid(const unsigned char *pkt, size_t len)
{
    size_t i = 8;
    int pairs_done = 0;

    if (len < 9 || dl_be32(pkt) != len || (dl_be32(pkt + 4) >> 16) != 3 ||
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

const char *dl_startup_param(const unsigned char *pkt, size_t len,
                             const char *name)
{
    size_t i = 8;

    if (!dl_startup_valid(pkt, len))
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

static size_t put_field(unsigned char *buf, size_t off, size_t cap, char code,
                        const char *value)
{
    size_t n = strlen(value);

    if (off + 1 + n + 1 >= cap) /* keep room for the final NUL */
        n = off + 3 < cap ? cap - off - 3 : 0;
    if (off + 2 + n >= cap)
        return off;
    buf[off++] = (unsigned char)code;
    memcpy(buf + off, value, n);
    off += n;
    buf[off++] = '\0';
    return off;
}

size_t dl_error_response(unsigned char *buf, size_t cap, const char *sqlstate,
                         const char *message)
{
    size_t off = 5;

    if (cap < 64)
        return 0;
    buf[0] = 'E';
    off = put_field(buf, off, cap, 'S', "FATAL");
    off = put_field(buf, off, cap, 'V', "FATAL");
    off = put_field(buf, off, cap, 'C', sqlstate);
    off = put_field(buf, off, cap, 'M', message);
    buf[off++] = '\0';
    put_be32(buf + 1, (uint32_t)(off - 1));
    return off;
}
