/* The allocator seam: lets embedders and the allocation-failure tests
 * replace malloc/realloc/free for the whole library. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static dsql_malloc_fn g_malloc = malloc;
static dsql_realloc_fn g_realloc = realloc;
static dsql_free_fn g_free = free;

void dsql_set_allocator(dsql_malloc_fn m, dsql_realloc_fn r, dsql_free_fn f)
{
    g_malloc = m ? m : malloc;
    g_realloc = r ? r : realloc;
    g_free = f ? f : free;
}

void *dsql__malloc(size_t size) { return g_malloc(size ? size : 1); }

void *dsql__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = dsql__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *dsql__realloc(void *ptr, size_t size) { return g_realloc(ptr, size ? size : 1); }

void dsql__free(void *ptr)
{
    if (ptr)
        g_free(ptr);
}

char *dsql__strndup(const char *s, size_t n)
{
    char *p = dsql__malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *dsql__strdup(const char *s) { return dsql__strndup(s, strlen(s)); }

void dsql__free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        dsql__free(s);
    }
}

int dsql__ct_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    size_t i = 0;
    unsigned diff = 0;
#if defined(__SSE2__)
#define DIFF16(at) \
    _mm_xor_si128(_mm_loadu_si128((const __m128i *)(x + (at))), \
                  _mm_loadu_si128((const __m128i *)(y + (at))))
    __m128i acc = _mm_setzero_si128(), acc2 = _mm_setzero_si128(); /* two chains */
    for (; i + 32 <= n; i += 32) {
        acc = _mm_or_si128(acc, DIFF16(i));
        acc2 = _mm_or_si128(acc2, DIFF16(i + 16));
    }
    if (i + 16 <= n) {
        acc = _mm_or_si128(acc, DIFF16(i));
        i += 16;
    }
#undef DIFF16
    acc = _mm_or_si128(acc, acc2);
    diff = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) ^ 0xFFFFu;
#endif
    for (; i < n; i++)
        diff |= (unsigned)(x[i] ^ y[i]);
    return diff == 0;
}
