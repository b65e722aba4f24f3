/* Percent-encoding as SigV4 defines it (RFC 3986 unreserved set). */
#include "internal.h"

static const char HEX_UPPER[] = "0123456789ABCDEF";

static int is_unreserved(unsigned char c, int keep_slash)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
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

void dsql__hex(char *dst, const unsigned char *bytes, size_t n)
{
    static const char HEX_LOWER[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = HEX_LOWER[bytes[i] >> 4];
        dst[2 * i + 1] = HEX_LOWER[bytes[i] & 15];
    }
}
