/* Percent-encoding as SigV4 defines it (RFC 3986 unreserved set). */
#include "internal.h"

#include <string.h>

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
