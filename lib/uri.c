/* Percent-encoding as SigV4 defines it (RFC 3986 unreserved set). */
#include "internal.h"

#include <string.h>

static const char HEX_UPPER[] = "0123456789ABCDEF";

/* 1 for the unreserved set; '/' is handled by the callers' flag. */
const unsigned char dsql__unreserved[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static int is_unreserved(unsigned char c, int keep_slash)
{
    return dsql__unreserved[c] || (keep_slash && c == '/');
}

size_t dsql__uri_encoded_len(const char *s, size_t n, int keep_slash)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += is_unreserved((unsigned char)s[i], keep_slash) ? 1 : 3;
    return len;
}

size_t dsql__uri_encode(char *dst, const char *s, size_t n, int keep_slash)
{
    char *o = dst;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c, keep_slash)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = HEX_UPPER[c >> 4];
            *o++ = HEX_UPPER[c & 15];
        }
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
    for (size_t i = 0; i < n; i++)
        memcpy(dst + 2 * i, HEX_PAIRS + 2 * bytes[i], 2);
}
