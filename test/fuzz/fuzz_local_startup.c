/* Fuzz target: the startup-packet parser the servers share
 * (tools/pgserver/startup.c), the first thing the dsql-local gateway reads
 * from an unauthenticated client, the ErrorResponse it builds from what it
 * read (wire.c) and the escaping of what it logs (escape.c). Input: the packet after its
 * length word; the target prepends the matching length (the gateway reads
 * exactly that many bytes) and also tries the input as a whole packet.
 * Checks that every parameter found lies inside the packet and is
 * NUL-terminated there, that ErrorResponse stays inside its buffer with
 * a consistent length word, that the duplicate-name check agrees with a
 * plain pairwise comparison, and that an escaped value holds no control
 * byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "startup.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_param(const unsigned char *pkt, size_t len, const char *name)
{
    const char *v = pgs_startup_param(pkt, len, name);
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
        n = pgs_error_response(buf, caps[i], "28000", v);
        if (n == 0 || n > caps[i] || buf[0] != 'E' || pgs_be32(buf + 1) != n - 1 ||
            buf[n - 1] != '\0')
            abort();
        if (caps[i] < sizeof buf && buf[caps[i]] != 0xa5)
            abort();
    }
}

static void check_escaped(const char *v)
{
    char out[128];
    size_t i, n;

    pgs_escape(out, sizeof out, v, strlen(v), PGS_ESC_QUOTED);
    n = strlen(out);
    if (n >= sizeof out)
        abort();
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            abort();
        if (c == '"' && (i == 0 || out[i - 1] != '\\'))
            abort();
    }
}

/* The pairwise answer, for packets small enough to afford it. */
static int has_duplicate_slowly(const unsigned char *pkt, size_t len)
{
    const char *names[256];
    size_t i = 8, n = 0, a, b;

    while (i < len && pkt[i] != '\0') {
        const char *k = (const char *)pkt + i, *v = k + strlen(k) + 1;
        if (n == 256)
            return -1;
        names[n++] = k;
        i = (size_t)((const unsigned char *)v - pkt) + strlen(v) + 1;
    }
    for (a = 0; a < n; a++)
        for (b = a + 1; b < n; b++)
            if (strcmp(names[a], names[b]) == 0)
                return 1;
    return 0;
}

static void check_duplicates(const unsigned char *pkt, size_t len)
{
    const char *name;
    int fast = pgs_startup_duplicate(pkt, len, &name), slow = has_duplicate_slowly(pkt, len);

    if (fast < 0)
        abort(); /* valid packet, and malloc does not fail here */
    if (slow >= 0 && fast != slow)
        abort();
    if (fast == 1 && (!name || (const unsigned char *)name < pkt + 8 ||
                      (const unsigned char *)name >= pkt + len))
        abort();
}

/* pgs_startup_check, the servers' whole check, agrees with its parts and
 * names the packet's user, in the packet, when it passes; the first 8
 * bytes of a packet that passes are a startup packet's. */
static void check_verdict(const unsigned char *pkt, size_t len, int valid)
{
    const char *user = NULL, *name;
    char msg[300];
    pgs_startup_verdict v = pgs_startup_check(pkt, len, &user, msg, sizeof msg);
    const char *param = valid ? pgs_startup_param(pkt, len, "user") : NULL;

    if (!valid && v != PGS_STARTUP_BAD)
        abort();
    if (v == PGS_STARTUP_NO_MEMORY)
        abort(); /* malloc does not fail here */
    if (valid && (v == PGS_STARTUP_BAD) != (pgs_startup_duplicate(pkt, len, &name) == 1))
        abort();
    if (v == PGS_STARTUP_OK && (user != param || !*user || pgs_packet_kind(pkt) != PGS_PACKET_STARTUP))
        abort();
    if (v == PGS_STARTUP_OK)
        return;
    for (name = msg; *name; name++) /* a name from the packet went in escaped */
        if ((unsigned char)*name < 0x20 || *name == 0x7f)
            abort();
}

static void parse(const unsigned char *pkt, size_t len)
{
    static const char *const names[] = {"user", "database", "options", "application_name",
                                        "", "replication"};
    size_t i;
    int valid = pgs_startup_valid(pkt, len);

    if (valid != 0 && valid != 1)
        abort();
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = pgs_startup_param(pkt, len, names[i]);
        if (!valid && v)
            abort();
        check_param(pkt, len, names[i]);
        if (v)
            check_escaped(v);
    }
    if (valid)
        check_duplicates(pkt, len);
    check_verdict(pkt, len, valid);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    unsigned char *pkt;
    size_t len = size + 4;

    if (size > PGS_MAX_PACKET)
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
