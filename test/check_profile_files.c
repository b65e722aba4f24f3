/* Reading the shared config and credentials files when they are not plain
 * small files: FIFOs with and without a writer, a pipe named /dev/fd/N (a
 * shell's process substitution), /dev/null, /dev/zero, files over the
 * 16 MiB cap, NUL bytes; and parsing stays correct (and linear) with 100k
 * profiles, big sections and long continuations. Tests that could hang on
 * a regression arm alarm() so they fail instead. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "creds/profile.h"

#define CREDS "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n"

static char tmpdir[256];

static void setup(void)
{
    test_make_home(tmpdir, sizeof tmpdir, "dsql-pfiles");
    test_clear_profile_env();
}

static void teardown(void)
{
    alarm(0);
    test_remove_tree(tmpdir);
}

/* tmpdir/rel, in a static buffer. */
static const char *in_tmp(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    return path;
}

/* Writes n bytes (NULs allowed) to tmpdir/rel at mode 0600; the path. */
static const char *write_bytes(const char *rel, const char *bytes, size_t n)
{
    const char *path = in_tmp(rel);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert(fwrite(bytes, 1, n, f) == n);
    ck_assert(fclose(f) == 0);
    ck_assert(chmod(path, 0600) == 0);
    return path;
}

/* The status of one get() from the profile provider for `profile`; on
 * success *akid gets a copy of the key id (caller frees). */
static dsql_status get_creds(const char *profile, char **akid, dsql_error *err)
{
    dsql_credentials_provider *p = dsql_credentials_provider_profile(profile, err);
    ck_assert_ptr_nonnull(p);
    dsql_credentials c;
    dsql_status st = dsql_credentials_provider_get(p, &c, err);
    if (akid)
        *akid = st == DSQL_OK ? strdup(c.access_key_id) : NULL;
    if (st == DSQL_OK)
        dsql_credentials_clear(&c);
    dsql_credentials_provider_free(p);
    return st;
}

static void expect_akid(const char *profile, const char *want)
{
    dsql_error err = {0};
    char *akid = NULL;
    dsql_status st = get_creds(profile, &akid, &err);
    ck_assert_msg(st == DSQL_OK, "profile %s: %s (%s)", profile ? profile : "(default)",
                  dsql_status_name(st), err.message);
    ck_assert_str_eq(akid, want);
    free(akid);
}

static void reap(pid_t pid)
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer child failed");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The default profile of the credentials file at path (a FIFO or a pipe)
 * has AKIDFILE; a blocking open or read would hang: fail after 10 s instead. */
static void expect_akid_from(const char *path)
{
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    alarm(10);
    expect_akid(NULL, "AKIDFILE");
    alarm(0);
}

/* The same through /dev/fd/N, as `AWS_SHARED_CREDENTIALS_FILE=<(...)`. */
static void expect_akid_from_fd(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fd);
    expect_akid_from(path);
}

/* ---- FIFOs and pipes ---------------------------------------------------- */

START_TEST(test_fifo_without_writer_is_an_error)
{
    const char *fifo = in_tmp("creds.fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    setenv("AWS_SHARED_CREDENTIALS_FILE", fifo, 1);
    alarm(10); /* a blocking open or read would hang here: fail instead */
    dsql_error err = {0};
    ck_assert_int_eq(get_creds(NULL, NULL, &err), DSQL_EIO);
    alarm(0);
    ck_assert_msg(strstr(err.message, fifo) && strstr(err.message, "no writer"), "%s",
                  err.message);
}
END_TEST

/* A FIFO whose writer holds it open before we read and writes a moment
 * later: reading waits for the data (the writer exists). */
START_TEST(test_fifo_with_writer_parses)
{
    const char *fifo = in_tmp("creds.fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        /* O_RDWR opens a FIFO at once on Linux and counts as its writer */
        int fd = open(fifo, O_RDWR);
        if (fd < 0 || write(ready[1], "r", 1) != 1)
            _exit(1);
        sleep_ms(200);
        ssize_t n = write(fd, CREDS, strlen(CREDS));
        _exit(n == (ssize_t)strlen(CREDS) && close(fd) == 0 ? 0 : 1);
    }
    close(ready[1]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    expect_akid_from(fifo);
    reap(pid);
}
END_TEST

/* What `AWS_SHARED_CREDENTIALS_FILE=<(...)` hands us: /dev/fd/N naming a
 * pipe, its writer still running (and slow), or already finished. */
START_TEST(test_pipe_by_dev_fd_parses)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        close(p[0]);
        sleep_ms(200);
        ssize_t n = write(p[1], CREDS, strlen(CREDS));
        _exit(n == (ssize_t)strlen(CREDS) ? 0 : 1);
    }
    close(p[1]);
    expect_akid_from_fd(p[0]);
    close(p[0]);
    reap(pid);

    /* the writer already done: the data waits in the pipe */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], CREDS, strlen(CREDS)), (ssize_t)strlen(CREDS));
    close(p[1]);
    expect_akid_from_fd(p[0]);
    close(p[0]);
}
END_TEST

/* ---- special files ------------------------------------------------------- */

START_TEST(test_dev_null_is_an_empty_file)
{
    write_bytes("config", CREDS, strlen(CREDS));
    setenv("AWS_CONFIG_FILE", in_tmp("config"), 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    expect_akid(NULL, "AKIDFILE");
    setenv("AWS_CONFIG_FILE", "/dev/null", 1);
    dsql_error err = {0};
    ck_assert_int_eq(get_creds(NULL, NULL, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "`default` not found"), "%s", err.message);
}
END_TEST

START_TEST(test_dev_zero_is_refused_at_the_cap)
{
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/zero", 1);
    alarm(20); /* reading without a cap runs until memory is gone */
    dsql_error err = {0};
    ck_assert_int_eq(get_creds(NULL, NULL, &err), DSQL_ECONFIG);
    alarm(0);
    ck_assert_msg(strstr(err.message, "/dev/zero") && strstr(err.message, "16777216") &&
                      strstr(err.message, "16 MiB"),
                  "%s", err.message);
}
END_TEST

/* A file of exactly n bytes: a profile, then comment lines. */
static char *padded_file(size_t n)
{
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    size_t head = strlen(CREDS);
    memcpy(text, CREDS, head);
    memset(text + head, 'x', n - head);
    for (size_t i = head; i < n; i += 100) {
        text[i] = '#';
        text[i + 99 < n ? i + 99 : n - 1] = '\n';
    }
    return text;
}

START_TEST(test_over_cap_file_is_refused)
{
    size_t cap = DSQL__PROFILE_FILE_MAX;
    char *text = padded_file(cap + 1);
    const char *path = write_bytes("credentials", text, cap + 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    dsql_error err = {0};
    ck_assert_int_eq(get_creds(NULL, NULL, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, path) && strstr(err.message, "16777216"), "%s",
                  err.message);
    /* exactly at the cap is fine */
    free(text);
    text = padded_file(cap);
    write_bytes("credentials", text, cap);
    free(text);
    expect_akid(NULL, "AKIDFILE");
}
END_TEST

/* ---- NUL bytes ------------------------------------------------------------ */

START_TEST(test_nul_byte_is_an_error_naming_the_line)
{
    static const char text[] = "[default]\n# keys\naws_access_key_id = AKIA\0X\n"
                               "aws_secret_access_key = nulsecret\n";
    const char *path = write_bytes("credentials", text, sizeof text - 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    dsql_error err = {0};
    ck_assert_int_eq(get_creds(NULL, NULL, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, path) && strstr(err.message, "line 3") &&
                      strstr(err.message, "NUL"),
                  "%s", err.message);
    ck_assert(!strstr(err.message, "nulsecret"));
    /* in a comment too: the file is not text */
    static const char comment[] = "[default]\n# a \0 here\n";
    write_bytes("credentials", comment, sizeof comment - 1);
    ck_assert_int_eq(get_creds(NULL, NULL, &err), DSQL_ECONFIG);
    ck_assert_msg(strstr(err.message, "line 2"), "%s", err.message);
}
END_TEST

/* ---- size: correct with many profiles, keys, continuation lines ------------ */

/* appends printf output to a growing heap string */
typedef struct text_buf {
    char *s;
    size_t n, cap;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        ck_assert(k >= 0);
        if (b->s && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
        ck_assert_ptr_nonnull(b->s);
    }
}

START_TEST(test_100k_profiles_resolve)
{
    text_buf b = {0};
    for (int i = 0; i < 100000; i++)
        tb_printf(&b, "[profile p%d]\nregion = us-east-1\naws_access_key_id = AKID%d\n"
                      "aws_secret_access_key = secret%d\n",
                  i, i, i);
    write_bytes("config", b.s, b.n);
    setenv("AWS_CONFIG_FILE", in_tmp("config"), 1);
    expect_akid("p0", "AKID0");
    expect_akid("p54321", "AKID54321");
    expect_akid("p99999", "AKID99999");
    dsql_error err = {0};
    ck_assert_int_eq(get_creds("p100000", NULL, &err), DSQL_ECONFIG);
    free(b.s);
}
END_TEST

START_TEST(test_big_section_and_long_continuation)
{
    text_buf b = {0};
    tb_printf(&b, "[profile big]\n");
    for (int i = 0; i < 5000; i++)
        tb_printf(&b, "Key%d = first%d\n", i, i);
    for (int i = 0; i < 5000; i += 7) /* case-insensitive keys, last one wins */
        tb_printf(&b, "KEY%d = second%d\n", i, i);
    tb_printf(&b, "long =\n");
    for (int i = 0; i < 20000; i++)
        tb_printf(&b, "  sub%d = %d\n", i, i);
    dsql__profiles set = {0};
    dsql_error err = {0};
    ck_assert_msg(dsql__profiles_parse(&set, b.s, b.n, DSQL__FILE_CONFIG, "big", &err) == DSQL_OK,
                  "%s", err.message);
    const dsql__section *s = dsql__profiles_find(&set, DSQL__SECTION_PROFILE, "big");
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n, 5001);
    for (int i = 0; i < 5000; i++) {
        char key[32], want[32];
        snprintf(key, sizeof key, "key%d", i);
        snprintf(want, sizeof want, i % 7 ? "first%d" : "second%d", i);
        const char *v = dsql__section_get(s, key);
        ck_assert_msg(v && strcmp(v, want) == 0, "%s = %s, want %s", key, v ? v : "(absent)",
                      want);
    }
    const char *v = dsql__section_get(s, "long");
    ck_assert_ptr_nonnull(v);
    ck_assert(strncmp(v, "\nsub0 = 0\nsub1 = 1\n", 19) == 0);
    const char *tail = "\nsub19999 = 19999";
    ck_assert_str_eq(v + strlen(v) - strlen(tail), tail);
    size_t lines = 0;
    for (const char *c = v; *c; c++)
        lines += *c == '\n';
    ck_assert_uint_eq(lines, 20000);
    dsql__profiles_free(&set);
    free(b.s);
}
END_TEST

static Suite *profile_files_suite(void)
{
    Suite *s = suite_create("profile_files");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fifo_without_writer_is_an_error);
    tcase_add_test(tc, test_fifo_with_writer_parses);
    tcase_add_test(tc, test_pipe_by_dev_fd_parses);
    tcase_add_test(tc, test_dev_null_is_an_empty_file);
    tcase_add_test(tc, test_dev_zero_is_refused_at_the_cap);
    tcase_add_test(tc, test_over_cap_file_is_refused);
    tcase_add_test(tc, test_nul_byte_is_an_error_naming_the_line);
    tcase_add_test(tc, test_100k_profiles_resolve);
    tcase_add_test(tc, test_big_section_and_long_continuation);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(profile_files_suite)
