/* A growable string for the non-hot paths (lib/strbuf.c). Appends after a
 * failed allocation are ignored; check .failed once at the end. */
#ifndef DSQLAUTH_STRBUF_H
#define DSQLAUTH_STRBUF_H

#include <stddef.h>

typedef struct dsql__strbuf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} dsql__strbuf;

void dsql__sb_append(dsql__strbuf *sb, const char *s, size_t n);
void dsql__sb_puts(dsql__strbuf *sb, const char *s);
void dsql__sb_putc(dsql__strbuf *sb, char c);
void dsql__sb_encoded(dsql__strbuf *sb, const char *s, size_t n, int keep_slash);
/* Returns the NUL-terminated string and leaves sb empty; NULL if failed. */
char *dsql__sb_take(dsql__strbuf *sb);
/* Wipes (the buffer may hold secrets) and frees. */
void dsql__sb_free(dsql__strbuf *sb);

#endif
