/* dsql-local: DSQL's dialect on the relay. Client Query and Parse texts
 * pass through sqlrules.c (refused statements are replaced by a call that
 * makes PostgreSQL raise the refusal, so the transaction fails there as it
 * would on DSQL); backend errors are rewritten into DSQL's: conflicts and
 * lock timeouts as OC000/OC001 (SQLSTATE 40001), the read-only error the
 * DDL event trigger causes as "ddl and dml ...", and our PL/pgSQL context
 * lines dropped. Source: "Concurrency control in Aurora DSQL", "DDL and
 * distributed transactions in Aurora DSQL". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "catalog.h"
#include "dialect.h"
#include "sqlrules.h"

#define CLASSIFY_MAX (1u << 20) /* larger Query/Parse texts pass unchecked */
#define ERROR_MAX (64u * 1024u) /* larger ErrorResponses pass unchanged */

#define OC000 "mutation conflicts with another transaction, retry as needed (OC000)"
#define OC001 "schema has been updated by another transaction, please retry: (OC001)"
#define DDL_DML "ddl and dml are not supported in the same transaction"
/* the notice the DDL event trigger sends with the relations it changed */
#define CATALOG_MARK "dsql_local: catalog change"
#define ONE_DDL "only one ddl statement is supported in a transaction"

/* Appends a message of type t with body b[0..n) to out. */
static int put_msg(struct evbuffer *out, char t, const void *b, size_t n)
{
    unsigned char hdr[5];

    hdr[0] = (unsigned char)t;
    pgs_put_be32(hdr + 1, (uint32_t)(n + 4));
    return evbuffer_add(out, hdr, 5) != 0 || evbuffer_add(out, b, n) != 0 ? -1 : 0;
}

/* ---- client to backend ---- */

/* Injected faults for a write's commit: an explicit COMMIT of a transaction
 * that wrote, or a write in autocommit (a transaction too). 1 when the
 * Query was replaced by a conflict, 0 to send it (perhaps marked to cut
 * the connection once it is done). */
static int inject_at_commit(conn *c, const unsigned char *body, size_t n, struct evbuffer *out,
                            int *rc)
{
    static const char conflict[] = "CALL dsql_local.injected_conflict()";
    static const char end_then_conflict[] = "ROLLBACK; CALL dsql_local.injected_conflict()";
    const dl_faults *f = &c->gw->faults;
    dl_sql_kind kind;

    if (f->conflict_rate <= 0 && f->drop_after_commit <= 0)
        return 0;
    kind = dl_sql_kind_of((const char *)body, n - 1);
    if (!((kind == DL_SQL_COMMIT && c->in_txn && c->txn_wrote) ||
          (kind == DL_SQL_WRITE && !c->in_txn)))
        return 0;
    if (dl_faults_roll(f->conflict_rate)) {
        c->gw->n_conflicts++;
        if (kind == DL_SQL_COMMIT) {
            c->swallow_tag = 1; /* the client sees only the conflict */
            *rc = put_msg(out, 'Q', end_then_conflict, sizeof end_then_conflict);
        } else {
            *rc = put_msg(out, 'Q', conflict, sizeof conflict);
        }
        return 1;
    }
    if (dl_faults_roll(f->drop_after_commit))
        c->drop_pending = 1;
    return 0;
}

/* DSQL reports a conflict at COMMIT ("Concurrency control in Aurora
 * DSQL"); PostgreSQL reported it at the statement, and would answer the
 * COMMIT of the failed transaction with a quiet ROLLBACK. The COMMIT fails
 * with the conflict again, so a client that checks only its COMMIT sees
 * what DSQL would tell it. 1 when the Query was replaced. */
static int commit_after_conflict(conn *c, const unsigned char *body, size_t n,
                                 struct evbuffer *out, int *rc)
{
    static const char data[] = "ROLLBACK; CALL dsql_local.conflict_at_commit('OC000')";
    static const char schema[] = "ROLLBACK; CALL dsql_local.conflict_at_commit('OC001')";

    if (!c->txn_conflict || dl_sql_kind_of((const char *)body, n - 1) != DL_SQL_COMMIT)
        return 0;
    c->swallow_tag = 1; /* the ROLLBACK's: the client sees only the conflict */
    if (c->txn_conflict == DL_CONFLICT_SCHEMA)
        *rc = put_msg(out, 'Q', schema, sizeof schema);
    else
        *rc = put_msg(out, 'Q', data, sizeof data);
    return 1;
}

/* DSQL fails a transaction whose catalog is older than a committed DDL
 * with OC001. The gateway knows which relations DDL changed since this
 * transaction began (catalog.h), PostgreSQL which ones the transaction used
 * (its locks, held to the end: a DDL could not have changed them while it
 * held them, so it used them after). Appends to q the call that raises
 * OC001 when the two meet. 1 when appended, 0 when nothing changed, -1
 * when out of memory. */
static int add_catalog_check(const conn *c, struct evbuffer *q)
{
    unsigned oids[64];
    size_t k, i;
    int any;

    if (!c->snap_valid || dl_catalog_gen() == c->snap_gen)
        return 0;
    k = dl_catalog_changed_since(c->snap_gen, oids, sizeof oids / sizeof *oids);
    if (k == 0)
        return 0;
    any = oids[0] == DL_CATALOG_ANY;
    if (evbuffer_add_printf(q, "CALL dsql_local.check_catalog(%s", any ? "NULL" : "'{") < 0)
        return -1;
    for (i = 0; !any && i < k; i++)
        if (evbuffer_add_printf(q, "%s%u", i ? "," : "", oids[i]) < 0)
            return -1;
    return evbuffer_add_printf(q, "%s)", any ? "" : "}'") < 0 ? -1 : 1;
}

/* Sends "<before><the check><after>" NUL-terminated as a Query. 1 when
 * sent, 0 when no check applies, -1 when out of memory. */
static int send_with_check(conn *c, const void *before, size_t blen, const char *after,
                           struct evbuffer *out)
{
    struct evbuffer *q = evbuffer_new();
    int rc = -1;

    if (q && evbuffer_add(q, before, blen) == 0) {
        rc = add_catalog_check(c, q);
        if (rc == 1 && (evbuffer_add(q, after, strlen(after) + 1) != 0 ||
                        put_msg(out, 'Q', evbuffer_pullup(q, -1), evbuffer_get_length(q)) != 0))
            rc = -1;
    }
    if (q)
        evbuffer_free(q);
    if (rc == 1)
        c->swallow_tag = 1; /* the CALL's (or, after a failed COMMIT check, the ROLLBACK's) */
    return rc;
}

/* The COMMIT of a transaction older than a committed DDL goes with the
 * check; when it fails, the gateway ends the failed transaction
 * (end_failed_commit). 1 when the Query was replaced. */
static int commit_with_catalog_check(conn *c, const unsigned char *body, size_t n,
                                     struct evbuffer *out, int *rc)
{
    if (!c->snap_valid || dl_catalog_gen() == c->snap_gen ||
        dl_sql_kind_of((const char *)body, n - 1) != DL_SQL_COMMIT)
        return 0;
    *rc = send_with_check(c, "", 0, "; COMMIT", out);
    if (*rc == 0)
        return 0;
    *rc = *rc < 0 ? -1 : 0;
    c->catalog_check = 1;
    return 1;
}

/* Any other Query in such a transaction (still good: 'T') is followed by
 * the check, so the statement that used a changed table fails with OC001
 * at once, as in "DDL and distributed transactions in Aurora DSQL"'s
 * example; the COMMIT then fails again (commit_after_conflict). The check
 * goes after a newline: a trailing -- comment cannot swallow it. */
static int statement_with_catalog_check(conn *c, const unsigned char *body, size_t n,
                                        struct evbuffer *out, int *rc)
{
    static const char sep[] = "\n;";
    struct evbuffer *q;

    if (c->ready_status != 'T' || !c->snap_valid || dl_catalog_gen() == c->snap_gen ||
        !dl_sql_has_statement((const char *)body, n - 1))
        return 0;
    q = evbuffer_new();
    if (!q || evbuffer_add(q, body, n - 1) != 0 || evbuffer_add(q, sep, sizeof sep - 1) != 0) {
        if (q)
            evbuffer_free(q);
        *rc = -1;
        return 1;
    }
    *rc = send_with_check(c, evbuffer_pullup(q, -1), evbuffer_get_length(q), "", out);
    evbuffer_free(q);
    if (*rc == 0)
        return 0;
    *rc = *rc < 0 ? -1 : 0;
    return 1;
}

/* A CREATE INDEX ASYNC made a call (sqlrules.h) runs DDL, though its
 * CommandComplete says SELECT: what the DDL rules' errors need to know. */
static void note_index_job(conn *c, const char *text, size_t n)
{
    size_t k = sizeof DL_SQL_INDEX_JOB_CALL - 1;

    if (n >= k && memcmp(text, DL_SQL_INDEX_JOB_CALL, k) == 0)
        c->txn_ddl = 1;
}

/* A Query: the text, NUL-terminated, is the whole body. */
static int filter_query(conn *c, struct evbuffer *out, const unsigned char *body, size_t n)
{
    const char *what;
    char *text = NULL, call[160];
    size_t tlen;
    int rc;

    if (n == 0 || body[n - 1] != '\0')
        return put_msg(out, 'Q', body, n); /* PostgreSQL will object */
    switch (dl_sql_check((const char *)body, n - 1, &what, &text, &tlen)) {
    case DL_SQL_PASS:
        if (commit_after_conflict(c, body, n, out, &rc) ||
            commit_with_catalog_check(c, body, n, out, &rc) || inject_at_commit(c, body, n, out, &rc) ||
            statement_with_catalog_check(c, body, n, out, &rc))
            return rc;
        return put_msg(out, 'Q', body, n);
    case DL_SQL_REFUSE:
        if (dl_sql_refusal(call, sizeof call, what) < 0)
            return -1;
        return put_msg(out, 'Q', call, strlen(call) + 1);
    case DL_SQL_REWRITE:
        break;
    }
    text[tlen] = '\0'; /* dl_sql_check leaves room for it */
    note_index_job(c, text, tlen);
    rc = put_msg(out, 'Q', text, tlen + 1);
    free(text);
    return rc;
}

/* A Parse: name NUL, text NUL, int16 n, n type oids. A refused text
 * becomes the refusal with no parameter types. */
static int filter_parse(conn *c, struct evbuffer *out, const unsigned char *body, size_t n)
{
    const unsigned char *name_end = memchr(body, '\0', n), *text, *text_end;
    const char *what;
    char *text2 = NULL, call[160];
    size_t tlen, namelen, restlen;
    struct evbuffer *tmp;
    int rc = -1;

    if (!name_end)
        return put_msg(out, 'P', body, n);
    text = name_end + 1;
    text_end = memchr(text, '\0', n - (size_t)(text - body));
    if (!text_end)
        return put_msg(out, 'P', body, n);
    namelen = (size_t)(text - body);
    restlen = n - (size_t)(text_end + 1 - body);
    if (namelen == 1) /* the unnamed statement: a COMMIT is checked at its Execute */
        c->ext_commit_stmt =
            dl_sql_kind_of((const char *)text, (size_t)(text_end - text)) == DL_SQL_COMMIT;
    switch (dl_sql_check((const char *)text, (size_t)(text_end - text), &what, &text2, &tlen)) {
    case DL_SQL_PASS:
        return put_msg(out, 'P', body, n);
    case DL_SQL_REFUSE: {
        static const unsigned char no_types[2] = {0, 0};
        if (dl_sql_refusal(call, sizeof call, what) < 0 || !(tmp = evbuffer_new()))
            return -1;
        if (evbuffer_add(tmp, body, namelen) == 0 && evbuffer_add(tmp, call, strlen(call) + 1) == 0 &&
            evbuffer_add(tmp, no_types, 2) == 0)
            rc = put_msg(out, 'P', evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
        evbuffer_free(tmp);
        return rc;
    }
    case DL_SQL_REWRITE:
        break;
    }
    note_index_job(c, text2, tlen);
    tmp = evbuffer_new();
    if (tmp && evbuffer_add(tmp, body, namelen) == 0 && evbuffer_add(tmp, text2, tlen) == 0 &&
        evbuffer_add(tmp, "", 1) == 0 && evbuffer_add(tmp, text_end + 1, restlen) == 0)
        rc = put_msg(out, 'P', evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
    if (tmp)
        evbuffer_free(tmp);
    free(text2);
    return rc;
}

/* Moves whole messages (or the rest of a long one) from in to out; the
 * types in collect (NULL: all) go whole through f. *left counts the bytes
 * of a message being passed through. Returns f's non-zero result. */
typedef int (*msg_filter)(conn *c, char type, const unsigned char *body, size_t n,
                          struct evbuffer *out);

static int pump(conn *c, struct evbuffer *in, struct evbuffer *out, size_t *left,
                const char *collect, size_t collect_max, msg_filter f)
{
    pgs_msg m;

    for (;;) {
        int r;
        if (*left > 0) {
            size_t have = evbuffer_get_length(in);
            size_t n = have < *left ? have : *left;
            if (n == 0 || evbuffer_remove_buffer(in, out, n) != (int)n)
                return n == 0 ? 0 : -1;
            *left -= n;
            continue;
        }
        r = pgs_msg_peek(in, &m);
        if (r == PGS_MSG_SHORT)
            return 0;
        if (r == PGS_MSG_BROKEN) { /* stop filtering, PostgreSQL will object */
            *left = SIZE_MAX;
            continue;
        }
        if ((!collect || (m.type && strchr(collect, (char)m.type))) && m.len - 4 <= collect_max) {
            unsigned char *msg;
            int rc;
            if (r != PGS_MSG_WHOLE)
                return 0; /* wait for the whole message */
            msg = evbuffer_pullup(in, (ev_ssize_t)(1 + (size_t)m.len));
            if (!msg)
                return -1;
            rc = f(c, (char)m.type, msg + 5, m.len - 4, out);
            evbuffer_drain(in, 1 + (size_t)m.len);
            if (rc != 0)
                return rc;
            continue;
        }
        *left = 1 + (size_t)m.len;
    }
}

/* A Bind: portal NUL, statement NUL, ... Only the unnamed portal bound to
 * the unnamed statement is followed (how libpq, JDBC and pgx send a
 * one-off COMMIT). */
static int filter_bind(conn *c, struct evbuffer *out, const unsigned char *body, size_t n)
{
    c->ext_commit_portal = n >= 2 && body[0] == '\0' && body[1] == '\0' && c->ext_commit_stmt;
    return put_msg(out, 'B', body, n);
}

/* Close, Parse, Bind and Execute of the named statement and portal
 * "dsql_local_check" running call (NUL-terminated, clen with the NUL):
 * the Close first, as a failed check leaves the statement behind. */
static int put_check_call(struct evbuffer *out, const char *call, size_t clen)
{
    static const char name[] = "dsql_local_check";
    static const unsigned char zeros[6] = {0, 0, 0, 0, 0, 0};
    unsigned char close[1 + sizeof name], bind[2 * sizeof name + 6], exec[sizeof name + 4];
    struct evbuffer *parse = evbuffer_new();
    int rc = -1;

    close[0] = 'S';
    memcpy(close + 1, name, sizeof name);
    memcpy(bind, name, sizeof name);
    memcpy(bind + sizeof name, name, sizeof name);
    memcpy(bind + 2 * sizeof name, zeros, 6); /* no formats, parameters, result formats */
    memcpy(exec, name, sizeof name);
    memcpy(exec + sizeof name, zeros, 4); /* all rows */
    if (parse && evbuffer_add(parse, name, sizeof name) == 0 && evbuffer_add(parse, call, clen) == 0 &&
        evbuffer_add(parse, zeros, 2) == 0 && put_msg(out, 'C', close, sizeof close) == 0 &&
        put_msg(out, 'P', evbuffer_pullup(parse, -1), evbuffer_get_length(parse)) == 0 &&
        put_msg(out, 'B', bind, sizeof bind) == 0 && put_msg(out, 'E', exec, sizeof exec) == 0)
        rc = 0;
    if (parse)
        evbuffer_free(parse);
    return rc;
}

/* An Execute of an extended-protocol COMMIT. After a conflict PostgreSQL
 * answers it with a ROLLBACK tag, which becomes the conflict (as
 * commit_after_conflict does for a Query); in a transaction older than a
 * committed DDL the catalog check runs first, and when it fails the
 * gateway ends the transaction (end_failed_commit). */
static int filter_execute(conn *c, struct evbuffer *out, const unsigned char *body, size_t n)
{
    struct evbuffer *q;
    int rc;

    if (!c->ext_commit_portal || n < 1 || body[0] != '\0')
        return put_msg(out, 'E', body, n);
    if (c->txn_conflict) {
        c->ext_commit_conflict = c->txn_conflict;
        return put_msg(out, 'E', body, n);
    }
    if (c->ready_status != 'T' || !c->snap_valid || dl_catalog_gen() == c->snap_gen)
        return put_msg(out, 'E', body, n);
    q = evbuffer_new();
    if (!q)
        return -1;
    rc = add_catalog_check(c, q);
    if (rc == 1 && (evbuffer_add(q, "", 1) != 0 ||
                    put_check_call(out, (const char *)evbuffer_pullup(q, -1), evbuffer_get_length(q)) != 0))
        rc = -1;
    evbuffer_free(q);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        memset(c->swallow_ack, 1, sizeof c->swallow_ack);
        c->swallow_call = 1;
        c->catalog_check = 1;
    }
    return put_msg(out, 'E', body, n);
}

static int client_msg(conn *c, char type, const unsigned char *body, size_t n,
                      struct evbuffer *out)
{
    switch (type) {
    case 'Q':
        return filter_query(c, out, body, n);
    case 'B':
        return filter_bind(c, out, body, n);
    case 'E':
        return filter_execute(c, out, body, n);
    default:
        return filter_parse(c, out, body, n);
    }
}

int dialect_client_to_backend(conn *c, struct evbuffer *in, struct evbuffer *out)
{
    return pump(c, in, out, &c->cbody_left, "QPBE", CLASSIFY_MAX, client_msg);
}

/* ---- backend to client ---- */

typedef struct field {
    char code;
    const char *value;
} field;

static const char *find(const field *fs, int n, char code)
{
    int i;
    for (i = 0; i < n; i++)
        if (fs[i].code == code)
            return fs[i].value;
    return NULL;
}

static int is_ddl_word(const char *s)
{
    static const char *const words[] = {"CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE"};
    size_t i;

    for (i = 0; i < sizeof words / sizeof *words; i++) {
        size_t k = strlen(words[i]);
        if (strncmp(s, words[i], k) == 0 && (s[k] == ' ' || s[k] == '\0'))
            return 1;
    }
    return 0;
}

/* DSQL's SQLSTATE and message for a PostgreSQL error, or 0 to keep it. */
static int dsql_error_for(const conn *c, const char *code, const char *msg, const char *where,
                          const char **state, const char **text)
{
    if (!code || !msg)
        return 0;
    if (strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0) {
        *state = "40001";
        *text = strstr(msg, "(OC001)") ? OC001 : OC000; /* ours may be a schema conflict */
        return 1;
    }
    if (strcmp(code, "53300") == 0) { /* PostgreSQL's own "too many clients" */
        *state = "53300";
        *text = "Unable to accept connection, too many open connections.";
        return 1;
    }
    if (strcmp(code, "55P03") == 0) {
        /* a row lock names its tuple; a table's lock is a schema change's */
        *state = "40001";
        *text = where && strstr(where, "tuple") ? OC000 : OC001;
        return 1;
    }
    if (strcmp(code, "25006") == 0 && c->txn_ddl && strncmp(msg, "cannot execute ", 15) == 0) {
        *state = "0A000";
        *text = is_ddl_word(msg + 15) ? ONE_DDL : DDL_DML;
        return 1;
    }
    return 0;
}

static int rewrite_error(conn *c, const unsigned char *body, size_t n, struct evbuffer *out)
{
    field fs[32];
    const char *state = NULL, *text = NULL, *code, *msg, *where;
    int nf = 0, i, ours, rc = 0;
    size_t off = 0;
    struct evbuffer *tmp;

    while (nf < 32 && (rc = pgs_error_next_field(body, n, &off, &fs[nf].code, &fs[nf].value)) > 0)
        nf++;
    if (rc < 0) /* malformed: PostgreSQL's own, passed on as it is */
        return put_msg(out, 'E', body, n);
    code = find(fs, nf, 'C');
    msg = find(fs, nf, 'M');
    where = find(fs, nf, 'W');
    ours = where && strstr(where, "dsql_local.") != NULL;
    if (!dsql_error_for(c, code, msg, where, &state, &text) && !ours)
        return put_msg(out, 'E', body, n);
    if (state && strcmp(state, "40001") == 0)
        c->txn_conflict = strstr(text, "(OC001)") ? DL_CONFLICT_SCHEMA : DL_CONFLICT_DATA;
    tmp = evbuffer_new();
    if (!tmp)
        return -1;
    rc = 0;
    for (i = 0; i < nf && rc == 0; i++) {
        char fc = fs[i].code;
        const char *v = fs[i].value;
        if (ours && (fc == 'W' || fc == 'q' || fc == 'p'))
            continue; /* our trigger's PL/pgSQL is no part of the answer */
        if (state && (fc == 'D' || fc == 'H' || fc == 'W'))
            continue;
        if (state && fc == 'C')
            v = state;
        if (state && fc == 'M')
            v = text;
        rc = evbuffer_add(tmp, &fc, 1) != 0 || evbuffer_add(tmp, v, strlen(v) + 1) != 0;
    }
    if (rc == 0 && evbuffer_add(tmp, "", 1) == 0)
        rc = put_msg(out, 'E', evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
    else
        rc = -1;
    evbuffer_free(tmp);
    return rc;
}

static int is_write_tag(const unsigned char *body, size_t n)
{
    static const char *const tags[] = {"INSERT ", "UPDATE ", "DELETE ", "MERGE "};
    size_t i;

    for (i = 0; i < sizeof tags / sizeof *tags; i++)
        if (n > strlen(tags[i]) && memcmp(body, tags[i], strlen(tags[i])) == 0)
            return 1;
    return 0;
}

/* A commit chosen to be cut: the client hears nothing more of it (its
 * CommandComplete included); at ReadyForQuery the commit is done and the
 * connection goes. A failed commit is no ambiguous one: it is passed on. */
static int drop_after_commit(conn *c, char type)
{
    if (type == 'E') {
        c->drop_pending = 0;
        return 0;
    }
    if (type != 'Z')
        return 2; /* swallowed */
    c->gw->n_drops++;
    return 1;
}

/* The DDL event trigger's notice: the relations this transaction's DDL
 * changed, published when it commits. Not for the client. 1 when it was. */
static int note_catalog_change(conn *c, const unsigned char *body, size_t n)
{
    const char *msg = pgs_error_field(body, n, 'M'), *detail = pgs_error_field(body, n, 'D');
    size_t cap = sizeof c->ddl_oids / sizeof *c->ddl_oids;

    if (!msg || strcmp(msg, CATALOG_MARK) != 0)
        return 0;
    while (detail && *detail) {
        char *end;
        unsigned long v = strtoul(detail, &end, 10);
        if (end == detail)
            break;
        if (c->n_ddl_oids < cap && v != DL_CATALOG_ANY && v <= 0xffffffffUL) {
            c->ddl_oids[c->n_ddl_oids++] = (unsigned)v;
        } else { /* too many (or nonsense): any relation */
            c->ddl_oids[0] = DL_CATALOG_ANY;
            c->n_ddl_oids = 1;
        }
        detail = end;
    }
    return 1;
}

/* A COMMIT that went with a catalog check that failed: the check's error
 * reached the client, PostgreSQL skipped the COMMIT and left the
 * transaction failed ('E'). DSQL's failed COMMIT ends the transaction, so
 * the gateway ends it: this ReadyForQuery is dropped, a ROLLBACK sent, and
 * its ReadyForQuery ('I') is the client's. */
static int end_failed_commit(conn *c)
{
    static const char rollback[] = "ROLLBACK";

    if (!c->backend)
        return -1;
    c->swallow_tag = 1;
    return put_msg(bufferevent_get_output(c->backend), 'Q', rollback, sizeof rollback);
}

/* At ReadyForQuery: where this transaction's catalog begins, and when it
 * ends, whether its DDL committed. */
static void track_catalog(conn *c, char status)
{
    c->ready_status = status;
    if (status != 'I') {
        if (!c->snap_valid) {
            c->snap_valid = 1;
            c->snap_gen = dl_catalog_gen();
        }
        return;
    }
    if (c->n_ddl_oids > 0 && !c->ddl_undone)
        dl_catalog_committed(c->ddl_oids[0] == DL_CATALOG_ANY ? NULL : c->ddl_oids,
                             c->ddl_oids[0] == DL_CATALOG_ANY ? 0 : c->n_ddl_oids);
    c->n_ddl_oids = 0;
    c->ddl_undone = 0;
    c->snap_valid = 0;
}

/* The ErrorResponse of an extended COMMIT after a conflict: DSQL's. */
static int put_conflict(conn *c, struct evbuffer *out)
{
    static const char data[] = "SERROR\0VERROR\0C40001\0M" OC000 "\0";
    static const char schema[] = "SERROR\0VERROR\0C40001\0M" OC001 "\0";

    if (c->ext_commit_conflict == DL_CONFLICT_SCHEMA) {
        c->ext_commit_conflict = 0;
        return put_msg(out, 'E', schema, sizeof schema); /* its NUL ends the fields */
    }
    c->ext_commit_conflict = 0;
    return put_msg(out, 'E', data, sizeof data);
}

static int backend_msg(conn *c, char type, const unsigned char *body, size_t n,
                       struct evbuffer *out)
{
    if (c->drop_pending) {
        int r = drop_after_commit(c, type);
        if (r != 0)
            return r == 2 ? 0 : DIALECT_DROP;
    }
    if (type == 'E' || (type == 'C' && n >= 8 && memcmp(body, "ROLLBACK", 8) == 0))
        c->ddl_undone = 1;
    if (type == 'N')
        return note_catalog_change(c, body, n) ? 0 : put_msg(out, type, body, n);
    if (type == 'Z' && n == 1 && c->catalog_check) {
        c->catalog_check = 0;
        if (body[0] == 'E')
            return end_failed_commit(c);
    }
    if (type >= '1' && type <= '3' && c->swallow_ack[type - '1']) {
        c->swallow_ack[type - '1'] = 0; /* an extended COMMIT's check's */
        return 0;
    }
    if (type == 'C' && c->swallow_call && n >= 5 && memcmp(body, "CALL", 5) == 0) {
        c->swallow_call = 0;
        return 0;
    }
    if (type == 'C' && c->ext_commit_conflict && n >= 9 && memcmp(body, "ROLLBACK", 9) == 0)
        return put_conflict(c, out);
    if (type == 'Z' && n == 1) {
        c->swallow_tag = 0; /* a tag to drop comes before its query's end */
        memset(c->swallow_ack, 0, sizeof c->swallow_ack);
        c->swallow_call = 0;
        c->ext_commit_conflict = 0;
        track_catalog(c, (char)body[0]);
        if (body[0] == 'I') {
            c->txn_ddl = 0;
            c->txn_wrote = 0;
            c->txn_conflict = 0;
        }
        conn_txn_status(c, (char)body[0]);
    } else if (type == 'C' && c->swallow_tag) {
        c->swallow_tag = 0;
        return 0;
    } else if (type == 'C' && memchr(body, '\0', n) && is_ddl_word((const char *)body)) {
        c->txn_ddl = 1;
    } else if (type == 'C' && is_write_tag(body, n)) {
        c->txn_wrote = 1;
    }
    if (type == 'E')
        return rewrite_error(c, body, n, out);
    return put_msg(out, type, body, n);
}

int dialect_backend_to_client(conn *c, struct evbuffer *in, struct evbuffer *out)
{
    /* a commit to be cut: every message goes through backend_msg, to be dropped */
    const char *collect = c->drop_pending ? NULL : "EZCN";

    if (!c->drop_pending && (c->swallow_ack[0] | c->swallow_ack[1] | c->swallow_ack[2]))
        collect = "EZCN123"; /* an extended COMMIT's check is under way */
    return pump(c, in, out, &c->bbody_left, collect, ERROR_MAX, backend_msg);
}
