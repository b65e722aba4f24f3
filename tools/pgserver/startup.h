/* pgserver: the startup packet a client sends first (PostgreSQL protocol
 * 3.x): length, version, then NUL-terminated name/value pairs closed by
 * one more NUL. */
#ifndef PGSERVER_STARTUP_H
#define PGSERVER_STARTUP_H

#include <stddef.h>

/* 1 when pkt (len bytes, its length word included) is well formed. */
int pgs_startup_valid(const unsigned char *pkt, size_t len);
/* The value of parameter name, or NULL when absent or the packet is
 * malformed. */
const char *pgs_startup_param(const unsigned char *pkt, size_t len, const char *name);
/* A parameter named twice would let the server and PostgreSQL read
 * different values (the gateway checks the first `user`, PostgreSQL uses
 * the last), so such packets are refused. Returns 1 and sets *name to a
 * repeated parameter, 0 when every name is unique, -1 when out of memory
 * or the packet is malformed. O(n log n) in the number of parameters. */
int pgs_startup_duplicate(const unsigned char *pkt, size_t len, const char **name);

/* What a packet sent before login asks for, by its first 8 bytes (length
 * word, then a code). A length under 8 or over PGS_MAX_PACKET is checked
 * first; SSLRequest and GSSENCRequest are 8 bytes long, a CancelRequest
 * PGS_CANCEL_LEN. */
typedef enum pgs_packet {
    PGS_PACKET_BAD_LENGTH,
    PGS_PACKET_SSL,
    PGS_PACKET_GSSENC,
    PGS_PACKET_CANCEL,
    PGS_PACKET_STARTUP,    /* protocol 3.x */
    PGS_PACKET_UNSUPPORTED /* another protocol or request code */
} pgs_packet;
pgs_packet pgs_packet_kind(const unsigned char *hdr);

/* The checks of a whole startup packet, in the order servers make them:
 * its layout, no parameter named twice, a user named. */
typedef enum pgs_startup_verdict {
    PGS_STARTUP_OK,       /* *user is the user parameter (in pkt) */
    PGS_STARTUP_BAD,      /* 08P01: malformed, or a name repeated */
    PGS_STARTUP_NO_USER,  /* 28000: no user, or an empty one */
    PGS_STARTUP_NO_MEMORY /* no message */
} pgs_startup_verdict;
/* Else than OK and NO_MEMORY, msg (cap bytes) is the client's message,
 * any name from the packet in it escaped. */
pgs_startup_verdict pgs_startup_check(const unsigned char *pkt, size_t len, const char **user,
                                      char *msg, size_t cap);

#endif
