/* Percent-encoding as SigV4 defines it (RFC 3986 unreserved set). */
#include "internal.h"

#include <pthread.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const char HEX_UPPER[] = "0123456789ABCDEF";

/* Character classes: the SigV4 unreserved set, and which of those may
 * appear in a hostname label. */
#define U DSQL__CC_UNRESERVED
#define H (DSQL__CC_UNRESERVED | DSQL__CC_HOST_LABEL)
const unsigned char dsql__char_class[256] = {
    ['-'] = H, ['_'] = H, ['.'] = U, ['~'] = U,
    ['0'] = H, ['1'] = H, ['2'] = H, ['3'] = H, ['4'] = H, ['5'] = H, ['6'] = H, ['7'] = H,
    ['8'] = H, ['9'] = H,
    ['A'] = H, ['B'] = H, ['C'] = H, ['D'] = H, ['E'] = H, ['F'] = H, ['G'] = H, ['H'] = H,
    ['I'] = H, ['J'] = H, ['K'] = H, ['L'] = H, ['M'] = H, ['N'] = H, ['O'] = H, ['P'] = H,
    ['Q'] = H, ['R'] = H, ['S'] = H, ['T'] = H, ['U'] = H, ['V'] = H, ['W'] = H, ['X'] = H,
    ['Y'] = H, ['Z'] = H,
    ['a'] = H, ['b'] = H, ['c'] = H, ['d'] = H, ['e'] = H, ['f'] = H, ['g'] = H, ['h'] = H,
    ['i'] = H, ['j'] = H, ['k'] = H, ['l'] = H, ['m'] = H, ['n'] = H, ['o'] = H, ['p'] = H,
    ['q'] = H, ['r'] = H, ['s'] = H, ['t'] = H, ['u'] = H, ['v'] = H, ['w'] = H, ['x'] = H,
    ['y'] = H, ['z'] = H,
};
#undef U
#undef H


static int is_unreserved(unsigned char c, int keep_slash)
{
    return (dsql__char_class[c] & DSQL__CC_UNRESERVED) || (keep_slash && c == '/');
}

size_t dsql__uri_encoded_len(const char *s, size_t n, int keep_slash)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += is_unreserved((unsigned char)s[i], keep_slash) ? 1 : 3;
    return len;
}

/* Each byte's encoded form, padded to 4 bytes, and its length: the loop
 * below stores 4 bytes and advances by the length, with no branch per
 * byte (long session tokens are encoded on every one-shot token). */
typedef struct enc_entry {
    char text[3];
    unsigned char len;
} enc_entry;

static enc_entry ENC_TABLE[2][256]; /* [keep_slash][byte] */

static void enc_table_build(void)
{
    for (int keep = 0; keep < 2; keep++)
        for (int c = 0; c < 256; c++) {
            enc_entry *e = &ENC_TABLE[keep][c];
            if (is_unreserved((unsigned char)c, keep)) {
                *e = (enc_entry){{(char)c, 0, 0}, 1};
            } else {
                *e = (enc_entry){{'%', HEX_UPPER[c >> 4], HEX_UPPER[c & 15]}, 3};
            }
        }
}

static const enc_entry *enc_table(int keep_slash)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, enc_table_build);
    return ENC_TABLE[keep_slash ? 1 : 0];
}

#if defined(__SSE2__)
/* Bit i set when byte i of v needs encoding (signed compares: bytes from
 * 0x80 up are negative and fail every range). */
static unsigned reserved_mask(__m128i v, int keep_slash)
{
#define IN(lo, hi) \
    _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((lo) - 1)), \
                  _mm_cmplt_epi8(v, _mm_set1_epi8((hi) + 1)))
#define IS(c) _mm_cmpeq_epi8(v, _mm_set1_epi8(c))
    __m128i ok = _mm_or_si128(_mm_or_si128(IN('0', '9'), IN('A', 'Z')), IN('a', 'z'));
    ok = _mm_or_si128(ok, _mm_or_si128(_mm_or_si128(IS('-'), IS('.')),
                                       _mm_or_si128(IS('_'), IS('~'))));
    if (keep_slash)
        ok = _mm_or_si128(ok, IS('/'));
#undef IN
#undef IS
    return ~(unsigned)_mm_movemask_epi8(ok) & 0xFFFFu;
}
#endif

size_t dsql__uri_encode(char *dst, const char *s, size_t n, int keep_slash)
{
    const enc_entry *t = enc_table(keep_slash);
    char *o = dst;
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time: stored whole, then cut at the first byte that
     * needs encoding. Those 16 input bytes give at least 16 output bytes,
     * so the store never passes the end of the whole encoding. */
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned bad = reserved_mask(v, keep_slash);
        _mm_storeu_si128((__m128i *)o, v);
        if (!bad) {
            i += 16;
            o += 16;
            continue;
        }
        unsigned k = (unsigned)__builtin_ctz(bad);
        o += k;
        i += k;
        memcpy(o, t[(unsigned char)s[i]].text, 3);
        o += 3;
        i++;
    }
#endif
    /* A 4-byte store may run 3 bytes past this byte's encoding; the three
     * bytes still to come produce at least that much, so it never passes
     * the end of the whole encoding. The last three go the careful way. */
    for (; i + 3 < n; i++) {
        const enc_entry *e = &t[(unsigned char)s[i]];
        memcpy(o, e, 4);
        o += e->len;
    }
    for (; i < n; i++) {
        const enc_entry *e = &t[(unsigned char)s[i]];
        memcpy(o, e->text, e->len);
        o += e->len;
    }
    return (size_t)(o - dst);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t dsql__uri_decode(char *dst, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n &&
            (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[o++] = s[i];
        }
    }
    return o;
}

#define HEX_ROW(h)                                                                      \
    h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h \
      "e" h "f"
/* two digits per byte value: one lookup per byte on the token's hot path */
static const char HEX_PAIRS[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3")
    HEX_ROW("4") HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9")
    HEX_ROW("a") HEX_ROW("b") HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

void dsql__hex(char *dst, const unsigned char *bytes, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time: split into nibbles, interleave high/low, add
     * '0', and 'a' - '0' - 10 more where the nibble is above 9 */
    const __m128i low4 = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9);
    const __m128i zero = _mm_set1_epi8('0'), gap = _mm_set1_epi8('a' - '0' - 10);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(bytes + i));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4), lo = _mm_and_si128(v, low4);
        __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);
        a = _mm_add_epi8(_mm_add_epi8(a, zero), _mm_and_si128(_mm_cmpgt_epi8(a, nine), gap));
        b = _mm_add_epi8(_mm_add_epi8(b, zero), _mm_and_si128(_mm_cmpgt_epi8(b, nine), gap));
        _mm_storeu_si128((__m128i *)(dst + 2 * i), a);
        _mm_storeu_si128((__m128i *)(dst + 2 * i + 16), b);
    }
#endif
    for (; i < n; i++)
        memcpy(dst + 2 * i, HEX_PAIRS + 2 * bytes[i], 2);
}
