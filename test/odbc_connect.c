/* ODBC adapter against dsql-local (run by test/t-odbc.sh under
 * `dsql-local run`): connect and query through psqlODBC, quoting of values
 * with ';', '}', '=' and '{', tokens longer than 1,000 bytes, one token per
 * connection and a new one on reconnect, refused tokens, TLS verification,
 * a missing driver, and no token in any error message.
 *
 * Environment: the variables dsql-local sets, plus DSQL_ODBC_DRIVER (path
 * of psqlodbcw.so) and, optionally, ODBC_EXPECT_LONG_TOKEN=1. */
#include "dsqlauth.h"
#include "dsqlauth/odbc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static int checks;

/* Allocation-failure injection: the test is linked with -Wl,--wrap=malloc
 * (and calloc, realloc), which reroutes the calls made by the adapter and
 * libdsqlauth (static) but not those inside unixODBC and psqlODBC. */
static long fail_countdown; /* 0: off; n: the n-th allocation fails */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
static int inject(void) { return fail_countdown > 0 && --fail_countdown == 0; }
void *__wrap_malloc(size_t n) { return inject() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return inject() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return inject() ? NULL : __real_realloc(p, n); }

#define CHECK(cond, ...)                                     \
    do {                                                     \
        checks++;                                            \
        if (cond) {                                          \
            printf("ok   ");                                 \
        } else {                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);      \
            failures++;                                      \
        }                                                    \
        printf(__VA_ARGS__);                                 \
        printf("\n");                                        \
    } while (0)

static SQLHENV env;
static dsql_odbc_options opts = {DSQL_STRUCT_VERSION, NULL, NULL};

/* ---- a counting token provider around the real one ---- */

typedef struct counting {
    dsql_token_provider *inner;
    int calls;
    size_t last_len;
    int corrupt; /* flip one signature character: a refused token */
} counting;

static dsql_status counting_token(void *self, const dsql_token_request *req, char *buf,
                                  size_t cap, size_t *len, dsql_error *err)
{
    counting *c = self;
    c->calls++;
    dsql_status st = dsql_token_provider_get(c->inner, req, buf, cap, len, err);
    if (st == DSQL_OK) {
        c->last_len = *len;
        if (c->corrupt) {
            char *sig = strstr(buf, "X-Amz-Signature=");
            if (sig) {
                sig += 16;
                *sig = (*sig == '0') ? '1' : '0';
            }
        }
    }
    return st;
}

static void counting_destroy(void *self) { (void)self; }

static const dsql_token_provider_vtable counting_vt = {DSQL_STRUCT_VERSION, counting_token,
                                                       counting_destroy};

/* ---- helpers ---- */

static dsql_config *env_config(void)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || dsql_config_load_env(cfg, &err) != DSQL_OK) {
        printf("FAIL config from the environment: %s\n", err.message);
        exit(1);
    }
    return cfg;
}

static SQLHDBC new_dbc(void)
{
    SQLHDBC dbc = SQL_NULL_HDBC;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc))) {
        printf("FAIL SQLAllocHandle(DBC)\n");
        exit(1);
    }
    SQLSetConnectAttr(dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)(SQLULEN)20, 0);
    return dbc;
}

static void free_dbc(SQLHDBC dbc)
{
    SQLDisconnect(dbc);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc);
}

/* First column of the first row of sql as text into out; 0 on success. */
static int query1(SQLHDBC dbc, const char *sql, char *out, size_t cap)
{
    SQLHSTMT st = SQL_NULL_HSTMT;
    out[0] = '\0';
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st)))
        return -1;
    int rc = -1;
    SQLLEN ind = 0;
    if (SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS)) &&
        SQL_SUCCEEDED(SQLFetch(st)) &&
        SQL_SUCCEEDED(SQLGetData(st, 1, SQL_C_CHAR, out, (SQLLEN)cap, &ind)))
        rc = 0;
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return rc;
}

static int exec_sql(SQLHDBC dbc, const char *sql)
{
    SQLHSTMT st = SQL_NULL_HSTMT;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st)))
        return -1;
    SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return (SQL_SUCCEEDED(r) || r == SQL_NO_DATA) ? 0 : -1;
}

static int no_token_in(const char *msg)
{
    return !strstr(msg, "X-Amz-Signature") && !strstr(msg, "X-Amz-Credential") &&
           !strstr(msg, "Action=DbConnect") && !strstr(msg, "X-Amz-Security-Token");
}

/* ---- tests ---- */

static void test_quote(void)
{
    char buf[64];
    size_t len = 0;
    dsql_error err = {0};
    CHECK(dsql_odbc_quote("a;b}c=d{", buf, sizeof buf, &len, &err) == DSQL_OK &&
              strcmp(buf, "{a;b}}c=d{}") == 0 && len == strlen(buf),
          "quote a;b}c=d{ -> %s", buf);
    CHECK(dsql_odbc_quote("", buf, sizeof buf, &len, &err) == DSQL_OK && strcmp(buf, "{}") == 0,
          "quote empty -> {}");
    CHECK(dsql_odbc_quote("}}", buf, 6, &len, &err) == DSQL_EBUFSIZE && len == 6 &&
              buf[0] == '\0',
          "quote into a short buffer: DSQL_EBUFSIZE, needs %zu", len);
    CHECK(dsql_odbc_quote("}}", buf, 7, &len, &err) == DSQL_OK && strcmp(buf, "{}}}}}") == 0,
          "quote }} -> %s", buf);
}

static void test_string(dsql_token_provider *p)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    dsql_config_set(cfg, "application_name", "x';y}z\\", &err);
    char *s = NULL;
    size_t len = 0;
    dsql_status st = dsql_odbc_connection_string(cfg, p, 0, &opts, &s, &len, &err);
    CHECK(st == DSQL_OK && s && strlen(s) == len, "connection string built (%zu bytes)", len);
    if (s) {
        CHECK(strstr(s, "SSLmode=verify-full;") != NULL, "SSLmode=verify-full by default");
        CHECK(strstr(s, "hostaddr='127.0.0.1'") != NULL, "hostaddr through pqopt");
        CHECK(strstr(s, "application_name='x\\';y}}z\\\\'") != NULL,
              "application_name quoted for libpq, then '}' doubled for ODBC");
        CHECK(strstr(s, ";PWD={") != NULL && strstr(s, "CommLog=0;Debug=0;") != NULL,
              "PWD braced, driver logs off");
    }
    dsql_odbc_string_free(s);
    st = dsql_odbc_connection_string(cfg, p, 5, &opts, &s, &len, &err);
    CHECK(st == DSQL_EINVAL && s == NULL, "host index out of range: DSQL_EINVAL (%s)",
          err.message);
    dsql_config_set(cfg, "sslmode", "verify-fool", &err);
    st = dsql_odbc_connection_string(cfg, p, 0, &opts, &s, &len, &err);
    CHECK(st == DSQL_ECONFIG && strstr(err.message, "sslmode"), "bad sslmode: %s", err.message);
    dsql_config_free(cfg);
}

static void test_connect(counting *c, dsql_token_provider *p, int expect_long)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    SQLHDBC dbc = new_dbc();
    int before = c->calls;
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    CHECK(st == DSQL_OK, "connect: %s %s", dsql_status_name(st), err.message);
    CHECK(c->calls == before + 1, "one token for one connection (%d)", c->calls - before);
    if (expect_long)
        CHECK(c->last_len > 1000, "token longer than 1,000 bytes (%zu)", c->last_len);
    char out[256];
    if (st == DSQL_OK) {
        CHECK(query1(dbc, "SELECT 40 + 2", out, sizeof out) == 0 && strcmp(out, "42") == 0,
              "query: SELECT 40 + 2 = %s", out);
        CHECK(query1(dbc, "SELECT current_user", out, sizeof out) == 0 &&
                  strcmp(out, "admin") == 0,
              "current_user %s", out);
        CHECK(query1(dbc, "SELECT current_setting('application_name')", out, sizeof out) == 0 &&
                  strncmp(out, "libdsqlauth/", 12) == 0,
              "application_name %s", out);
        st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
        CHECK(st == DSQL_EINVAL && strstr(err.message, "08002"),
              "connecting a connected handle: %s %s", dsql_status_name(st), err.message);
        before = c->calls;
        st = dsql_odbc_reconnect(dbc, cfg, p, &opts, &err);
        CHECK(st == DSQL_OK && c->calls == before + 1, "reconnect with a new token: %s %s",
              dsql_status_name(st), err.message);
        CHECK(query1(dbc, "SELECT 7", out, sizeof out) == 0 && strcmp(out, "7") == 0,
              "query after reconnect");
    }
    free_dbc(dbc);
    /* No provider: the default chain (here: the environment's keys). */
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, NULL, &opts, &err);
    CHECK(st == DSQL_OK && query1(dbc, "SELECT 1", out, sizeof out) == 0,
          "provider NULL uses the default chain: %s %s", dsql_status_name(st), err.message);
    free_dbc(dbc);
    dsql_config_free(cfg);
}

/* A database and an application name with ';', '}', '=' and '{'. */
static void test_quoting_live(dsql_token_provider *p)
{
    static const char dbname[] = "d;b}x=y{z";
    static const char app[] = "app;name}=1{'q'";
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    SQLHDBC dbc = new_dbc();
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    if (st == DSQL_OK) {
        exec_sql(dbc, "CREATE DATABASE \"d;b}x=y{z\""); /* may exist from an earlier run */
        exec_sql(dbc, "CREATE ROLE \"u;s}e=r{\" LOGIN");
    }
    free_dbc(dbc);

    /* A user name that needs quoting (its token signs DbConnect). */
    dsql_config_set(cfg, "user", "u;s}e=r{", &err);
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    char who[64] = "";
    CHECK(st == DSQL_OK && query1(dbc, "SELECT current_user", who, sizeof who) == 0 &&
              strcmp(who, "u;s}e=r{") == 0,
          "connect as user u;s}e=r{: %s %s current_user=%s", dsql_status_name(st), err.message,
          who);
    free_dbc(dbc);
    dsql_config_set(cfg, "user", NULL, &err);

    dsql_config_set(cfg, "dbname", dbname, &err);
    dsql_config_set(cfg, "application_name", app, &err);
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    CHECK(st == DSQL_OK, "connect to database %s: %s %s", dbname, dsql_status_name(st),
          err.message);
    char out[256];
    if (st == DSQL_OK) {
        CHECK(query1(dbc, "SELECT current_database()", out, sizeof out) == 0 &&
                  strcmp(out, dbname) == 0,
              "current_database() = %s", out);
        CHECK(query1(dbc, "SELECT current_setting('application_name')", out, sizeof out) == 0 &&
                  strcmp(out, app) == 0,
              "application_name = %s", out);
    }
    free_dbc(dbc);

    /* A name that does not exist comes back verbatim in the server's error. */
    dsql_config_set(cfg, "dbname", "no;such}db=", &err);
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    CHECK(st == DSQL_ESERVER && strstr(err.message, "\"no;such}db=\" does not exist"),
          "missing database named exactly: %s %s", dsql_status_name(st), err.message);
    free_dbc(dbc);
    dsql_config_free(cfg);
}

/* Random printable application names, weighted to the characters that
 * matter to either parser (; { } = ' \ and blanks), arrive verbatim. */
static void test_quoting_random(dsql_token_provider *p)
{
    static const char special[] = ";{}='\\ =}};{";
    unsigned seed = 20261125u;
    int good = 0, rounds = 25;
    for (int r = 0; r < rounds; r++) {
        char app[48];
        size_t n = 1 + (seed = seed * 1103515245u + 12345u) / 65536u % 40u;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned v = (seed / 65536u) % 1000u;
            app[i] = (v < 500) ? special[v % (sizeof special - 1)] : (char)(0x20 + v % 95u);
        }
        app[n] = '\0';
        dsql_config *cfg = env_config();
        dsql_error err = {0};
        dsql_config_set(cfg, "application_name", app, &err);
        SQLHDBC dbc = new_dbc();
        char out[128] = "";
        dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
        if (st == DSQL_OK &&
            query1(dbc, "SELECT current_setting('application_name')", out, sizeof out) == 0 &&
            strcmp(out, app) == 0)
            good++;
        else
            printf("     application_name [%s] came back as [%s] (%s %s)\n", app, out,
                   dsql_status_name(st), err.message);
        free_dbc(dbc);
        dsql_config_free(cfg);
    }
    CHECK(good == rounds, "%d/%d random application names round-trip", good, rounds);
}

static void test_refused(counting *c, dsql_token_provider *p)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    SQLHDBC dbc = new_dbc();
    c->corrupt = 1;
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    c->corrupt = 0;
    CHECK(st == DSQL_EAUTH, "refused token: %s", dsql_status_name(st));
    CHECK(strstr(err.message, "IAM authentication failed for user \"admin\"") != NULL,
          "server's reason surfaces: %s", err.message);
    CHECK(strstr(err.message, "authentication") != NULL && strstr(err.message, "host ") != NULL,
          "message names host and step");
    CHECK(no_token_in(err.message), "no token in the message");
    CHECK(err.sqlstate[0] != '\0', "sqlstate %s", err.sqlstate);
    free_dbc(dbc);
    dsql_config_free(cfg);
}

/* An sslmode weaker than verify-full (set in code or imported from
 * PGSSLMODE) is refused before a token is signed or the driver is called,
 * unless allow_insecure_tls=1; then it connects and the log says so. */
static int tls_warnings;
static void count_tls_warning(dsql_log_level level, const char *msg, void *ud)
{
    (void)ud;
    if (level == DSQL_LOG_WARN && strstr(msg, "allow_insecure_tls=1"))
        tls_warnings++;
}

static void test_weak_tls(counting *c, dsql_token_provider *p)
{
    static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca",
                                        NULL};
    dsql_error err = {0};
    for (size_t i = 0; modes[i]; i++) {
        dsql_config *cfg = env_config();
        dsql_config_set(cfg, "sslmode", modes[i], &err);
        SQLHDBC dbc = new_dbc();
        int before = c->calls;
        dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
        char want[40];
        snprintf(want, sizeof want, "sslmode=%s", modes[i]);
        CHECK(st == DSQL_ECONFIG && strstr(err.message, want) &&
                  strstr(err.message, "allow_insecure_tls=1") && c->calls == before,
              "sslmode=%s refused before any token: %s %s (%d tokens)", modes[i],
              dsql_status_name(st), err.message, c->calls - before);
        char *s = NULL;
        st = dsql_odbc_connection_string(cfg, p, 0, &opts, &s, NULL, &err);
        CHECK(st == DSQL_ECONFIG && s == NULL, "no connection string for sslmode=%s", modes[i]);
        free_dbc(dbc);
        dsql_config_free(cfg);
    }
    const char *saved = getenv("PGSSLMODE");
    char keep[32];
    snprintf(keep, sizeof keep, "%s", saved ? saved : "");
    setenv("PGSSLMODE", "prefer", 1);
    dsql_config *cfg = env_config();
    if (*keep)
        setenv("PGSSLMODE", keep, 1);
    else
        unsetenv("PGSSLMODE");
    SQLHDBC dbc = new_dbc();
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    CHECK(st == DSQL_ECONFIG && strstr(err.message, "PGSSLMODE"),
          "PGSSLMODE=prefer from the environment refused: %s", err.message);
    free_dbc(dbc);
    /* the opt-in: TLS without verification, and a warning */
    dsql_config_set(cfg, "sslmode", "require", &err);
    dsql_config_set(cfg, "allow_insecure_tls", "1", &err);
    tls_warnings = 0;
    dsql_set_log_handler(count_tls_warning, DSQL_LOG_WARN, NULL);
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
    char out[16];
    CHECK(st == DSQL_OK && query1(dbc, "SELECT 1", out, sizeof out) == 0,
          "sslmode=require with allow_insecure_tls=1 connects: %s %s", dsql_status_name(st),
          err.message);
    CHECK(tls_warnings == 1, "the opt-in is logged as a warning (%d)", tls_warnings);
    free_dbc(dbc);
    dsql_config_free(cfg);
    /* the caller's extra attributes cannot lower it either: the adapter's
     * SSLmode comes later and wins. With CAs that do not know dsql-local,
     * require would connect; verify-full must refuse. */
    cfg = env_config();
    dsql_config_set(cfg, "sslrootcert", "/etc/ssl/certs/ca-certificates.crt", &err);
    dsql_odbc_options weak = opts;
    weak.extra = "SSLmode=require;sslmode=require;";
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &weak, &err);
    CHECK(st == DSQL_ETLS, "SSLmode=require in opts->extra does not beat verify-full: %s %s",
          dsql_status_name(st), err.message);
    free_dbc(dbc);
    dsql_config_free(cfg);
}

static void test_tls(dsql_token_provider *p)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    /* The system CAs do not know dsql-local's certificate: verify-full must
     * refuse it. */
    dsql_config_set(cfg, "sslrootcert", "/etc/ssl/certs/ca-certificates.crt", &err);
    SQLHDBC dbc = new_dbc();
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    CHECK(st == DSQL_ETLS, "unknown CA refused: %s %s", dsql_status_name(st), err.message);
    CHECK(no_token_in(err.message), "no token in the TLS message");
    free_dbc(dbc);
    dsql_config_free(cfg);
}

/* Every allocation the adapter (and the core under it) makes may fail:
 * the result is DSQL_ENOMEM (or the provider's own status), never a crash
 * or a half-built string; then the n+1-th run succeeds. */
static void test_alloc_failures(dsql_token_provider *p)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    dsql_config_resolve(cfg, &err);
    int ok = 0, bad = 0;
    long n;
    for (n = 1; n < 1000 && !ok; n++) {
        char *s = NULL;
        size_t len = 0;
        fail_countdown = n;
        dsql_status st = dsql_odbc_connection_string(cfg, p, 0, &opts, &s, &len, &err);
        fail_countdown = 0;
        if (st == DSQL_OK)
            ok = 1;
        else if (st != DSQL_ENOMEM || s != NULL)
            bad++, printf("     allocation %ld failing gave %s: %s\n", n, dsql_status_name(st),
                          err.message);
        dsql_odbc_string_free(s);
    }
    CHECK(ok && !bad, "connection string: %ld allocation failures handled", n - 2);
    ok = bad = 0;
    for (n = 1; n < 1000 && !ok; n++) {
        SQLHDBC dbc = new_dbc();
        fail_countdown = n;
        dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
        fail_countdown = 0;
        if (st == DSQL_OK)
            ok = 1;
        else if (st != DSQL_ENOMEM)
            bad++, printf("     allocation %ld failing gave %s: %s\n", n, dsql_status_name(st),
                          err.message);
        free_dbc(dbc);
    }
    CHECK(ok && !bad, "connect: %ld allocation failures handled", n - 2);
    dsql_config_free(cfg);
}

/* OCC: the body reads a row (snapshot), another connection updates and
 * commits it, the body's own update conflicts (40001) on the first
 * attempt; dsql_odbc_run_transaction rolls back and runs it again. */
typedef struct occ_arg {
    SQLHDBC other;
    int attempts;
    dsql_status first;
} occ_arg;

static dsql_status occ_body(SQLHDBC dbc, const dsql_retry_info *info, void *argp,
                       dsql_error *err)
{
    (void)info;
    occ_arg *a = argp;
    char out[64];
    a->attempts++;
    if (query1(dbc, "SELECT n FROM odbc_occ WHERE id = 1", out, sizeof out) != 0)
        return DSQL_ESERVER;
    if (a->attempts == 1 && exec_sql(a->other, "UPDATE odbc_occ SET n = n + 100 WHERE id = 1"))
        return DSQL_ESERVER;
    SQLHSTMT st = SQL_NULL_HSTMT;
    SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
    SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)"UPDATE odbc_occ SET n = n + 1 WHERE id = 1",
                                SQL_NTS);
    dsql_status s = SQL_SUCCEEDED(r) ? DSQL_OK : dsql_odbc_diag_status(SQL_HANDLE_STMT, st, err);
    if (a->attempts == 1)
        a->first = s;
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return s;
}

/* Item 5 of issue 16: a transaction must not run inside another one. */
typedef struct nested_arg {
    int calls;
    dsql_status inner;
    char inner_message[512];
} nested_arg;

static dsql_status counting_body(SQLHDBC dbc, const dsql_retry_info *info, void *argp,
                       dsql_error *err)
{
    (void)info;
    (void)dbc, (void)err;
    ((nested_arg *)argp)->calls++;
    return DSQL_OK;
}

static dsql_status nesting_body(SQLHDBC dbc, const dsql_retry_info *info, void *argp,
                       dsql_error *err)
{
    (void)info;
    nested_arg *a = argp;
    dsql_error e = {0};
    a->inner = dsql_odbc_run_transaction(dbc, counting_body, a, NULL, NULL, &e);
    memcpy(a->inner_message, e.message, sizeof a->inner_message);
    (void)err;
    return DSQL_OK;
}

static void test_no_interleaved_transactions(SQLHDBC a)
{
    /* the caller's own open transaction (autocommit off, a write pending) */
    nested_arg n = {0, DSQL_OK, ""};
    dsql_error err = {0};
    exec_sql(a, "DROP TABLE IF EXISTS odbc_mine");
    exec_sql(a, "CREATE TABLE odbc_mine (id int)");
    SQLSetConnectAttr(a, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)(SQLULEN)SQL_AUTOCOMMIT_OFF, 0);
    exec_sql(a, "INSERT INTO odbc_mine VALUES (1)");
    dsql_status st = dsql_odbc_run_transaction(a, counting_body, &n, NULL, NULL, &err);
    CHECK(st == DSQL_EINVAL && n.calls == 0 && strstr(err.message, "autocommit off") != NULL,
          "refused inside the caller's transaction: %s after %d call(s): %s",
          dsql_status_name(st), n.calls, err.message);
    SQLEndTran(SQL_HANDLE_DBC, a, SQL_COMMIT); /* the caller's work survived */
    SQLSetConnectAttr(a, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)(SQLULEN)SQL_AUTOCOMMIT_ON, 0);
    char out[32] = "";
    CHECK(query1(a, "SELECT count(*) FROM odbc_mine", out, sizeof out) == 0 &&
              strcmp(out, "1") == 0,
          "the caller's insert was not rolled back: count %s", out);
    /* a run inside a run on the same connection */
    st = dsql_odbc_run_transaction(a, nesting_body, &n, NULL, NULL, &err);
    CHECK(st == DSQL_OK && n.inner == DSQL_EINVAL && n.calls == 0,
          "a nested run is refused: outer %s, inner %s (%s), %d call(s)", dsql_status_name(st),
          dsql_status_name(n.inner), n.inner_message, n.calls);
    exec_sql(a, "DROP TABLE IF EXISTS odbc_mine");
}

static int cancel_after_first(void *argp)
{
    return ((occ_arg *)argp)->attempts >= 1;
}

static dsql_status fail_body(SQLHDBC dbc, const dsql_retry_info *info, void *argp,
                       dsql_error *err)
{
    (void)info;
    (void)argp;
    SQLHSTMT st = SQL_NULL_HSTMT;
    SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
    SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)"SELECT no_such_column FROM odbc_occ", SQL_NTS);
    dsql_status s = SQL_SUCCEEDED(r) ? DSQL_OK : dsql_odbc_diag_status(SQL_HANDLE_STMT, st, err);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return s;
}

/* A unique violation on the value 'OC000' (DETAIL quotes it) and a bad
 * integer 'OC001' (the primary message quotes it): user data, not
 * conflicts. */
typedef struct data_arg {
    int calls;
    const char *sql;
} data_arg;

static dsql_status data_body(SQLHDBC dbc, const dsql_retry_info *info, void *argp,
                       dsql_error *err)
{
    (void)info;
    data_arg *a = argp;
    a->calls++;
    SQLHSTMT st = SQL_NULL_HSTMT;
    SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
    SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)a->sql, SQL_NTS);
    dsql_status s = SQL_SUCCEEDED(r) ? DSQL_OK : dsql_odbc_diag_status(SQL_HANDLE_STMT, st, err);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return s;
}

static void test_occ_codes_in_data(SQLHDBC a)
{
    exec_sql(a, "DROP TABLE IF EXISTS odbc_occ_u");
    CHECK(exec_sql(a, "CREATE TABLE odbc_occ_u (v text PRIMARY KEY)") == 0 &&
              exec_sql(a, "INSERT INTO odbc_occ_u VALUES ('OC000')") == 0,
          "occ data: table created");
    const struct {
        const char *sql, *sqlstate;
    } cases[] = {
        {"INSERT INTO odbc_occ_u VALUES ('OC000')", "23505"},
        {"SELECT 'OC001'::int", "22P02"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        data_arg arg = {0, cases[i].sql};
        dsql_error err = {0};
        dsql_retry_options o;
        dsql_retry_options_init(&o);
        dsql_status st = dsql_odbc_run_transaction(a, data_body, &arg, &o, NULL, &err);
        CHECK(st == DSQL_ESERVER && strcmp(err.sqlstate, cases[i].sqlstate) == 0 && arg.calls == 1,
              "'%s': %s %s after %d run(s), not a conflict (%s)", cases[i].sql,
              dsql_status_name(st), err.sqlstate, arg.calls, err.message);
    }
    exec_sql(a, "DROP TABLE IF EXISTS odbc_occ_u");
}

/* Aurora DSQL's conflicts (40001 with OC001, then none, then OC000 in the
 * primary message; each DETAIL quotes another code, which must not count):
 * the kind of each reaches the next attempt's info and the result, as in
 * the libpq adapter. */
#define RAISE_40001(primary, detail)                                                    \
    "DO $$ BEGIN RAISE EXCEPTION '" primary "' USING ERRCODE = '40001', DETAIL = '" \
    detail "'; END $$"

typedef struct kinds_arg {
    int calls;
    dsql_conflict_kind seen[5]; /* info->previous_conflict per attempt */
    char seen_state[5][6];
} kinds_arg;

static dsql_status kinds_body(SQLHDBC dbc, const dsql_retry_info *info, void *argp,
                              dsql_error *err)
{
    static const char *const sql[] = {
        RAISE_40001("schema has been updated by another transaction, please retry: (OC001)",
                    "user data OC000"),
        RAISE_40001("could not serialize access", "user data OC000"),
        RAISE_40001("mutation conflicts with another transaction, retry as needed (OC000)",
                    "user data OC001"),
        "SELECT 1"};
    kinds_arg *a = argp;
    if (a->calls < 4 && info->attempt == (unsigned)a->calls + 1) {
        a->seen[a->calls] = info->previous_conflict;
        memcpy(a->seen_state[a->calls], info->previous_sqlstate, 6);
    }
    SQLHSTMT st = SQL_NULL_HSTMT;
    SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
    SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)sql[a->calls < 4 ? a->calls : 3], SQL_NTS);
    a->calls++;
    dsql_status s = SQL_SUCCEEDED(r) ? DSQL_OK : dsql_odbc_diag_status(SQL_HANDLE_STMT, st, err);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return s;
}

static void test_occ_kinds(SQLHDBC a)
{
    kinds_arg arg = {0, {0}, {""}};
    dsql_retry_result res;
    dsql_error err = {0};
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    dsql_status st = dsql_odbc_run_transaction(a, kinds_body, &arg, &o, &res, &err);
    CHECK(st == DSQL_OK && arg.calls == 4 && res.attempts == 4, "kinds: %s after %d run(s): %s",
          dsql_status_name(st), arg.calls, err.message);
    CHECK(res.conflicts == 3 && res.schema_conflicts == 1 && res.data_conflicts == 1 &&
              res.unknown_conflicts == 1 && res.last_conflict == DSQL_CONFLICT_DATA,
          "kinds in the result: %u conflicts, %u schema, %u data, %u unknown, last %s",
          res.conflicts, res.schema_conflicts, res.data_conflicts, res.unknown_conflicts,
          dsql_conflict_kind_name(res.last_conflict));
    CHECK(arg.seen[0] == DSQL_CONFLICT_NONE && arg.seen[1] == DSQL_CONFLICT_SCHEMA &&
              arg.seen[2] == DSQL_CONFLICT_UNKNOWN && arg.seen[3] == DSQL_CONFLICT_DATA &&
              strcmp(arg.seen_state[1], "40001") == 0,
          "kinds in the info: %s, %s, %s, %s (sqlstate %s)",
          dsql_conflict_kind_name(arg.seen[0]), dsql_conflict_kind_name(arg.seen[1]),
          dsql_conflict_kind_name(arg.seen[2]), dsql_conflict_kind_name(arg.seen[3]),
          arg.seen_state[1]);
    /* retries used up: the conflict's own error, its kind counted */
    o.max_retries = 0;
    arg = (kinds_arg){0, {0}, {""}};
    st = dsql_odbc_run_transaction(a, kinds_body, &arg, &o, &res, &err);
    CHECK(st == DSQL_ECONFLICT && strcmp(err.sqlstate, "40001") == 0 &&
              strstr(err.message, "(OC001)") != NULL && res.schema_conflicts == 1 &&
              res.last_conflict == DSQL_CONFLICT_SCHEMA,
          "no retry left: %s %s, last %s: %s", dsql_status_name(st), err.sqlstate,
          dsql_conflict_kind_name(res.last_conflict), err.message);
}

static void test_occ(dsql_token_provider *p)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    SQLHDBC a = new_dbc(), b = new_dbc();
    if (dsql_odbc_connect(a, cfg, p, &opts, &err) != DSQL_OK ||
        dsql_odbc_connect(b, cfg, p, &opts, &err) != DSQL_OK) {
        CHECK(0, "occ: connect: %s", err.message);
        free_dbc(a), free_dbc(b);
        dsql_config_free(cfg);
        return;
    }
    exec_sql(a, "DROP TABLE IF EXISTS odbc_occ");
    CHECK(exec_sql(a, "CREATE TABLE odbc_occ (id int PRIMARY KEY, n int)") == 0 &&
              exec_sql(a, "INSERT INTO odbc_occ VALUES (1, 0)") == 0,
          "occ: table created");
    occ_arg arg = {b, 0, DSQL_OK};
    dsql_retry_result res;
    dsql_status st = dsql_odbc_run_transaction(a, occ_body, &arg, NULL, &res, &err);
    CHECK(arg.first == DSQL_ECONFLICT, "first attempt conflicts: %s",
          dsql_status_name(arg.first));
    CHECK(st == DSQL_OK && arg.attempts == 2, "run_transaction retried: %s after %d attempts %s",
          dsql_status_name(st), arg.attempts, err.message);
    /* a write-write conflict: OC000 where dsql-local words it as DSQL does,
       else PostgreSQL's own serialization failure (no OCC code) */
    CHECK(res.attempts == 2 && res.conflicts == 1 &&
              ((res.data_conflicts == 1 && res.last_conflict == DSQL_CONFLICT_DATA) ||
               (res.unknown_conflicts == 1 && res.last_conflict == DSQL_CONFLICT_UNKNOWN)),
          "result: %u attempts, %u conflict(s) (%u data, %u unknown), last %s", res.attempts,
          res.conflicts, res.data_conflicts, res.unknown_conflicts,
          dsql_conflict_kind_name(res.last_conflict));
    char out[64];
    CHECK(query1(a, "SELECT n FROM odbc_occ WHERE id = 1", out, sizeof out) == 0 &&
              strcmp(out, "101") == 0,
          "both updates applied once: n = %s", out);
    SQLULEN ac = 0;
    SQLGetConnectAttr(a, SQL_ATTR_AUTOCOMMIT, &ac, 0, NULL);
    CHECK(ac == SQL_AUTOCOMMIT_ON, "autocommit restored");

    dsql_retry_options o;
    dsql_retry_options_init(&o);
    o.max_retries = 2;
    st = dsql_odbc_run_transaction(a, fail_body, NULL, &o, NULL, &err);
    CHECK(st == DSQL_ESERVER && strcmp(err.sqlstate, "42703") == 0,
          "other errors are not retried: %s %s %s", dsql_status_name(st), err.sqlstate,
          err.message);
    /* the deadline and the cancel callback end the retries; a wait that
       would pass the deadline is not slept (100 s: it would hang the test) */
    dsql_retry_options_init(&o);
    o.max_retries = 100;
    o.base_delay_us = o.max_delay_us = 100000000u;
    o.jitter = 0;
    o.deadline_ms = dsql_monotonic_ms() + 3000;
    arg = (occ_arg){b, 0, DSQL_OK};
    st = dsql_odbc_run_transaction(a, occ_body, &arg, &o, NULL, &err);
    CHECK(st == DSQL_ETIMEOUT && arg.attempts == 1 && err.sqlstate[0] == '\0' &&
              strstr(err.message, "deadline") != NULL,
          "deadline ends the retries: %s after %d attempts: %s", dsql_status_name(st),
          arg.attempts, err.message);
    o.deadline_ms = 0;
    o.cancelled = cancel_after_first;
    o.cancel_arg = &arg;
    arg = (occ_arg){b, 0, DSQL_OK};
    st = dsql_odbc_run_transaction(a, occ_body, &arg, &o, NULL, &err);
    CHECK(st == DSQL_ECANCELLED && arg.attempts == 1,
          "cancel ends the retries: %s after %d attempts: %s", dsql_status_name(st),
          arg.attempts, err.message);
    exec_sql(a, "DROP TABLE IF EXISTS odbc_occ");
    test_no_interleaved_transactions(a);
    test_occ_codes_in_data(a);
    test_occ_kinds(a);
    free_dbc(a);
    free_dbc(b);
    dsql_config_free(cfg);
}

/* Two hosts, the first one refusing TCP: a token per host, the second
 * connects; both refusing: the message names each host. */
static void test_hosts(counting *c, dsql_token_provider *p)
{
    const char *name = getenv("PGHOST"), *port = getenv("PGPORT");
    char hosts[600], ports[32];
    snprintf(hosts, sizeof hosts, "%s,%s", name, name);
    snprintf(ports, sizeof ports, "1,%s", port);
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    dsql_config_set(cfg, "host", hosts, &err);
    dsql_config_set(cfg, "hostaddr", "127.0.0.1,127.0.0.1", &err);
    dsql_config_set(cfg, "port", ports, &err);
    SQLHDBC dbc = new_dbc();
    int before = c->calls;
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    CHECK(st == DSQL_OK && c->calls == before + 2,
          "second host after the first refused: %s, %d tokens %s", dsql_status_name(st),
          c->calls - before, err.message);
    free_dbc(dbc);
    dsql_config_set(cfg, "port", "1,1", &err);
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &opts, &err);
    const char *second = strstr(err.message, "; host ");
    CHECK(st == DSQL_ENETWORK && strncmp(err.message, "host ", 5) == 0 && second,
          "every host failed, each named: %s %s", dsql_status_name(st), err.message);
    free_dbc(dbc);
    dsql_config_free(cfg);
}

static void test_no_driver(dsql_token_provider *p)
{
    dsql_config *cfg = env_config();
    dsql_error err = {0};
    dsql_odbc_options o = {DSQL_STRUCT_VERSION, "/nonexistent/psqlodbcw.so", NULL};
    SQLHDBC dbc = new_dbc();
    dsql_status st = dsql_odbc_connect(dbc, cfg, p, &o, &err);
    CHECK(st == DSQL_ECONFIG, "missing driver: %s %s", dsql_status_name(st), err.message);
    CHECK(no_token_in(err.message), "no token in the driver message");
    free_dbc(dbc);
    o.version = 99;
    dbc = new_dbc();
    st = dsql_odbc_connect(dbc, cfg, p, &o, &err);
    CHECK(st == DSQL_EINVAL, "options version checked");
    free_dbc(dbc);
    dsql_config_free(cfg);
}

int main(void)
{
    const char *drv = getenv("DSQL_ODBC_DRIVER");
    opts.driver = (drv && *drv) ? drv : NULL;
    int expect_long = getenv("ODBC_EXPECT_LONG_TOKEN") != NULL;

    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env)) ||
        !SQL_SUCCEEDED(SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0))) {
        printf("FAIL ODBC environment\n");
        return 1;
    }
    dsql_error err = {0};
    dsql_credentials_provider *creds = dsql_credentials_provider_env(&err);
    dsql_token_provider *inner = creds ? dsql_token_provider_signing(creds, NULL, &err) : NULL;
    if (!inner) {
        printf("FAIL token provider: %s\n", err.message);
        return 1;
    }
    counting c = {inner, 0, 0, 0};
    dsql_token_provider *p = dsql_token_provider_new(&counting_vt, &c, &err);
    if (!p) {
        printf("FAIL counting provider: %s\n", err.message);
        return 1;
    }

    test_quote();
    test_string(p);
    test_connect(&c, p, expect_long);
    if (!expect_long) {
        test_quoting_live(p);
        test_quoting_random(p);
        test_refused(&c, p);
        test_tls(p);
        test_weak_tls(&c, p);
        test_no_driver(p);
        test_hosts(&c, p);
        test_occ(p);
        test_alloc_failures(p);
    }

    dsql_token_provider_free(p);
    dsql_token_provider_free(inner);
    SQLFreeHandle(SQL_HANDLE_ENV, env);
    printf("odbc: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
