/* Growable strings for request building; wiped on free because they may
 * carry session tokens. */
#include "internal.h"
#include "strbuf.h"

#include <string.h>
#include <openssl/crypto.h>

static int reserve(dsql__strbuf *sb, size_t extra)
{
    if (sb->failed)
        return 0;
    if (extra > SIZE_MAX - sb->len - 1) {
        sb->failed = 1;
        return 0;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 1;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    /* no realloc: the old block may hold a secret and must be wiped */
    char *p = dsql__malloc(cap);
    if (!p) {
        sb->failed = 1;
        return 0;
    }
    if (sb->data) {
        memcpy(p, sb->data, sb->len);
        OPENSSL_cleanse(sb->data, sb->cap);
        dsql__free(sb->data);
    }
    sb->data = p;
    sb->cap = cap;
    return 1;
}

void dsql__sb_append(dsql__strbuf *sb, const char *s, size_t n)
{
    if (!reserve(sb, n))
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void dsql__sb_puts(dsql__strbuf *sb, const char *s) { dsql__sb_append(sb, s, strlen(s)); }

void dsql__sb_putc(dsql__strbuf *sb, char c) { dsql__sb_append(sb, &c, 1); }

void dsql__sb_encoded(dsql__strbuf *sb, const char *s, size_t n, int keep_slash)
{
    if (!reserve(sb, dsql__uri_encoded_len(s, n, keep_slash)))
        return;
    sb->len += dsql__uri_encode(sb->data + sb->len, s, n, keep_slash);
    sb->data[sb->len] = '\0';
}

char *dsql__sb_take(dsql__strbuf *sb)
{
    if (sb->failed || !reserve(sb, 0)) {
        dsql__sb_free(sb);
        return NULL;
    }
    char *p = sb->data;
    memset(sb, 0, sizeof *sb);
    return p;
}

void dsql__sb_free(dsql__strbuf *sb)
{
    if (sb->data) {
        OPENSSL_cleanse(sb->data, sb->cap);
        dsql__free(sb->data);
    }
    memset(sb, 0, sizeof *sb);
}
