/* The server plumbing dsql-local and dsql-proxy share (tools/pgserver):
 * log escaping, the first packet's kind and the startup packet's checks,
 * the pre-login cap's eviction order, the token bucket, message framing
 * followed in passing, and TLS on libevent. The accept loop and the cancel
 * relay run against a real gateway in test/t-gateway-floods.sh. */
#include <stdint.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "escape.h"
#include "frames.h"
#include "preauth.h"
#include "ratelimit.h"
#include "startup.h"
#include "tls.h"
#include "testutil.h"
#include "wire.h"

static const char *esc(const char *s, size_t len, int flags)
{
    static char out[256];
    return pgs_escape(out, sizeof out, s, len, flags);
}

#define ESC(lit, flags) esc(lit, sizeof lit - 1, flags)

START_TEST(escape_newline_cannot_start_a_line)
{
    ck_assert_str_eq(ESC("alice\n2026-01-01 forged", 0), "alice\\x0a2026-01-01 forged");
    ck_assert_str_eq(ESC("a\rb\tc", 0), "a\\x0db\\x09c");
}
END_TEST

START_TEST(escape_control_bytes_and_del)
{
    ck_assert_str_eq(ESC("\x1b[2J\x7f\x01", 0), "\\x1b[2J\\x7f\\x01");
    ck_assert_str_eq(esc("a\0b", 3, 0), "a\\x00b");
}
END_TEST

START_TEST(escape_keeps_printable_utf8)
{
    ck_assert_str_eq(ESC("j\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80", 0),
                     "j\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80");
}
END_TEST

START_TEST(escape_bytes_outside_utf8)
{
    ck_assert_str_eq(ESC("\xff", 0), "\\xff");
    ck_assert_str_eq(ESC("\xc0\xaf", 0), "\\xc0\\xaf");         /* overlong '/' */
    ck_assert_str_eq(ESC("\xed\xa0\x80", 0), "\\xed\\xa0\\x80"); /* a surrogate */
    ck_assert_str_eq(ESC("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
    ck_assert_str_eq(ESC("\xe2\x82", 0), "\\xe2\\x82");         /* cut short */
    ck_assert_str_eq(ESC("\xc3x", 0), "\\xc3x");                /* resyncs after it */
}
END_TEST

START_TEST(escape_c1_and_line_separators)
{
    ck_assert_str_eq(ESC("a\xc2\x85z", 0), "a\\xc2\\x85z");       /* NEL */
    ck_assert_str_eq(ESC("a\xe2\x80\xa8z", 0), "a\\xe2\\x80\\xa8z"); /* U+2028 */
    ck_assert_str_eq(ESC("a\xe2\x80\xa9z", 0), "a\\xe2\\x80\\xa9z"); /* U+2029 */
    ck_assert_str_eq(ESC("\xc2\xa0", 0), "\xc2\xa0"); /* NBSP is printable */
}
END_TEST

START_TEST(escape_quoted_marks_the_end)
{
    ck_assert_str_eq(ESC("a\"b\\c", PGS_ESC_QUOTED), "a\\\"b\\\\c");
    ck_assert_str_eq(ESC("a\"b\\c", 0), "a\"b\\c");
}
END_TEST

START_TEST(escape_cut_to_fit_never_splits)
{
    char out[8];

    pgs_escape(out, sizeof out, "abcdefghij", 10, 0);
    ck_assert_str_eq(out, "abcd...");
    pgs_escape(out, sizeof out, "\n\n\n", 3, 0);
    ck_assert_str_eq(out, "\\x0a...");
    pgs_escape(out, sizeof out, "ab\xc3\xbc\xc3\xbc\xc3\xbc", 8, 0);
    ck_assert_str_eq(out, "ab\xc3\xbc...");
    pgs_escape(out, sizeof out, "abcdefg", 7, 0);
    ck_assert_str_eq(out, "abcdefg"); /* fits exactly: no marker */
    pgs_escape(out, 1, "abc", 3, 0);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- startup packets ---- */

static size_t packet(unsigned char *buf, size_t cap, const char *const *pairs, size_t n)
{
    size_t off = 8, i;

    for (i = 0; i < n; i++) {
        size_t len = strlen(pairs[i]) + 1;
        ck_assert_uint_lt(off + len, cap);
        memcpy(buf + off, pairs[i], len);
        off += len;
    }
    buf[off++] = '\0';
    pgs_put_be32(buf, (uint32_t)off);
    pgs_put_be32(buf + 4, PGS_PROTO_V3);
    return off;
}

START_TEST(startup_unique_names_pass)
{
    const char *const pairs[] = {"user", "alice", "database", "postgres", "options", "user"};
    unsigned char buf[128];
    size_t len = packet(buf, sizeof buf, pairs, 6);
    const char *name = "x";

    ck_assert_int_eq(pgs_startup_duplicate(buf, len, &name), 0);
    ck_assert_ptr_null(name);
    ck_assert_str_eq(pgs_startup_param(buf, len, "user"), "alice");
}
END_TEST

START_TEST(startup_user_twice_is_named)
{
    const char *const pairs[] = {"user", "alice", "database", "postgres", "user", "admin"};
    unsigned char buf[128];
    size_t len = packet(buf, sizeof buf, pairs, 6);
    const char *name = NULL;

    ck_assert_int_eq(pgs_startup_duplicate(buf, len, &name), 1);
    ck_assert_str_eq(name, "user");
}
END_TEST

START_TEST(startup_names_compare_exactly)
{
    const char *const pairs[] = {"user", "a", "User", "b", "user ", "c"};
    unsigned char buf[128];
    size_t len = packet(buf, sizeof buf, pairs, 6);
    const char *name;

    ck_assert_int_eq(pgs_startup_duplicate(buf, len, &name), 0);
}
END_TEST

START_TEST(startup_many_pairs_last_repeats_first)
{
    static unsigned char buf[PGS_MAX_PACKET];
    size_t off = 8, i;
    const char *name = NULL;

    /* 8,000 distinct names with empty values ("kN\0\0"; buf starts
     * zeroed), then the first name again at the very end */
    for (i = 0; i < 8000; i++)
        off += (size_t)snprintf((char *)buf + off, sizeof buf - off, "k%zu", i) + 1 + 1;
    memcpy(buf + off, "k0\0v\0", 5);
    off += 5;
    buf[off++] = '\0';
    pgs_put_be32(buf, (uint32_t)off);
    pgs_put_be32(buf + 4, PGS_PROTO_V3);
    ck_assert_int_eq(pgs_startup_valid(buf, off), 1);
    ck_assert_int_eq(pgs_startup_duplicate(buf, off, &name), 1);
    ck_assert_str_eq(name, "k0");
}
END_TEST

START_TEST(startup_malformed_is_an_error)
{
    unsigned char buf[16] = {0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r'};
    const char *name;

    ck_assert_int_eq(pgs_startup_duplicate(buf, 12, &name), -1);
}
END_TEST

static pgs_packet kind_of(uint32_t len, uint32_t code)
{
    unsigned char hdr[8];

    pgs_put_be32(hdr, len);
    pgs_put_be32(hdr + 4, code);
    return pgs_packet_kind(hdr);
}

START_TEST(packet_kind_by_length_and_code)
{
    ck_assert_int_eq(kind_of(8, PGS_SSL_REQUEST), PGS_PACKET_SSL);
    ck_assert_int_eq(kind_of(8, PGS_GSSENC_REQUEST), PGS_PACKET_GSSENC);
    ck_assert_int_eq(kind_of(16, PGS_CANCEL_REQUEST), PGS_PACKET_CANCEL);
    ck_assert_int_eq(kind_of(40, PGS_PROTO_V3), PGS_PACKET_STARTUP);
    ck_assert_int_eq(kind_of(40, PGS_PROTO_V3 + 2), PGS_PACKET_STARTUP); /* 3.2 */
    ck_assert_int_eq(kind_of(40, 2u << 16), PGS_PACKET_UNSUPPORTED);     /* protocol 2 */
    /* a request code at another length is none of those requests */
    ck_assert_int_eq(kind_of(16, PGS_SSL_REQUEST), PGS_PACKET_UNSUPPORTED);
    ck_assert_int_eq(kind_of(8, PGS_CANCEL_REQUEST), PGS_PACKET_UNSUPPORTED);
    ck_assert_int_eq(kind_of(12, PGS_GSSENC_REQUEST), PGS_PACKET_UNSUPPORTED);
}
END_TEST

START_TEST(packet_kind_length_out_of_range_comes_first)
{
    ck_assert_int_eq(kind_of(0, PGS_SSL_REQUEST), PGS_PACKET_BAD_LENGTH);
    ck_assert_int_eq(kind_of(7, PGS_PROTO_V3), PGS_PACKET_BAD_LENGTH);
    ck_assert_int_eq(kind_of(PGS_MAX_PACKET, PGS_PROTO_V3), PGS_PACKET_STARTUP);
    ck_assert_int_eq(kind_of(PGS_MAX_PACKET + 1, PGS_PROTO_V3), PGS_PACKET_BAD_LENGTH);
    ck_assert_int_eq(kind_of(0xffffffffu, PGS_CANCEL_REQUEST), PGS_PACKET_BAD_LENGTH);
    ck_assert_int_eq(kind_of(0x80000008u, PGS_SSL_REQUEST), PGS_PACKET_BAD_LENGTH);
}
END_TEST

START_TEST(startup_check_gives_the_user)
{
    const char *const pairs[] = {"user", "alice", "database", "postgres"};
    unsigned char buf[128];
    size_t len = packet(buf, sizeof buf, pairs, 4);
    const char *user = NULL;
    char msg[300] = "";

    ck_assert_int_eq(pgs_startup_check(buf, len, &user, msg, sizeof msg), PGS_STARTUP_OK);
    ck_assert_str_eq(user, "alice");
}
END_TEST

START_TEST(startup_check_names_a_repeated_parameter_escaped)
{
    const char *const pairs[] = {"user", "a", "x\n\"y", "1", "x\n\"y", "2"};
    unsigned char buf[128];
    size_t len = packet(buf, sizeof buf, pairs, 6);
    const char *user = NULL;
    char msg[300];

    ck_assert_int_eq(pgs_startup_check(buf, len, &user, msg, sizeof msg), PGS_STARTUP_BAD);
    ck_assert_str_eq(msg, "invalid startup packet: parameter \"x\\x0a\\\"y\" appears more than once");
}
END_TEST

START_TEST(startup_check_layout_before_anything)
{
    /* the user pair is there, the closing NUL of the list is not */
    unsigned char buf[32] = {0, 0, 0, 19, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'b', 'o', 'b', 0,
                             'x', 0};
    const char *user = NULL;
    char msg[300];

    ck_assert_int_eq(pgs_startup_check(buf, 19, &user, msg, sizeof msg), PGS_STARTUP_BAD);
    ck_assert_str_eq(msg, "invalid startup packet layout");
    ck_assert_ptr_null(user);
    /* a length word that is not the packet's */
    pgs_put_be32(buf, 18);
    ck_assert_int_eq(pgs_startup_check(buf, 19, &user, msg, sizeof msg), PGS_STARTUP_BAD);
}
END_TEST

START_TEST(startup_check_wants_a_user)
{
    const char *const none[] = {"database", "postgres"};
    const char *const empty[] = {"user", "", "database", "postgres"};
    unsigned char buf[128];
    size_t len;
    const char *user;
    char msg[300];

    len = packet(buf, sizeof buf, none, 2);
    ck_assert_int_eq(pgs_startup_check(buf, len, &user, msg, sizeof msg), PGS_STARTUP_NO_USER);
    ck_assert_str_eq(msg, "no PostgreSQL user name specified in startup packet");
    len = packet(buf, sizeof buf, empty, 4);
    ck_assert_int_eq(pgs_startup_check(buf, len, &user, msg, sizeof msg), PGS_STARTUP_NO_USER);
}
END_TEST

/* ---- the pre-login cap ---- */

typedef struct fake_conn {
    pgs_preauth_node node;
    int evicted;
} fake_conn;

static void evict(pgs_preauth_node *n, void *arg)
{
    (void)arg;
    ck_assert_int_eq(n->listed, 0); /* off the lists before the callback */
    ((fake_conn *)(void *)n)->evicted = 1;
}

START_TEST(preauth_idle_ones_go_first)
{
    pgs_preauth p;
    fake_conn c[4];

    memset(c, 0, sizeof c);
    pgs_preauth_init(&p, 3, evict, NULL);
    pgs_preauth_add(&p, &c[0].node);
    pgs_preauth_add(&p, &c[1].node);
    pgs_preauth_add(&p, &c[2].node);
    pgs_preauth_talking(&p, &c[0].node); /* the oldest is logging in */
    pgs_preauth_add(&p, &c[3].node);
    ck_assert_int_eq(c[0].evicted, 0);
    ck_assert_int_eq(c[1].evicted, 1); /* the oldest silent one */
    ck_assert_int_eq(c[2].evicted, 0);
    ck_assert_uint_eq(p.count, 3);
    ck_assert_uint_eq(p.evicted, 1);
}
END_TEST

START_TEST(preauth_then_the_oldest_talking)
{
    pgs_preauth p;
    fake_conn c[3];

    memset(c, 0, sizeof c);
    pgs_preauth_init(&p, 2, evict, NULL);
    pgs_preauth_add(&p, &c[0].node);
    pgs_preauth_add(&p, &c[1].node);
    pgs_preauth_talking(&p, &c[1].node);
    pgs_preauth_talking(&p, &c[0].node); /* spoke later, still older */
    pgs_preauth_add(&p, &c[2].node);
    ck_assert_int_eq(c[0].evicted, 1);
    ck_assert_int_eq(c[1].evicted, 0);
}
END_TEST

START_TEST(preauth_under_the_cap_nobody_goes)
{
    pgs_preauth p;
    fake_conn c[200];
    int i;

    memset(c, 0, sizeof c);
    pgs_preauth_init(&p, pgs_preauth_default_limit(1024), evict, NULL);
    ck_assert_uint_eq(p.limit, 512);
    for (i = 0; i < 200; i++)
        pgs_preauth_add(&p, &c[i].node);
    for (i = 0; i < 200; i++)
        ck_assert_int_eq(c[i].evicted, 0);
    pgs_preauth_remove(&p, &c[5].node);
    pgs_preauth_remove(&p, &c[5].node); /* twice: harmless */
    ck_assert_uint_eq(p.count, 199);
    ck_assert_int_eq(pgs_preauth_evict_one(&p), 1);
    ck_assert_int_eq(c[0].evicted, 1);
}
END_TEST

START_TEST(preauth_empty_has_nothing_to_evict)
{
    pgs_preauth p;

    pgs_preauth_init(&p, 4, evict, NULL);
    ck_assert_int_eq(pgs_preauth_evict_one(&p), 0);
}
END_TEST

/* ---- the token bucket ---- */

START_TEST(ratelimit_burst_then_refuses_and_counts)
{
    pgs_ratelimit rl;
    int i, ok = 0;

    pgs_ratelimit_init(&rl, 0.001, 5); /* refills far slower than the test runs */
    for (i = 0; i < 12; i++)
        ok += pgs_ratelimit_take(&rl);
    ck_assert_int_eq(ok, 5);
    ck_assert_uint_eq(pgs_ratelimit_take_refused(&rl), 7);
    ck_assert_uint_eq(pgs_ratelimit_take_refused(&rl), 0);
}
END_TEST

/* ---- message framing followed in passing ---- */

/* A backend's answer to "select 1": RowDescription, DataRow,
 * CommandComplete, ReadyForQuery. */
static const unsigned char ANSWER[] = {
    'T', 0, 0, 0, 33, 0, 1, '?', 'c', 'o', 'l', 'u', 'm', 'n', '?', 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0,
    'D', 0, 0, 0, 11, 0, 1, 0, 0, 0, 1, '1',
    'C', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0,
    'Z', 0, 0, 0, 5, 'I'};
/* where each message ends: 34, 46, 60, 66 */

START_TEST(frames_whole_answer_ends_between_messages)
{
    pgs_frames f;

    pgs_frames_init(&f, "Z");
    ck_assert(pgs_frames_between(&f));
    pgs_frames_feed(&f, ANSWER, sizeof ANSWER);
    ck_assert(pgs_frames_between(&f));
    ck_assert_uint_eq(f.seen, 1);
    ck_assert_int_eq(f.last, 'Z');
}
END_TEST

START_TEST(frames_every_split_point_gives_the_same_answer)
{
    size_t cut, i;

    /* bytes arrive cut anywhere, headers included: after every byte but
     * the message ends, the stream is inside a message */
    for (cut = 1; cut < sizeof ANSWER; cut++) {
        pgs_frames f;
        pgs_frames_init(&f, "Z");
        pgs_frames_feed(&f, ANSWER, cut);
        ck_assert_int_eq(pgs_frames_between(&f), cut == 34 || cut == 46 || cut == 60);
        pgs_frames_feed(&f, ANSWER + cut, sizeof ANSWER - cut);
        ck_assert(pgs_frames_between(&f));
        ck_assert_uint_eq(f.seen, 1);
    }
    {
        pgs_frames f; /* one byte at a time */
        pgs_frames_init(&f, "Z");
        for (i = 0; i < sizeof ANSWER; i++)
            pgs_frames_feed(&f, ANSWER + i, 1);
        ck_assert(pgs_frames_between(&f));
        ck_assert_uint_eq(f.seen, 1);
        ck_assert_int_eq(f.last, 'Z');
    }
}
END_TEST

START_TEST(frames_counts_only_watched_types)
{
    /* a client's simple query, then an extended-protocol round with Sync */
    static const unsigned char asked[] = {
        'Q', 0, 0, 0, 13, 's', 'e', 'l', 'e', 'c', 't', ' ', '1', 0,
        'P', 0, 0, 0, 9, 0, 'x', 0, 0, 0, /* Parse: "", "x", no types */
        'B', 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0,
        'E', 0, 0, 0, 9, 0, 0, 0, 0, 0,
        'S', 0, 0, 0, 4};
    pgs_frames f;

    pgs_frames_init(&f, "QSF");
    pgs_frames_feed(&f, asked, sizeof asked);
    ck_assert_uint_eq(f.seen, 2);
    ck_assert_int_eq(f.last, 'S');
    ck_assert(pgs_frames_between(&f));
}
END_TEST

START_TEST(frames_large_body_is_skipped_by_length)
{
    unsigned char hdr[5] = {'D', 0, 0x10, 0, 4}; /* 1 MiB of body */
    static unsigned char body[0x100000];
    pgs_frames f;

    pgs_frames_init(&f, "Z");
    pgs_frames_feed(&f, hdr, sizeof hdr);
    pgs_frames_feed(&f, body, sizeof body - 1);
    ck_assert(!pgs_frames_between(&f));
    pgs_frames_feed(&f, body, 1);
    ck_assert(pgs_frames_between(&f));
    ck_assert_uint_eq(f.seen, 0);
}
END_TEST

/* An evbuffer holding bytes [0, cut) and [cut, n) of p as two chains of
 * their own (references: libevent joins nothing). */
static struct evbuffer *two_chains(const unsigned char *p, size_t n, size_t cut)
{
    struct evbuffer *b = evbuffer_new();

    ck_assert_ptr_nonnull(b);
    if (cut > 0)
        ck_assert_int_eq(evbuffer_add_reference(b, p, cut, NULL, NULL), 0);
    if (n > cut)
        ck_assert_int_eq(evbuffer_add_reference(b, p + cut, n - cut, NULL, NULL), 0);
    return b;
}

START_TEST(frames_evbuffer_chains_cut_anywhere)
{
    size_t cut;

    for (cut = 0; cut <= sizeof ANSWER; cut++) {
        struct evbuffer *b = two_chains(ANSWER, sizeof ANSWER, cut);
        pgs_frames f;
        pgs_frames_init(&f, "Z");
        pgs_frames_feed_evbuffer(&f, b);
        ck_assert_msg(pgs_frames_between(&f), "cut at %zu", cut);
        ck_assert_uint_eq(f.seen, 1);
        ck_assert_int_eq(f.last, 'Z');
        ck_assert_uint_eq(evbuffer_get_length(b), sizeof ANSWER); /* nothing taken */
        evbuffer_free(b);
    }
}
END_TEST

START_TEST(frames_evbuffer_reads_across_reads)
{
    size_t cut;

    /* one read ends anywhere, the next brings the rest */
    for (cut = 1; cut < sizeof ANSWER; cut++) {
        struct evbuffer *first = two_chains(ANSWER, cut, cut / 2);
        struct evbuffer *rest = two_chains(ANSWER + cut, sizeof ANSWER - cut, 0);
        pgs_frames f;
        pgs_frames_init(&f, "Z");
        pgs_frames_feed_evbuffer(&f, first);
        ck_assert_int_eq(pgs_frames_between(&f), cut == 34 || cut == 46 || cut == 60);
        ck_assert_uint_eq(f.seen, cut >= 65); /* the 'Z' header is bytes 60..64 */
        pgs_frames_feed_evbuffer(&f, rest);
        ck_assert(pgs_frames_between(&f));
        ck_assert_uint_eq(f.seen, 1);
        evbuffer_free(first);
        evbuffer_free(rest);
    }
}
END_TEST

START_TEST(frames_evbuffer_more_chains_than_one_peek)
{
    struct evbuffer *b = evbuffer_new();
    unsigned i;
    pgs_frames f;

    /* a chain a byte: far more than the 8 looked at in one go */
    for (i = 0; i < sizeof ANSWER; i++)
        ck_assert_int_eq(evbuffer_add_reference(b, ANSWER + i, 1, NULL, NULL), 0);
    pgs_frames_init(&f, "DZ");
    pgs_frames_feed_evbuffer(&f, b);
    ck_assert(pgs_frames_between(&f));
    ck_assert_uint_eq(f.seen, 2);
    ck_assert_int_eq(f.last, 'Z');
    evbuffer_free(b);
}
END_TEST

START_TEST(frames_evbuffer_empty_changes_nothing)
{
    struct evbuffer *b = evbuffer_new();
    pgs_frames f;

    pgs_frames_init(&f, "Z");
    pgs_frames_feed(&f, ANSWER, 3); /* inside a header */
    pgs_frames_feed_evbuffer(&f, b);
    ck_assert(!pgs_frames_between(&f));
    ck_assert_uint_eq(f.hdr_have, 3);
    evbuffer_free(b);
}
END_TEST

START_TEST(frames_garbage_lengths_do_not_derail)
{
    /* a length word under 4 is a broken stream: an empty message, the next
     * header follows at once; a huge one keeps the stream inside it */
    static const unsigned char under4[] = {'X', 0, 0, 0, 0, 'Y', 0, 0, 0, 3,
                                           'Z', 0, 0, 0, 5, 'I'};
    static const unsigned char huge[] = {'D', 0xff, 0xff, 0xff, 0xff, 'Z', 0, 0, 0, 5, 'I'};
    pgs_frames f;
    size_t i;

    pgs_frames_init(&f, "Z");
    for (i = 0; i < sizeof under4; i++)
        pgs_frames_feed(&f, under4 + i, 1);
    ck_assert(pgs_frames_between(&f));
    ck_assert_uint_eq(f.seen, 1);
    ck_assert_int_eq(f.last, 'Z');

    pgs_frames_init(&f, "Z");
    pgs_frames_feed(&f, huge, sizeof huge);
    ck_assert(!pgs_frames_between(&f));
    ck_assert_uint_eq(f.seen, 0); /* the 'Z' is body of the huge one */
    ck_assert_uint_eq(f.body_left, 0xfffffffbu - 6);
}
END_TEST

START_TEST(msg_peek_header_then_whole_at_every_cut)
{
    size_t cut;

    /* ANSWER's first message is 34 bytes: 'T' and a length word of 33 */
    for (cut = 0; cut <= 40; cut++) {
        struct evbuffer *b = two_chains(ANSWER, cut, cut / 2);
        pgs_msg m;
        int r = pgs_msg_peek(b, &m);
        if (cut < 5) {
            ck_assert_int_eq(r, PGS_MSG_SHORT);
        } else {
            ck_assert_int_eq(r, cut < 34 ? PGS_MSG_PART : PGS_MSG_WHOLE);
            ck_assert_int_eq(m.type, 'T');
            ck_assert_uint_eq(m.len, 33);
        }
        ck_assert_uint_eq(evbuffer_get_length(b), cut); /* looked at, not taken */
        evbuffer_free(b);
    }
}
END_TEST

START_TEST(msg_peek_garbage_lengths)
{
    static const unsigned char under4[] = {'p', 0, 0, 0, 3, 'x', 'y'};
    static const unsigned char four[] = {'S', 0, 0, 0, 4};
    static const unsigned char huge[] = {'p', 0xff, 0xff, 0xff, 0xff, 'x'};
    struct evbuffer *b = evbuffer_new();
    pgs_msg m;

    evbuffer_add(b, under4, sizeof under4);
    ck_assert_int_eq(pgs_msg_peek(b, &m), PGS_MSG_BROKEN);
    ck_assert_uint_eq(m.len, 3);
    evbuffer_drain(b, sizeof under4);
    evbuffer_add(b, four, sizeof four); /* an empty body: whole at once */
    ck_assert_int_eq(pgs_msg_peek(b, &m), PGS_MSG_WHOLE);
    evbuffer_drain(b, sizeof four);
    evbuffer_add(b, huge, sizeof huge); /* never whole; the caller's cap decides */
    ck_assert_int_eq(pgs_msg_peek(b, &m), PGS_MSG_PART);
    ck_assert_uint_eq(m.len, 0xffffffffu);
    evbuffer_free(b);
}
END_TEST

/* ---- ErrorResponse fields ---- */

START_TEST(error_fields_walked_in_order)
{
    static const unsigned char body[] = "SERROR\0C40001\0Mconflict\0Mlater\0";
    size_t off = 0, n = sizeof body; /* the literal's NUL closes the list */
    const char *v;
    char code;

    ck_assert_int_eq(pgs_error_next_field(body, n, &off, &code, &v), 1);
    ck_assert_int_eq(code, 'S');
    ck_assert_str_eq(v, "ERROR");
    ck_assert_int_eq(pgs_error_next_field(body, n, &off, &code, &v), 1);
    ck_assert_int_eq(pgs_error_next_field(body, n, &off, &code, &v), 1);
    ck_assert_int_eq(pgs_error_next_field(body, n, &off, &code, &v), 1);
    ck_assert_str_eq(v, "later");
    ck_assert_int_eq(pgs_error_next_field(body, n, &off, &code, &v), 0);
    ck_assert_str_eq(pgs_error_field(body, n, 'M'), "conflict"); /* the first */
    ck_assert_str_eq(pgs_error_field(body, n, 'C'), "40001");
    ck_assert_ptr_null(pgs_error_field(body, n, 'D'));
}
END_TEST

START_TEST(error_fields_malformed_bodies)
{
    static const unsigned char no_final[] = {'M', 'x', 0, 'C'};
    static const unsigned char empty_list[] = {0};
    size_t off = 0;
    const char *v;
    char code;

    /* no NUL at the end: nothing read past it, nothing found */
    ck_assert_int_eq(pgs_error_next_field(no_final, sizeof no_final, &off, &code, &v), -1);
    ck_assert_ptr_null(pgs_error_field(no_final, sizeof no_final, 'M'));
    ck_assert_int_eq(pgs_error_next_field(no_final, 0, &off, &code, &v), -1);
    ck_assert_int_eq(pgs_error_next_field(empty_list, 1, &off, &code, &v), 0);
    ck_assert_ptr_null(pgs_error_field(empty_list, 1, 'M'));
    /* the last value's NUL is the body's end: a list without its closing
     * NUL ends there */
    off = 0;
    ck_assert_int_eq(pgs_error_next_field(no_final, 3, &off, &code, &v), 1);
    ck_assert_str_eq(v, "x");
    ck_assert_int_eq(pgs_error_next_field(no_final, 3, &off, &code, &v), 0);
}
END_TEST

/* ---- TLS on libevent ---- */

static int alpn(const unsigned char *list, unsigned int n, const char **chosen)
{
    const unsigned char *out = NULL;
    unsigned char outlen = 0;
    int r = pgs_tls_alpn_select(NULL, &out, &outlen, list, n, NULL);
    static char buf[256];

    memcpy(buf, out ? (const char *)out : "", out ? outlen : 0);
    buf[out ? outlen : 0] = '\0';
    *chosen = buf;
    return r;
}

START_TEST(tls_alpn_picks_postgresql_among_others)
{
    static const unsigned char list[] = "\x02h2\x08http/1.1\x0apostgresql";
    const char *chosen;

    ck_assert_int_eq(alpn(list, sizeof list - 1, &chosen), SSL_TLSEXT_ERR_OK);
    ck_assert_str_eq(chosen, "postgresql");
    ck_assert_int_eq(alpn((const unsigned char *)PGS_TLS_ALPN, sizeof PGS_TLS_ALPN - 1, &chosen),
                     SSL_TLSEXT_ERR_OK);
}
END_TEST

START_TEST(tls_alpn_nothing_else_and_no_overread)
{
    static const unsigned char other[] = "\x08http/1.1";
    static const unsigned char longer[] = "\x0bpostgresqlx\x08postgres";
    /* the length byte runs past the list: the name after it is never read */
    static const unsigned char broken[] = "\x02h2\x0fpostgresql";
    const char *chosen;

    ck_assert_int_eq(alpn(other, sizeof other - 1, &chosen), SSL_TLSEXT_ERR_NOACK);
    ck_assert_int_eq(alpn(longer, sizeof longer - 1, &chosen), SSL_TLSEXT_ERR_NOACK);
    ck_assert_int_eq(alpn(broken, sizeof broken - 1, &chosen), SSL_TLSEXT_ERR_NOACK);
    ck_assert_int_eq(alpn(other, 0, &chosen), SSL_TLSEXT_ERR_NOACK);
}
END_TEST

START_TEST(tls_contexts_both_ends_same_floor)
{
    int server;

    for (server = 0; server <= 1; server++) {
        SSL_CTX *ctx = pgs_tls_ctx_new(server);
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
        ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_free(ctx);
    }
}
END_TEST

START_TEST(tls_bufferevent_owns_the_socket_through_our_bio)
{
    struct event_base *base = event_base_new();
    SSL_CTX *ctx = pgs_tls_ctx_new(0);
    SSL *ssl = SSL_new(ctx);
    struct bufferevent *bev;
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_nonnull(ssl);
    bev = pgs_tls_bufferevent(base, sv[0], ssl, BUFFEREVENT_SSL_CONNECTING);
    ck_assert_ptr_nonnull(bev);
    ck_assert_ptr_eq(bufferevent_openssl_get_ssl(bev), ssl);
    ck_assert_int_eq(BIO_get_fd(SSL_get_rbio(ssl), NULL), sv[0]);
    bufferevent_free(bev);
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred callbacks: the free ends here */
    ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1); /* closed with it */
    close(sv[1]);
    SSL_CTX_free(ctx);
    event_base_free(base);
}
END_TEST

START_TEST(tls_bufferevent_without_close_on_free_leaves_both)
{
    struct event_base *base = event_base_new();
    SSL_CTX *ctx = pgs_tls_ctx_new(0);
    SSL *ssl = SSL_new(ctx);
    struct bufferevent *bev;
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    bev = pgs_tls_bufferevent_opts(base, sv[0], ssl, BUFFEREVENT_SSL_CONNECTING, 0);
    ck_assert_ptr_nonnull(bev);
    ck_assert_int_eq(BIO_get_fd(SSL_get_rbio(ssl), NULL), sv[0]);
    bufferevent_free(bev);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_ne(fcntl(sv[0], F_GETFD), -1); /* still the caller's */
    SSL_free(ssl); /* and so is ssl: a leak here would show under ASan */
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(ctx);
    event_base_free(base);
}
END_TEST

static Suite *pgserver_suite(void)
{
    Suite *s = suite_create("pgserver");
    TCase *t = tcase_create("core");

    tcase_add_test(t, escape_newline_cannot_start_a_line);
    tcase_add_test(t, escape_control_bytes_and_del);
    tcase_add_test(t, escape_keeps_printable_utf8);
    tcase_add_test(t, escape_bytes_outside_utf8);
    tcase_add_test(t, escape_c1_and_line_separators);
    tcase_add_test(t, escape_quoted_marks_the_end);
    tcase_add_test(t, escape_cut_to_fit_never_splits);
    tcase_add_test(t, startup_unique_names_pass);
    tcase_add_test(t, startup_user_twice_is_named);
    tcase_add_test(t, startup_names_compare_exactly);
    tcase_add_test(t, startup_many_pairs_last_repeats_first);
    tcase_add_test(t, startup_malformed_is_an_error);
    tcase_add_test(t, packet_kind_by_length_and_code);
    tcase_add_test(t, packet_kind_length_out_of_range_comes_first);
    tcase_add_test(t, startup_check_gives_the_user);
    tcase_add_test(t, startup_check_names_a_repeated_parameter_escaped);
    tcase_add_test(t, startup_check_layout_before_anything);
    tcase_add_test(t, startup_check_wants_a_user);
    tcase_add_test(t, preauth_idle_ones_go_first);
    tcase_add_test(t, preauth_then_the_oldest_talking);
    tcase_add_test(t, preauth_under_the_cap_nobody_goes);
    tcase_add_test(t, preauth_empty_has_nothing_to_evict);
    tcase_add_test(t, ratelimit_burst_then_refuses_and_counts);
    tcase_add_test(t, frames_whole_answer_ends_between_messages);
    tcase_add_test(t, frames_every_split_point_gives_the_same_answer);
    tcase_add_test(t, frames_counts_only_watched_types);
    tcase_add_test(t, frames_large_body_is_skipped_by_length);
    tcase_add_test(t, frames_evbuffer_chains_cut_anywhere);
    tcase_add_test(t, frames_evbuffer_reads_across_reads);
    tcase_add_test(t, frames_evbuffer_more_chains_than_one_peek);
    tcase_add_test(t, frames_evbuffer_empty_changes_nothing);
    tcase_add_test(t, frames_garbage_lengths_do_not_derail);
    tcase_add_test(t, msg_peek_header_then_whole_at_every_cut);
    tcase_add_test(t, msg_peek_garbage_lengths);
    tcase_add_test(t, error_fields_walked_in_order);
    tcase_add_test(t, error_fields_malformed_bodies);
    tcase_add_test(t, tls_alpn_picks_postgresql_among_others);
    tcase_add_test(t, tls_alpn_nothing_else_and_no_overread);
    tcase_add_test(t, tls_contexts_both_ends_same_floor);
    tcase_add_test(t, tls_bufferevent_owns_the_socket_through_our_bio);
    tcase_add_test(t, tls_bufferevent_without_close_on_free_leaves_both);
    suite_add_tcase(s, t);
    return s;
}

TEST_MAIN(pgserver_suite)
