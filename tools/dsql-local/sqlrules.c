/* dsql-local: a small SQL lexer — enough to find where statements start
 * and their first keywords, past comments and every kind of quoting — and
 * DSQL's rules on those keywords. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlrules.h"

#define MAX_WORDS 4
#define MAX_REWRITES 16

typedef struct word {
    size_t off, len;
} word;

typedef struct stmt {
    word w[MAX_WORDS];
    int n;
    int closed;        /* a symbol or quote ended the leading keywords */
    size_t start, end; /* the text, past leading blanks and comments, up to its ';' */
} stmt;

typedef struct lexer {
    const char *s;
    size_t len, pos;
} lexer;

static int is_ident_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (unsigned char)ch >= 0x80;
}

static int is_ident_char(char ch)
{
    return is_ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '$';
}

/* Past a quoted run that started at pos (the opening quote); a doubled
 * quote stays inside, a backslash escapes in E'' strings. */
static void skip_quoted(lexer *lx, char q, int backslash)
{
    lx->pos++;
    while (lx->pos < lx->len) {
        char ch = lx->s[lx->pos++];
        if (backslash && ch == '\\') {
            lx->pos++;
        } else if (ch == q) {
            if (lx->pos < lx->len && lx->s[lx->pos] == q)
                lx->pos++;
            else
                return;
        }
    }
}

/* $tag$ ... $tag$ at pos; 0 when the '$' does not open one ($1, a$b). */
static int skip_dollar(lexer *lx)
{
    size_t p = lx->pos + 1, taglen;
    const char *tag = lx->s + lx->pos;

    if (p < lx->len && lx->s[p] >= '0' && lx->s[p] <= '9')
        return 0; /* a parameter */
    while (p < lx->len && lx->s[p] != '$' && is_ident_char(lx->s[p]))
        p++;
    if (p >= lx->len || lx->s[p] != '$')
        return 0;
    taglen = p + 1 - lx->pos;
    for (p = p + 1; p + taglen <= lx->len; p++) {
        if (memcmp(lx->s + p, tag, taglen) == 0) {
            lx->pos = p + taglen;
            return 1;
        }
    }
    lx->pos = lx->len;
    return 1;
}

static void skip_block_comment(lexer *lx)
{
    int depth = 0;

    while (lx->pos + 1 < lx->len) {
        if (lx->s[lx->pos] == '/' && lx->s[lx->pos + 1] == '*') {
            depth++;
            lx->pos += 2;
        } else if (lx->s[lx->pos] == '*' && lx->s[lx->pos + 1] == '/') {
            lx->pos += 2;
            if (--depth == 0)
                return;
        } else {
            lx->pos++;
        }
    }
    lx->pos = lx->len;
}

/* Reads one statement: its first keywords into st. 0 at the end. */
static int next_stmt(lexer *lx, stmt *st)
{
    int any = 0;

    st->n = 0;
    st->closed = 0;
    while (lx->pos < lx->len) {
        char ch = lx->s[lx->pos];
        char nx = lx->pos + 1 < lx->len ? lx->s[lx->pos + 1] : '\0';

        if (ch == ';') {
            st->end = lx->pos++;
            if (any)
                return 1;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
            lx->pos++;
            continue;
        }
        if (ch == '-' && nx == '-') {
            while (lx->pos < lx->len && lx->s[lx->pos] != '\n')
                lx->pos++;
            continue;
        }
        if (ch == '/' && nx == '*') {
            skip_block_comment(lx);
            continue;
        }
        if (!any)
            st->start = lx->pos;
        any = 1;
        if (!is_ident_start(ch))
            st->closed = 1;
        if ((ch == 'E' || ch == 'e') && nx == '\'') {
            st->closed = 1;
            lx->pos++;
            skip_quoted(lx, '\'', 1);
        } else if (ch == '\'' || ch == '"') {
            skip_quoted(lx, ch, 0);
        } else if (ch == '$' && skip_dollar(lx)) {
            ;
        } else if (is_ident_start(ch)) {
            size_t start = lx->pos;
            while (lx->pos < lx->len && is_ident_char(lx->s[lx->pos]))
                lx->pos++;
            if (!st->closed && st->n < MAX_WORDS) {
                st->w[st->n].off = start;
                st->w[st->n].len = lx->pos - start;
                st->n++;
            }
        } else {
            lx->pos++;
        }
    }
    st->end = lx->len;
    return any;
}

static int is_word(const lexer *lx, const stmt *st, int i, const char *kw)
{
    size_t n = strlen(kw), k;

    if (i >= st->n || st->w[i].len != n)
        return 0;
    for (k = 0; k < n; k++) {
        char ch = lx->s[st->w[i].off + k];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (ch != kw[k])
            return 0;
    }
    return 1;
}

/* The rule for one statement: NULL when allowed, else what is refused.
 * *async is set to the index of an ASYNC keyword to drop, else -1. */
static const char *judge(const lexer *lx, const stmt *st, int *async)
{
    int idx;

    *async = -1;
    if (is_word(lx, st, 0, "SAVEPOINT") || is_word(lx, st, 0, "RELEASE"))
        return "SAVEPOINT";
    if (is_word(lx, st, 0, "ROLLBACK") &&
        (is_word(lx, st, 1, "TO") || is_word(lx, st, 2, "TO")))
        return "SAVEPOINT";
    if (is_word(lx, st, 0, "TRUNCATE"))
        return "TRUNCATE";
    if (is_word(lx, st, 0, "VACUUM"))
        return "VACUUM";
    if (is_word(lx, st, 0, "DO"))
        return "PL/pgSQL (DO)";
    if (is_word(lx, st, 0, "ALTER") && is_word(lx, st, 1, "SYSTEM"))
        return "ALTER SYSTEM";
    if (!is_word(lx, st, 0, "CREATE") && !is_word(lx, st, 0, "ALTER") &&
        !is_word(lx, st, 0, "DROP"))
        return NULL;
    if (is_word(lx, st, 1, "DATABASE"))
        return "CREATE DATABASE"; /* one database, postgres */
    if (is_word(lx, st, 1, "TABLESPACE"))
        return "CREATE TABLESPACE";
    if (!is_word(lx, st, 0, "CREATE"))
        return NULL;
    idx = is_word(lx, st, 1, "UNIQUE") ? 2 : 1;
    if (!is_word(lx, st, idx, "INDEX"))
        return NULL;
    if (!is_word(lx, st, idx + 1, "ASYNC"))
        return "CREATE INDEX without ASYNC";
    *async = idx + 1;
    return NULL;
}

static dl_sql_verdict rewrite(const char *sql, size_t len, const size_t *drop_off,
                              const size_t *drop_len, int ndrop, char **out, size_t *outlen)
{
    size_t from = 0, o = 0;
    char *buf = malloc(len + 1); /* room for the caller's NUL */
    int i;

    if (!buf)
        return DL_SQL_REFUSE;
    for (i = 0; i < ndrop; i++) {
        memcpy(buf + o, sql + from, drop_off[i] - from);
        o += drop_off[i] - from;
        from = drop_off[i] + drop_len[i];
    }
    memcpy(buf + o, sql + from, len - from);
    *out = buf;
    *outlen = o + len - from;
    return DL_SQL_REWRITE;
}

/* A dollar-quote tag that does not occur in sql[0..len): "$dsql_local$",
 * else with a digit; NULL when all of them do. */
static const char *free_tag(const char *sql, size_t len)
{
    static const char *const tags[] = {"$dsql_local$", "$dsql_local1$", "$dsql_local2$",
                                       "$dsql_local3$"};
    size_t i, k, tl;

    for (i = 0; i < sizeof tags / sizeof *tags; i++) {
        tl = strlen(tags[i]);
        for (k = 0; k + tl <= len && memcmp(sql + k, tags[i], tl) != 0; k++)
            ;
        if (k + tl > len)
            return tags[i];
    }
    return NULL;
}

/* DSQL answers CREATE INDEX ASYNC with a job id ("Asynchronous indexes in
 * Aurora DSQL"): a lone one becomes a call that runs the plain statement
 * and returns the job the DDL event trigger recorded. The statement is
 * st's text without its ASYNC keyword, dollar-quoted. 0, or -1 (no free
 * tag, no memory): the caller then only drops the keyword. */
static int wrap_index_job(const char *sql, const stmt *st, int async, char **out, size_t *outlen)
{
    const char *tag = free_tag(sql, st->end);
    size_t pre = sizeof DL_SQL_INDEX_JOB_CALL - 1, tl, o = 0, a = st->w[async].off;
    char *buf;

    if (!tag)
        return -1;
    tl = strlen(tag);
    buf = malloc(pre + 2 * tl + (st->end - st->start) + 2);
    if (!buf)
        return -1;
    memcpy(buf, DL_SQL_INDEX_JOB_CALL, pre);
    o = pre;
    memcpy(buf + o, tag, tl);
    o += tl;
    memcpy(buf + o, sql + st->start, a - st->start);
    o += a - st->start;
    a += st->w[async].len;
    memcpy(buf + o, sql + a, st->end - a);
    o += st->end - a;
    memcpy(buf + o, tag, tl);
    o += tl;
    buf[o++] = ')';
    *out = buf;
    *outlen = o;
    return 0;
}

dl_sql_verdict dl_sql_check(const char *sql, size_t len, const char **what, char **out,
                            size_t *outlen)
{
    lexer lx = {sql, len, 0};
    stmt st, first;
    size_t drop_off[MAX_REWRITES], drop_len[MAX_REWRITES];
    int ndrop = 0, async, first_async = -1, nstmt = 0;

    *what = NULL;
    *out = NULL;
    *outlen = 0;
    while (next_stmt(&lx, &st)) {
        const char *bad = judge(&lx, &st, &async);
        if (bad) {
            *what = bad;
            return DL_SQL_REFUSE;
        }
        if (nstmt++ == 0) {
            first = st;
            first_async = async;
        }
        if (async >= 0) {
            if (ndrop == MAX_REWRITES) {
                *what = "more than 16 CREATE INDEX ASYNC in one query";
                return DL_SQL_REFUSE;
            }
            drop_off[ndrop] = st.w[async].off;
            drop_len[ndrop] = st.w[async].len;
            ndrop++;
        }
    }
    if (ndrop == 0)
        return DL_SQL_PASS;
    if (nstmt == 1 && first_async >= 0 && wrap_index_job(sql, &first, first_async, out, outlen) == 0)
        return DL_SQL_REWRITE;
    if (rewrite(sql, len, drop_off, drop_len, ndrop, out, outlen) != DL_SQL_REWRITE) {
        *what = "memory for a rewrite";
        return DL_SQL_REFUSE;
    }
    return DL_SQL_REWRITE;
}

dl_sql_kind dl_sql_kind_of(const char *sql, size_t len)
{
    lexer lx = {sql, len, 0};
    stmt st, next;
    dl_sql_kind kind = DL_SQL_OTHER;

    if (!next_stmt(&lx, &st) || next_stmt(&lx, &next))
        return DL_SQL_OTHER;
    if (is_word(&lx, &st, 0, "COMMIT") || is_word(&lx, &st, 0, "END"))
        kind = DL_SQL_COMMIT;
    else if (is_word(&lx, &st, 0, "INSERT") || is_word(&lx, &st, 0, "UPDATE") ||
             is_word(&lx, &st, 0, "DELETE") || is_word(&lx, &st, 0, "MERGE"))
        kind = DL_SQL_WRITE;
    return kind;
}

int dl_sql_has_statement(const char *sql, size_t len)
{
    lexer lx = {sql, len, 0};
    stmt st;

    return next_stmt(&lx, &st);
}

int dl_sql_refusal(char *buf, size_t cap, const char *what)
{
    int n = snprintf(buf, cap, "CALL dsql_local.refuse_statement('%s')", what);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
