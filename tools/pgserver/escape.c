/* pgserver: escaping for logs. A user name or host name from a client must
 * not start a new log line (a newline would forge one) nor carry terminal
 * control sequences or bytes a log reader cannot decode. */
#include <stdio.h>
#include <string.h>

#include "escape.h"

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 section 4: no
 * overlongs, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* C1 controls (U+0080..U+009F) and the Unicode line/paragraph separators. */
static int is_unsafe_char(const unsigned char *s, size_t n)
{
    if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)
        return 1;
    return n == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9);
}

char *pgs_escape(char *dst, size_t cap, const char *src, size_t len, int flags)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0, mark = 0; /* mark: the last cut point with room for "..." */
    int cut = 0;

    if (cap == 0)
        return dst;
    while (i < len) {
        char piece[16];
        size_t plen, n = 1;
        unsigned char c = s[i];

        if (c >= 0x20 && c < 0x7f) {
            if ((flags & PGS_ESC_QUOTED) && (c == '\\' || c == '"')) {
                piece[0] = '\\';
                piece[1] = (char)c;
                plen = 2;
            } else {
                piece[0] = (char)c;
                plen = 1;
            }
        } else if (c >= 0x80 && (n = utf8_len(s + i, len - i)) > 0 &&
                   !is_unsafe_char(s + i, n)) {
            memcpy(piece, s + i, n);
            plen = n;
        } else {
            size_t k;
            if (n == 0)
                n = 1; /* an invalid byte: escape it alone, resync after it */
            for (k = 0, plen = 0; k < n; k++, plen += 4)
                snprintf(piece + plen, sizeof piece - plen, "\\x%02x", s[i + k]);
        }
        if (o + plen >= cap) {
            cut = 1;
            break;
        }
        memcpy(dst + o, piece, plen);
        o += plen;
        i += n;
        if (o + 3 < cap)
            mark = o;
    }
    if (cut) {
        o = mark;
        if (o + 3 < cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
        }
    }
    dst[o] = '\0';
    return dst;
}
