/* The non-blocking connect never waits for a credentials fetch (issue 16,
 * item 6): against a loopback IMDS (test/aws_test_server.py) that answers
 * the credentials request after 800 ms, dsql_pq_connect_start returns a
 * handle at once, the first poll says READING with a pollable fd (the
 * helper thread's pipe), and the connection completes through
 * dsql_pq_connect_poll. Runs under `dsql-local run --keys` with the key
 * the IMDS double hands out (re-executes itself). The longest single call
 * is printed, not asserted (make bench measures it). */
#include <fcntl.h>
#include <poll.h>
#include <time.h>

#include "testutil.h"
#include "aws_server.h"
#include <dsqlauth/libpq.h>
#include <dsqlauth/pool.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static dsql_config *env_config(void)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_msg(dsql_config_load_env(cfg, &err) == DSQL_OK, "%s", err.message);
    return cfg;
}

/* IMDS credentials, cached, signing: what an EC2 instance's chain ends in. */
static dsql_token_provider *imds_tokens(void)
{
    dsql_error err = {0};
    dsql_credentials_provider *imds = dsql_credentials_provider_imds(&err);
    dsql_credentials_provider *cached = imds ? dsql_credentials_provider_cached(imds, &err) : NULL;
    dsql_token_provider *tp = cached ? dsql_token_provider_signing(cached, NULL, &err) : NULL;
    ck_assert_msg(tp != NULL, "%s", err.message);
    return tp;
}

static void slow_imds(void)
{
    ck_assert_int_eq(aws_server_config("{\"faults\": {\"imds_creds\": {\"delay\": 0.8}}}"), 0);
}

/* Drives c with poll(2) to the end; the longest single call in *longest_us. */
static PGconn *drive(dsql_pq_connecting *c, double *longest_us)
{
    dsql_error err = {0};
    for (;;) {
        int fd = -1, tmo = -1;
        double t0 = now_us();
        dsql_pq_poll_status s = dsql_pq_connect_poll(c, &fd, &tmo, &err);
        double dt = now_us() - t0;
        if (dt > *longest_us)
            *longest_us = dt;
        if (s == DSQL_PQ_POLL_OK)
            return dsql_pq_connect_finish(c);
        ck_assert_msg(s != DSQL_PQ_POLL_FAILED, "%s", err.message);
        struct pollfd p = {fd, s == DSQL_PQ_POLL_WRITING ? POLLOUT : POLLIN, 0};
        poll(&p, fd < 0 ? 0 : 1, tmo < 0 ? 5000 : tmo);
    }
}

START_TEST(test_connect_start_does_not_wait_for_credentials)
{
    slow_imds();
    dsql_config *cfg = env_config();
    dsql_token_provider *tp = imds_tokens();
    dsql_error err = {0};
    double t0 = now_us();
    dsql_pq_connecting *c = dsql_pq_connect_start(cfg, tp, &err);
    double start_us = now_us() - t0;
    ck_assert_msg(c != NULL, "%s", err.message);

    /* the first poll: waiting, with an fd an event loop can watch */
    int fd = -1, tmo = 0;
    t0 = now_us();
    dsql_pq_poll_status s = dsql_pq_connect_poll(c, &fd, &tmo, &err);
    double first_poll_us = now_us() - t0;
    ck_assert_msg(s == DSQL_PQ_POLL_READING, "first poll: %d (%s)", s, err.message);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_ge(poll(&p, 1, 5000), 0);

    double longest = start_us > first_poll_us ? start_us : first_poll_us;
    PGconn *conn = drive(c, &longest);
    ck_assert_ptr_nonnull(conn);
    PGresult *r = PQexec(conn, "select current_user");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "admin");
    PQclear(r);
    PQfinish(conn);
    ck_assert_int_eq(aws_server_count("imds_creds"), 1);
    printf("non-blocking connect with an 800 ms IMDS: connect_start %.0f us, longest single "
           "call %.0f us\n", start_us, longest);
    dsql_token_provider_free(tp);
    dsql_config_free(cfg);
}
END_TEST

START_TEST(test_abandoned_while_fetching)
{
    slow_imds();
    dsql_config *cfg = env_config();
    dsql_token_provider *tp = imds_tokens();
    dsql_error err = {0};
    dsql_pq_connecting *c = dsql_pq_connect_start(cfg, tp, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    /* finish waits for the helper thread: the provider is freed after */
    ck_assert_ptr_null(dsql_pq_connect_finish(c));
    dsql_token_provider_free(tp);
    dsql_config_free(cfg);
}
END_TEST

START_TEST(test_pool_nonblocking_acquire_does_not_wait)
{
    slow_imds();
    dsql_config *cfg = env_config();
    dsql_token_provider *tp = imds_tokens();
    dsql_error err = {0};
    dsql_pq_pool *pool = dsql_pq_pool_new(cfg, tp, NULL, &err);
    ck_assert_msg(pool != NULL, "%s", err.message);
    dsql_pq_pool_acquiring *a = dsql_pq_pool_acquire_start(pool, -1, &err);
    ck_assert_msg(a != NULL, "%s", err.message);
    int fd = -1, tmo = 0;
    dsql_pq_poll_status s = dsql_pq_pool_acquire_poll(a, &fd, &tmo, &err);
    ck_assert_msg(s == DSQL_PQ_POLL_READING && fd >= 0, "first poll: %d fd %d (%s)", s, fd,
                  err.message);
    while (s != DSQL_PQ_POLL_OK) {
        ck_assert_msg(s != DSQL_PQ_POLL_FAILED, "%s", err.message);
        struct pollfd p = {fd, s == DSQL_PQ_POLL_WRITING ? POLLOUT : POLLIN, 0};
        poll(&p, fd < 0 ? 0 : 1, tmo < 0 ? 5000 : tmo);
        s = dsql_pq_pool_acquire_poll(a, &fd, &tmo, &err);
    }
    PGconn *conn = dsql_pq_pool_acquire_finish(a);
    ck_assert_ptr_nonnull(conn);
    ck_assert_int_eq(dsql_pq_pool_release(pool, conn), DSQL_OK);
    dsql_pq_pool_free(pool);
    dsql_token_provider_free(tp);
    dsql_config_free(cfg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nonblocking_connect");
    TCase *tc = tcase_create("imds");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_connect_start_does_not_wait_for_credentials);
    tcase_add_test(tc, test_abandoned_while_fetching);
    tcase_add_test(tc, test_pool_nonblocking_acquire_does_not_wait);
    suite_add_tcase(s, tc);
    return s;
}

/* Outside dsql-local: re-run under `dsql-local run --keys` with the key the
 * IMDS double hands out (and nothing else: only IMDS credentials log in). */
static int reexec_under_dsql_local(char **argv)
{
    if (getenv("DSQL_NB_REEXEC"))
        return 0;
    const char *b = getenv("B");
    char local[512], keys[] = "/tmp/dsql-nb-keys-XXXXXX";
    snprintf(local, sizeof local, "%s/dsql-local", b && *b ? b : "build");
    if (access(local, X_OK) != 0) {
        fprintf(stderr, "check_nonblocking_connect: %s is missing (make check builds it)\n",
                local);
        return -1;
    }
    int fd = mkstemp(keys);
    if (fd < 0)
        return -1;
    const char line[] = "ASIATESTACCESSKEY test/secret+access/key test-session-token\n";
    if (write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) {
        close(fd);
        return -1;
    }
    close(fd);
    setenv("DSQL_NB_REEXEC", keys, 1);
    execl(local, local, "run", "--keys", keys, "--", argv[0], (char *)NULL);
    return -1;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (reexec_under_dsql_local(argv) != 0)
        return EXIT_FAILURE;
    if (aws_server_start_clean() != 0)
        return EXIT_FAILURE;
    /* no keys in the environment: IMDS is where the credentials come from */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws_server_url, 1);
    int failed = test_run_suite(suite());
    aws_server_stop();
    unlink(getenv("DSQL_NB_REEXEC")); /* dsql-local reads it at every login */
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
