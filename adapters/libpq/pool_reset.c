/* libpq adapter: the pool's default reset on release, which gives the next
 * borrower the session as the pool opened it (issue 13, item 6).
 *
 * RESET ALL alone leaves SET ROLE, SET SESSION AUTHORIZATION, prepared
 * statements, held cursors, LISTEN, advisory locks and temporary objects
 * behind. DISCARD ALL would clear them but Aurora DSQL does not list
 * DISCARD as supported, and PostgreSQL refuses DISCARD ALL inside a
 * multi-statement string. So the reset is a list of statements: those that
 * clear state every server can hold must succeed; the others clear kinds
 * of state PostgreSQL has and Aurora DSQL does not (temporary tables and
 * sequences are unsupported there, and a server that refuses UNLISTEN or
 * the advisory-lock functions cannot hold what they clear), so a refusal
 * as unsupported (0A000, a syntax error, an undefined function) only means
 * "nothing of that kind can exist here".
 *
 * The statements go as one multi-statement string: one round trip, as
 * RESET ALL was. When that fails, the connection's first release runs
 * them one at a time to learn which ones this server refuses as
 * unsupported, and later releases send the string without those. Any
 * other failure (or a failure once learned) means the reset did not
 * happen: the caller closes the connection. */
#include "pool_internal.h"

#include <stdio.h>
#include <string.h>

#define UNSUPPORTED_STATEMENT "0A000 42601"
#define UNSUPPORTED_FUNCTION "0A000 42883"

/* Order matters: identity first (RESET ALL leaves role and session
 * authorization alone: they are not reset by it), the identity back to
 * the login user before the rest runs with its rights. The same text,
 * joined with "; ", is DSQL_PQ_POOL_DEFAULT_RESET_QUERY. */
static const dsql__pq_reset_step default_steps[] = {
    {"SET SESSION AUTHORIZATION DEFAULT", NULL},
    {"RESET ROLE", NULL},
    {"RESET ALL", NULL},
    {"DEALLOCATE ALL", NULL},
    {"CLOSE ALL", UNSUPPORTED_STATEMENT},
    {"UNLISTEN *", UNSUPPORTED_STATEMENT},
    {"SELECT pg_catalog.pg_advisory_unlock_all()", UNSUPPORTED_FUNCTION},
    {"DISCARD TEMP", UNSUPPORTED_STATEMENT},
    {"DISCARD SEQUENCES", UNSUPPORTED_STATEMENT},
};

const dsql__pq_reset_step *dsql__pq_reset_default_steps(unsigned *n)
{
    *n = (unsigned)(sizeof default_steps / sizeof default_steps[0]);
    return default_steps;
}

int dsql__pq_reset_tolerates(const dsql__pq_reset_step *step, const char *sqlstate)
{
    if (!step->unsupported || !sqlstate || strlen(sqlstate) != 5)
        return 0;
    for (const char *s = step->unsupported; *s; s += s[5] ? 6 : 5)
        if (strncmp(s, sqlstate, 5) == 0)
            return 1;
    return 0;
}

int dsql__pq_reset_join(const dsql__pq_reset_step *steps, unsigned n, uint32_t skip,
                        int rollback_first, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    if (rollback_first) {
        int w = snprintf(buf, cap, "ROLLBACK");
        if (w < 0 || (size_t)w >= cap)
            return -1;
        used = (size_t)w;
    }
    for (unsigned i = 0; i < n; i++) {
        if (i < 32 && (skip >> i & 1u))
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", steps[i].sql);
        if (w < 0 || (size_t)w >= cap - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
}

/* 1 when r is a success (the last result of a string, or of a step). */
static int result_ok(const PGresult *r)
{
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = result_ok(r);
    PQclear(r);
    return ok;
}

/* One step at a time: learn what this server refuses as unsupported. */
static int learn(PGconn *c, const dsql__pq_reset_step *steps, unsigned n,
                 dsql__pq_reset_memo *memo)
{
    PGTransactionStatusType ts = PQtransactionStatus(c);
    if ((ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) && !exec_ok(c, "ROLLBACK"))
        return -1;
    uint32_t skip = 0;
    for (unsigned i = 0; i < n; i++) {
        PGresult *r = PQexec(c, steps[i].sql);
        int ok = result_ok(r);
        int tolerated = !ok && PQstatus(c) == CONNECTION_OK &&
                        dsql__pq_reset_tolerates(&steps[i],
                                                 PQresultErrorField(r, PG_DIAG_SQLSTATE));
        PQclear(r);
        if (!ok && !tolerated)
            return -1;
        if (tolerated)
            skip |= 1u << i;
    }
    memo->skip = skip;
    memo->learned = 1;
    return 0;
}

int dsql__pq_reset_run(PGconn *c, const dsql__pq_reset_step *steps, unsigned n,
                       int rollback_first, dsql__pq_reset_memo *memo)
{
    if (n > 32)
        return -1;
    char sql[1024];
    if (dsql__pq_reset_join(steps, n, memo->skip, rollback_first, sql, sizeof sql) != 0)
        return -1;
    if (exec_ok(c, sql))
        return 0;
    if (memo->learned || PQstatus(c) != CONNECTION_OK)
        return -1;
    return learn(c, steps, n, memo);
}
