/* dsql-local: the DSQL rules the gateway checks on statement text, for
 * what PostgreSQL's event triggers never see (SAVEPOINT, TRUNCATE, VACUUM,
 * ALTER SYSTEM, databases, tablespaces, DO) and CREATE INDEX ASYNC, which
 * PostgreSQL does not parse. Source: "Unsupported PostgreSQL features in
 * Aurora DSQL" and "Asynchronous indexes in Aurora DSQL". Pure functions:
 * no I/O, no allocation but the rewritten text. */
#ifndef DSQL_LOCAL_SQLRULES_H
#define DSQL_LOCAL_SQLRULES_H

#include <stddef.h>

typedef enum dl_sql_verdict {
    DL_SQL_PASS,    /* send as it is */
    DL_SQL_REWRITE, /* send *out instead (CREATE INDEX ASYNC, see below) */
    DL_SQL_REFUSE   /* refuse: *what names the feature ("SAVEPOINT") */
} dl_sql_verdict;

/* A text that is one CREATE [UNIQUE] INDEX ASYNC becomes this call with
 * the plain statement dollar-quoted, so the client gets DSQL's job id row;
 * in a text of several statements the ASYNC keywords are only dropped. */
#define DL_SQL_INDEX_JOB_CALL "SELECT job_id FROM dsql_local.create_index_async("

/* Checks every statement in sql[0..len) (a Query or Parse text, several
 * statements allowed). On DL_SQL_REWRITE *out is a malloc'd text of
 * *outlen bytes (no NUL, room for one more byte) the caller frees; on
 * DL_SQL_REFUSE *what points to a constant. Out of memory for a rewrite:
 * refused as "memory". */
dl_sql_verdict dl_sql_check(const char *sql, size_t len, const char **what, char **out,
                            size_t *outlen);

typedef enum dl_sql_kind {
    DL_SQL_OTHER,
    DL_SQL_COMMIT, /* one statement: COMMIT or END */
    DL_SQL_WRITE   /* one statement: INSERT, UPDATE, DELETE, MERGE */
} dl_sql_kind;

/* What a Query text is, for fault injection at commit. */
dl_sql_kind dl_sql_kind_of(const char *sql, size_t len);

/* 1 when sql[0..len) holds a statement, 0 when only blanks, comments and
 * semicolons (PostgreSQL's empty query). */
int dl_sql_has_statement(const char *sql, size_t len);

/* The text that makes PostgreSQL refuse a feature (SQLSTATE 0A000, "<what>
 * not supported") through the procedure the cluster setup installs. */
int dl_sql_refusal(char *buf, size_t cap, const char *what);

#endif
