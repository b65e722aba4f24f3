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

/* The fields of an ErrorResponse or NoticeResponse body (n bytes, after
 * the 5-byte header): each a code byte and a NUL-terminated value, the
 * list closed by a NUL. From *off (0 to begin) the next field: 1 with
 * *code and *value (in body) set and *off moved on; 0 at the end of the
 * list; -1 when the body is malformed (no final NUL, a value without its
 * NUL). */
int pgs_error_next_field(const unsigned char *body, size_t n, size_t *off, char *code,
                         const char **value);
/* The value of the first field code, or NULL (also when malformed). */
const char *pgs_error_field(const unsigned char *body, size_t n, char code);

#endif
