/* pgserver: following the message framing of one direction of a
 * PostgreSQL session as its bytes pass, without keeping or copying them:
 * only the 5-byte headers are looked at (a message's body is skipped by
 * its length), so a relay knows whether the stream stands between two
 * messages, which message came last, and how many of a few types it has
 * seen (ReadyForQuery answered, Query and Sync asked). */
#ifndef PGSERVER_FRAMES_H
#define PGSERVER_FRAMES_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgs_frames {
    uint32_t body_left;       /* bytes of the current message still to come */
    unsigned char hdr[5];
    unsigned char hdr_have;   /* bytes of the next header seen so far */
    unsigned char last;       /* type of the last message begun; 0: none */
    uint32_t watch[8];        /* the types counted in seen (a bit each) */
    unsigned long seen;       /* messages begun of a watched type */
} pgs_frames;

/* Nothing seen yet; types: the message types to count (e.g. "QSF"). */
void pgs_frames_init(pgs_frames *f, const char *types);
/* The next n bytes of the stream. */
void pgs_frames_feed(pgs_frames *f, const unsigned char *p, size_t n);
/* 1 when every message begun has ended: the stream is between two. */
int pgs_frames_between(const pgs_frames *f);

struct evbuffer;
/* pgs_frames_feed over all of in, read in place chain by chain: nothing
 * is copied, drained or allocated (a relay calls it on what it is about
 * to move on). */
void pgs_frames_feed_evbuffer(pgs_frames *f, struct evbuffer *in);

/* The next message waiting whole-or-not in an evbuffer, looked at and
 * not taken: for code that handles messages one at a time (a login, a
 * filter), where frames.h's follower is for bytes passing by. */
typedef struct pgs_msg {
    unsigned char type;
    uint32_t len; /* the length word: 4 + the body's length */
} pgs_msg;

enum {
    PGS_MSG_SHORT,  /* not even the 5-byte header is there (m not set) */
    PGS_MSG_BROKEN, /* a length word under 4 */
    PGS_MSG_PART,   /* the header is there, some of the body is not */
    PGS_MSG_WHOLE   /* all 1 + len bytes are there */
};
int pgs_msg_peek(struct evbuffer *in, pgs_msg *m);

#endif
