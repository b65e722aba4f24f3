/* pgserver: big-endian words and the ErrorResponse message. */
#include <string.h>

#include "wire.h"

uint32_t pgs_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void pgs_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
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

size_t pgs_error_response(unsigned char *buf, size_t cap, const char *sqlstate,
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
    pgs_put_be32(buf + 1, (uint32_t)(off - 1));
    return off;
}

int pgs_error_next_field(const unsigned char *body, size_t n, size_t *off, char *code,
                         const char **value)
{
    const unsigned char *end;

    if (n == 0 || body[n - 1] != '\0')
        return -1;
    if (*off >= n || body[*off] == '\0')
        return 0;
    end = memchr(body + *off + 1, '\0', n - *off - 1);
    if (!end)
        return -1;
    *code = (char)body[*off];
    *value = (const char *)body + *off + 1;
    *off = (size_t)(end + 1 - body);
    return 1;
}

const char *pgs_error_field(const unsigned char *body, size_t n, char code)
{
    size_t off = 0;
    const char *value;
    char c;

    while (pgs_error_next_field(body, n, &off, &c, &value) > 0)
        if (c == code)
            return value;
    return NULL;
}
