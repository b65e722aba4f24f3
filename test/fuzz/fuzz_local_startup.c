/* Fuzz target: dsql-local's startup-packet parser (tools/dsql-local/wire.c),
 * the first thing the gateway reads from an unauthenticated client, and the
 * ErrorResponse it builds from what it read. Input: the packet after its
 * length word; the target prepends the matching length (the gateway reads
 * exactly that many bytes) and also tries the input as a whole packet.
 * Checks that every parameter found lies inside the packet and is
 * NUL-terminated there, and that ErrorResponse stays inside its buffer with
 * a consistent length word. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_param(const unsigned char *pkt, size_t len, const char *name)
{
    const char *v = dl_startup_param(pkt, len, name);
    unsigned char buf[300];
    size_t n, caps[3] = {sizeof buf, 64, 100}, i;

    if (!v)
        return;
    if ((const unsigned char *)v < pkt + 8 || (const unsigned char *)v >= pkt + len ||
        !memchr(v, '\0', len - (size_t)((const unsigned char *)v - pkt)))
        abort();
    /* the gateway quotes the user name in its errors */
    for (i = 0; i < 3; i++) {
        memset(buf, 0xa5, sizeof buf);
        n = dl_error_response(buf, caps[i], "28000", v);
        if (n == 0 || n > caps[i] || buf[0] != 'E' || dl_be32(buf + 1) != n - 1 ||
            buf[n - 1] != '\0')
            abort();
        if (caps[i] < sizeof buf && buf[caps[i]] != 0xa5)
            abort();
    }
}

static void parse(const unsigned char *pkt, size_t len)
{
    static const char *const names[] = {"user", "database", "options", "application_name",
                                        "", "replication"};
    size_t i;
    int valid = dl_startup_valid(pkt, len);

    if (valid != 0 && valid != 1)
        abort();
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = dl_startup_param(pkt, len, names[i]);
        if (!valid && v)
            abort();
        check_param(pkt, len, names[i]);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    unsigned char *pkt;
    size_t len = size + 4;

    if (size > DL_MAX_PACKET)
        return 0;
    /* exactly sized copies, so ASan sees any read past the packet */
    pkt = malloc(len);
    if (!pkt)
        return 0;
    pkt[0] = (unsigned char)(len >> 24);
    pkt[1] = (unsigned char)(len >> 16);
    pkt[2] = (unsigned char)(len >> 8);
    pkt[3] = (unsigned char)len;
    memcpy(pkt + 4, data, size);
    parse(pkt, len);
    free(pkt);
    pkt = malloc(size ? size : 1);
    if (!pkt)
        return 0;
    memcpy(pkt, data, size);
    parse(pkt, size);
    free(pkt);
    return 0;
}
