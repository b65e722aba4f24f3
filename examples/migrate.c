/* A schema migration for Aurora DSQL: one DDL statement per transaction
 * (DSQL's rule), each run with dsql_pq_exec_with_retry so that a schema
 * conflict (SQLSTATE 40001, OC001: another session changed the catalog) is
 * retried with backoff, and the whole migration bounded by a deadline.
 *
 *   migrate [ENDPOINT | CLUSTER_ID | postgresql://... | "key=value ..."]
 *
 * With no argument the PG* / AWS_REGION environment is used (as set by
 * `dsql-local run`). Running it twice is harmless: every step is
 * idempotent, as a retried statement must be. */
#include <stdio.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>
#include <dsqlauth/pool.h>

static const char *const steps[] = {
    ("CREATE TABLE IF NOT EXISTS example_orders (id uuid PRIMARY KEY, "
     "customer text NOT NULL, total numeric NOT NULL)"),
    "ALTER TABLE example_orders ADD COLUMN IF NOT EXISTS placed_at timestamptz",
    "ALTER TABLE example_orders ADD COLUMN IF NOT EXISTS status text",
};

int main(int argc, char **argv)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || (argc > 1 && dsql_config_parse(cfg, argv[1], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "migrate: %s\n", err.message);
        dsql_config_free(cfg);
        return 1;
    }
    PGconn *conn = dsql_pq_connect(cfg, NULL, &err); /* NULL: the default chain */
    if (!conn) {
        fprintf(stderr, "migrate: %s\n", err.message);
        dsql_config_free(cfg);
        return 1;
    }
    dsql_retry_options retry;
    dsql_retry_options_init(&retry);
    retry.max_retries = 10;                             /* DDL races are short */
    retry.deadline_ms = dsql_monotonic_ms() + 60 * 1000; /* the whole migration */
    int failed = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !failed; i++) {
        dsql_pq_txn_result res;
        PGresult *r = dsql_pq_exec_with_retry(conn, steps[i], 0, NULL, &retry, &res, &err);
        if (!r) {
            /* DSQL_ETIMEOUT: the deadline; DSQL_ECONFLICT: still conflicting */
            fprintf(stderr, "migrate: step %zu: %s: %s\n", i + 1, dsql_status_name(err.status),
                    err.message);
            failed = 1;
            break;
        }
        printf("step %zu: %s (%u attempt%s, %u schema conflict%s)\n", i + 1, PQcmdStatus(r),
               res.attempts, res.attempts == 1 ? "" : "s", res.schema_conflicts,
               res.schema_conflicts == 1 ? "" : "s");
        PQclear(r);
    }
    PQfinish(conn);
    dsql_config_free(cfg);
    return failed;
}
