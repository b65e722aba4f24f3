/* pgserver: message framing followed in passing (see frames.h). */
#include <string.h>

#include <event2/buffer.h>

#include "frames.h"
#include "wire.h"

void pgs_frames_init(pgs_frames *f, const char *types)
{
    memset(f, 0, sizeof *f);
    for (; *types; types++) {
        unsigned char t = (unsigned char)*types;
        f->watch[t / 32] |= 1u << (t % 32);
    }
}

/* A message begins: its type and length word. */
static void begin(pgs_frames *f, unsigned char t, uint32_t len)
{
    /* a length under 4 is a broken stream: count it as empty */
    f->body_left = len >= 4 ? len - 4 : 0;
    f->last = t;
    if (f->watch[t / 32] & (1u << (t % 32)))
        f->seen++;
}

void pgs_frames_feed(pgs_frames *f, const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (f->body_left > 0) {
            size_t k = n < f->body_left ? n : f->body_left;
            p += k;
            n -= k;
            f->body_left -= (uint32_t)k;
            continue;
        }
        if (f->hdr_have == 0 && n >= sizeof f->hdr) {
            /* the usual case: a whole header in place, nothing kept */
            begin(f, p[0], pgs_be32(p + 1));
            p += sizeof f->hdr;
            n -= sizeof f->hdr;
            continue;
        }
        f->hdr[f->hdr_have++] = *p++;
        n--;
        if (f->hdr_have == sizeof f->hdr) {
            f->hdr_have = 0;
            begin(f, f->hdr[0], pgs_be32(f->hdr + 1));
        }
    }
}

int pgs_frames_between(const pgs_frames *f)
{
    return f->hdr_have == 0 && f->body_left == 0;
}

void pgs_frames_feed_evbuffer(pgs_frames *f, struct evbuffer *in)
{
    struct evbuffer_iovec v[8];
    struct evbuffer_ptr pos;
    size_t left = evbuffer_get_length(in);
    int n, i;

    if (evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET) != 0)
        return;
    while (left > 0) {
        size_t done = 0;
        /* with a length (not -1) the count goes on past the 8 filled, and
         * the chains beyond are read in the next round */
        n = evbuffer_peek(in, (ev_ssize_t)left, &pos, v, 8);
        for (i = 0; i < n && i < 8 && done < left; i++) {
            size_t k = v[i].iov_len < left - done ? v[i].iov_len : left - done;
            pgs_frames_feed(f, v[i].iov_base, k);
            done += k;
        }
        if (done == 0 || evbuffer_ptr_set(in, &pos, done, EVBUFFER_PTR_ADD) != 0)
            return;
        left -= done;
    }
}

int pgs_msg_peek(struct evbuffer *in, pgs_msg *m)
{
    unsigned char hdr[5];
    size_t have = evbuffer_get_length(in);

    if (have < sizeof hdr || evbuffer_copyout(in, hdr, sizeof hdr) != (ev_ssize_t)sizeof hdr)
        return PGS_MSG_SHORT;
    m->type = hdr[0];
    m->len = pgs_be32(hdr + 1);
    if (m->len < 4)
        return PGS_MSG_BROKEN;
    return have - 1 < m->len ? PGS_MSG_PART : PGS_MSG_WHOLE;
}
