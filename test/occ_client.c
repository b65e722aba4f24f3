/* One libpq session the way many C applications talk: BEGIN and COMMIT as
 * simple queries (PQexec), the statements in between through the extended
 * protocol (PQexecParams). Used by test/t-dsql-local-occ.sh: the gateway
 * checks a stale catalog at such a COMMIT even though it never saw the
 * statements' text.
 *
 *   occ_client BEGAN_FILE GO_FILE SQL [extended-commit]
 *
 * With extended-commit the COMMIT goes through PQexecParams too (Parse,
 * Bind, Execute of the unnamed statement), as JDBC and pgx send it.
 *
 * Connects with the PG* environment, runs BEGIN, creates BEGAN_FILE, waits
 * (at most 30 s) for GO_FILE, runs SQL with PQexecParams, then COMMIT, then
 * prints one line per step: "ok" or "error SQLSTATE: message", and the
 * transaction status after the COMMIT ("idle", "in error", ...). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static const char *field(const PGresult *res, int code)
{
    const char *v = PQresultErrorField(res, code);
    return v ? v : "(none)";
}

static void report(const char *step, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        printf("%s: ok\n", step);
    else
        printf("%s: error %s: %s\n", step, field(res, PG_DIAG_SQLSTATE),
               field(res, PG_DIAG_MESSAGE_PRIMARY));
    PQclear(res);
}

static int wait_for(const char *path)
{
    struct timespec tick = {0, 50 * 1000 * 1000};
    int i;

    for (i = 0; i < 600; i++) {
        if (access(path, F_OK) == 0)
            return 0;
        nanosleep(&tick, NULL);
    }
    return -1;
}

int main(int argc, char **argv)
{
    PGconn *conn;
    FILE *fp;
    int status;

    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "extended-commit") == 0)) {
        fprintf(stderr, "usage: occ_client BEGAN_FILE GO_FILE SQL [extended-commit]\n");
        return 2;
    }
    conn = PQconnectdb("");
    if (PQstatus(conn) != CONNECTION_OK) {
        printf("connect: error %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    report("begin", PQexec(conn, "BEGIN"));
    report("snapshot", PQexecParams(conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0));
    fp = fopen(argv[1], "w");
    if (fp)
        fclose(fp);
    if (wait_for(argv[2]) != 0)
        printf("wait: %s never came\n", argv[2]);
    report("statement", PQexecParams(conn, argv[3], 0, NULL, NULL, NULL, NULL, 0));
    if (argc == 5)
        report("commit", PQexecParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0));
    else
        report("commit", PQexec(conn, "COMMIT"));
    status = PQtransactionStatus(conn);
    printf("after: %s\n", status == PQTRANS_IDLE ? "idle" : status == PQTRANS_INERROR ? "in error"
                          : status == PQTRANS_INTRANS ? "in transaction" : "other");
    PQfinish(conn);
    return 0;
}
