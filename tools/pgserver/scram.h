/* pgserver: the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as
 * PostgreSQL speaks it, against a stored verifier in PostgreSQL's format
 * SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (base64), so
 * no cleartext password is kept. No channel binding: the servers using it
 * talk to local clients without TLS. */
#ifndef PGSERVER_SCRAM_H
#define PGSERVER_SCRAM_H

#include <stddef.h>

#define PGS_SCRAM_MECH "SCRAM-SHA-256"
#define PGS_SCRAM_MSG_MAX 1024 /* longer client messages are refused */

typedef struct pgs_scram_verifier {
    int iterations;
    unsigned char salt[64];
    size_t salt_len;
    unsigned char stored_key[32], server_key[32];
} pgs_scram_verifier;

typedef struct pgs_scram {
    pgs_scram_verifier v;
    char nonce[128];               /* client nonce + ours */
    char client_first_bare[PGS_SCRAM_MSG_MAX + 1];
    char server_first[256];
} pgs_scram;

/* 0 and *v filled, or -1 (malformed: wrong prefix, iterations, base64 or
 * key sizes). */
int pgs_scram_parse_verifier(const char *text, pgs_scram_verifier *v);
#define PGS_SCRAM_MOCK_KEY 32 /* bytes of the server's secret for mock salts */

/* A stand-in for a user with no verifier: the exchange goes the same way
 * and fails at the proof, so names cannot be probed. Its salt is derived
 * from key (random, made once per server, kept secret) and the user name:
 * the same on every try, where a random one would differ between two tries
 * and give the name away; its salt length and iterations are like's (a
 * real verifier's); its keys are random. -1: no randomness. */
int pgs_scram_mock_verifier(pgs_scram_verifier *v, const pgs_scram_verifier *like,
                            const unsigned char *key, const char *user);
/* From the client-first-message (len bytes), the server-first-message into
 * out. 0 ok; -1 with *err naming what is wrong. */
int pgs_scram_first(pgs_scram *s, const char *msg, size_t len, char *out, size_t cap,
                    const char **err);
/* From the client-final-message, checks the proof; the server-final
 * message ("v=...") into out. 0 the proof is right; -1 wrong or malformed
 * (*err says which). */
int pgs_scram_final(pgs_scram *s, const char *msg, size_t len, char *out, size_t cap,
                    const char **err);
/* Wipes s (keys and nonces). */
void pgs_scram_clear(pgs_scram *s);

#endif
