/* dsql-local's statement rules (tools/dsql-local/sqlrules.c): which
 * statements DSQL refuses, found past comments and quoting, and CREATE
 * INDEX ASYNC made plain for PostgreSQL. The same rules through a real
 * gateway: test/t-dsql-local-rules.sh. */
#include <stdlib.h>
#include <string.h>

#include "sqlrules.h"
#include "testutil.h"

static const char *refused(const char *sql)
{
    const char *what;
    char *out;
    size_t n;
    dl_sql_verdict v = dl_sql_check(sql, strlen(sql), &what, &out, &n);

    free(out);
    return v == DL_SQL_REFUSE ? what : NULL;
}

static char *rewritten(const char *sql)
{
    static char buf[256];
    const char *what;
    char *out;
    size_t n;

    ck_assert_int_eq(dl_sql_check(sql, strlen(sql), &what, &out, &n), DL_SQL_REWRITE);
    ck_assert_uint_lt(n, sizeof buf);
    memcpy(buf, out, n);
    buf[n] = '\0';
    free(out);
    return buf;
}

#define REFUSED(sql, what) ck_assert_str_eq(refused(sql) ? refused(sql) : "(allowed)", what)
#define ALLOWED(sql) ck_assert_msg(refused(sql) == NULL, "%s: refused as %s", sql, refused(sql))

START_TEST(unsupported_commands_refused)
{
    REFUSED("SAVEPOINT a", "SAVEPOINT");
    REFUSED("release savepoint a", "SAVEPOINT");
    REFUSED("ROLLBACK TO a", "SAVEPOINT");
    REFUSED("rollback work to savepoint a", "SAVEPOINT");
    REFUSED("truncate t", "TRUNCATE");
    REFUSED("VACUUM FULL", "VACUUM");
    REFUSED("alter system set work_mem = '1MB'", "ALTER SYSTEM");
    REFUSED("create database x", "CREATE DATABASE");
    REFUSED("DROP DATABASE postgres", "CREATE DATABASE");
    REFUSED("create tablespace ts location '/tmp'", "CREATE TABLESPACE");
    REFUSED("DO $$BEGIN END$$", "PL/pgSQL (DO)");
}
END_TEST

START_TEST(plain_create_index_refused_async_rewritten)
{
    REFUSED("CREATE INDEX i ON t(x)", "CREATE INDEX without ASYNC");
    REFUSED("create unique index on t(x)", "CREATE INDEX without ASYNC");
    ck_assert_str_eq(rewritten("create unique index async on t(x); create index async on u(y)"),
                     "create unique index  on t(x); create index  on u(y)");
}
END_TEST

/* DSQL returns a job id: a lone CREATE INDEX ASYNC becomes the call that
 * returns it, the plain statement dollar-quoted. */
START_TEST(lone_create_index_async_returns_a_job)
{
    ck_assert_str_eq(rewritten("CREATE INDEX ASYNC i ON t(x)"),
                     DL_SQL_INDEX_JOB_CALL "$dsql_local$CREATE INDEX  i ON t(x)$dsql_local$)");
    ck_assert_str_eq(rewritten(" /* c */ create unique index async on t(x) ; "),
                     DL_SQL_INDEX_JOB_CALL "$dsql_local$create unique index  on t(x) $dsql_local$)");
    /* a text that holds the tag gets another one */
    ck_assert_str_eq(rewritten("CREATE INDEX ASYNC i ON t((x = '$dsql_local$'))"),
                     DL_SQL_INDEX_JOB_CALL
                     "$dsql_local1$CREATE INDEX  i ON t((x = '$dsql_local$'))$dsql_local1$)");
    /* all tags taken: only the keyword goes */
    ck_assert_str_eq(rewritten("CREATE INDEX ASYNC i ON t((x || '$dsql_local$$dsql_local1$"
                               "$dsql_local2$$dsql_local3$'))"),
                     "CREATE INDEX  i ON t((x || '$dsql_local$$dsql_local1$$dsql_local2$"
                     "$dsql_local3$'))");
}
END_TEST

START_TEST(empty_queries_hold_no_statement)
{
    ck_assert_int_eq(dl_sql_has_statement("", 0), 0);
    ck_assert_int_eq(dl_sql_has_statement(" ; ;\n-- only a comment", 21), 0);
    ck_assert_int_eq(dl_sql_has_statement("/* a */ ;", 9), 0);
    ck_assert_int_eq(dl_sql_has_statement("; SELECT 1", 10), 1);
}
END_TEST

START_TEST(ordinary_statements_pass)
{
    ALLOWED("SELECT 1");
    ALLOWED("BEGIN; UPDATE t SET x = 1; COMMIT");
    ALLOWED("ROLLBACK");
    ALLOWED("CREATE TABLE t (x int PRIMARY KEY)");
    ALLOWED("ALTER TABLE t ADD COLUMN y int");
    ALLOWED("");
    ALLOWED(";;");
}
END_TEST

START_TEST(keywords_inside_quotes_and_comments_do_not_count)
{
    ALLOWED("SELECT 'savepoint; truncate t'");
    ALLOWED("SELECT E'it\\'s; vacuum'");
    ALLOWED("SELECT \"truncate\" FROM t");
    ALLOWED("SELECT $$; truncate t; $$");
    ALLOWED("SELECT $x$ $$; vacuum $$ $x$");
    ALLOWED("SELECT 1 -- ; truncate t\n");
    ALLOWED("SELECT /* ; /* nested */ vacuum; */ 1");
    ALLOWED("SELECT $1; SELECT 2");
    REFUSED("/* hidden */ TRUNCATE t", "TRUNCATE");
    REFUSED("-- note\nvacuum", "VACUUM");
}
END_TEST

START_TEST(a_refused_statement_anywhere_in_a_query)
{
    REFUSED("BEGIN; SELECT 1; SAVEPOINT s; COMMIT", "SAVEPOINT");
    REFUSED("select 'a;b'; truncate t", "TRUNCATE");
}
END_TEST

START_TEST(keywords_after_a_symbol_are_not_leading)
{
    ALLOWED("CREATE TABLE index_async (x int)");
    ALLOWED("SELECT * FROM t WHERE x = 'CREATE INDEX'");
    ALLOWED("ALTER TABLE t RENAME TO system");
}
END_TEST

START_TEST(unterminated_quotes_end_the_text)
{
    ALLOWED("SELECT 'never closed; truncate t");
    ALLOWED("SELECT $q$ never closed; vacuum");
    ALLOWED("SELECT /* never closed; vacuum");
}
END_TEST

START_TEST(refusal_text_is_a_call)
{
    char buf[128];

    ck_assert_int_gt(dl_sql_refusal(buf, sizeof buf, "TRUNCATE"), 0);
    ck_assert_str_eq(buf, "CALL dsql_local.refuse_statement('TRUNCATE')");
    ck_assert_int_eq(dl_sql_refusal(buf, 10, "TRUNCATE"), -1);
}
END_TEST

static Suite *sqlrules_suite(void)
{
    Suite *s = suite_create("sqlrules");
    TCase *tc = tcase_create("rules");

    tcase_add_test(tc, unsupported_commands_refused);
    tcase_add_test(tc, plain_create_index_refused_async_rewritten);
    tcase_add_test(tc, lone_create_index_async_returns_a_job);
    tcase_add_test(tc, empty_queries_hold_no_statement);
    tcase_add_test(tc, ordinary_statements_pass);
    tcase_add_test(tc, keywords_inside_quotes_and_comments_do_not_count);
    tcase_add_test(tc, a_refused_statement_anywhere_in_a_query);
    tcase_add_test(tc, keywords_after_a_symbol_are_not_leading);
    tcase_add_test(tc, unterminated_quotes_end_the_text);
    tcase_add_test(tc, refusal_text_is_a_call);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(sqlrules_suite)
