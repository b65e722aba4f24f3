/* pgserver: the few PostgreSQL wire-protocol facts and messages a server
 * in front of PostgreSQL needs (dsql-local today, the auth proxy next). */
#ifndef PGSERVER_WIRE_H
#define PGSERVER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define PGS_PROTO_V3 196608u
#define PGS_SSL_REQUEST 80877103u
#define PGS_GSSENC_REQUEST 80877104u
#define PGS_CANCEL_REQUEST 80877102u
#define PGS_CANCEL_LEN 16u
#define PGS_MAX_PACKET (64u * 1024u) /* startup and password packets */

uint32_t pgs_be32(const unsigned char *p);
void pgs_put_be32(unsigned char *p, uint32_t v);
/* Builds an ErrorResponse (severity FATAL) into buf, cutting the message
 * to fit; returns its length (0 when cap is under 64). */
size_t pgs_error_response(unsigned char *buf, size_t cap, const char *sqlstate,
                          const char *message);

#endif
