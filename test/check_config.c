/* Configuration: every input form, precedence, resolution, bad input with
 * specific errors, allocation failures. */
#include "testutil.h"
#include "internal.h"

#define EP "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

static dsql_config *cfg;
static dsql_error err;

static void setup(void)
{
    cfg = dsql_config_new(&err);
    ck_assert_ptr_nonnull(cfg);
}

static void teardown(void) { dsql_config_free(cfg); }

static dsql_config_host host_at(size_t i)
{
    dsql_config_host h;
    ck_assert_int_eq(dsql_config_host_at(cfg, i, &h, &err), DSQL_OK);
    return h;
}

static void resolve_ok(void)
{
    dsql_status st = dsql_config_resolve(cfg, &err);
    ck_assert_msg(st == DSQL_OK, "resolve: %s", err.message);
}

/* resolve (or parse) fails with status and a message containing frag */
#define ASSERT_FAILS(expr, status, frag)                                                 \
    do {                                                                                 \
        dsql_status st_ = (expr);                                                        \
        ck_assert_msg(st_ == (status), "got %s (%s)", dsql_status_name(st_), err.message); \
        ck_assert_msg(strstr(err.message, (frag)) != NULL, "message '%s' lacks '%s'",    \
                      err.message, (frag));                                              \
    } while (0)

START_TEST(endpoint_defaults)
{
    ck_assert_int_eq(dsql_config_parse(cfg, EP, &err), DSQL_OK);
    resolve_ok();
    ck_assert_uint_eq(dsql_config_host_count(cfg), 1);
    dsql_config_host h = host_at(0);
    ck_assert_str_eq(h.host, EP);
    ck_assert_str_eq(h.signing_host, EP);
    ck_assert_str_eq(h.region, "us-east-1");
    ck_assert_ptr_null(h.hostaddr);
    ck_assert_uint_eq(h.port, 5432);
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "admin");
    ck_assert_str_eq(dsql_config_get(cfg, "dbname"), "postgres");
    ck_assert_str_eq(dsql_config_get(cfg, "token_duration_secs"), "900");
    ck_assert_str_eq(dsql_config_get(cfg, "region"), "us-east-1");
    ck_assert_uint_eq(dsql_config_param_count(cfg), 0);
}
END_TEST

START_TEST(endpoint_https_and_suffix)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "https://x.dsql-gamma.EU-West-2.on.aws/", &err),
                     DSQL_OK);
    resolve_ok();
    dsql_config_host h = host_at(0);
    ck_assert_str_eq(h.host, "x.dsql-gamma.EU-West-2.on.aws");
    ck_assert_str_eq(h.region, "eu-west-2");
}
END_TEST

START_TEST(endpoint_with_port)
{
    ck_assert_int_eq(dsql_config_parse(cfg, EP ":6000", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(host_at(0).host, EP);
    ck_assert_uint_eq(host_at(0).port, 6000);
    ASSERT_FAILS(dsql_config_parse(cfg, EP ":x1", &err), DSQL_EINVAL, "is not a number");
    ASSERT_FAILS(dsql_config_parse(cfg, EP ":", &err), DSQL_EINVAL, "is not a number");
}
END_TEST

START_TEST(cluster_id_and_region)
{
    ck_assert_int_eq(dsql_config_set(cfg, "cluster_id", "abcdefghijklmnopqrstuvwxyz", &err),
                     DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "region", "eu-north-1", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(host_at(0).host, "abcdefghijklmnopqrstuvwxyz.dsql.eu-north-1.on.aws");
    ck_assert_str_eq(host_at(0).region, "eu-north-1");
}
END_TEST

START_TEST(cluster_id_detected)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "abcdefghijklmnopqrstuvwxyz", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "needs a region");
    ck_assert_int_eq(dsql_config_set(cfg, "region", "us-west-2", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(host_at(0).host, "abcdefghijklmnopqrstuvwxyz.dsql.us-west-2.on.aws");
}
END_TEST

START_TEST(cluster_id_bad)
{
    /* checked when set, before anything is resolved */
    ASSERT_FAILS(dsql_config_set(cfg, "cluster_id", "ABC", &err), DSQL_EINVAL,
                 "cluster_id 'ABC' is invalid");
    ASSERT_FAILS(dsql_config_set(cfg, "cluster_id", "a.b", &err), DSQL_EINVAL, "cluster_id");
    ASSERT_FAILS(dsql_config_set(cfg, "region", "US EAST", &err), DSQL_EINVAL,
                 "region 'US EAST' is invalid");
    ck_assert_ptr_null(dsql_config_get(cfg, "cluster_id")); /* nothing was stored */
    ck_assert_ptr_null(dsql_config_get(cfg, "region"));
}
END_TEST

START_TEST(uri_full)
{
    ck_assert_int_eq(
        dsql_config_parse(cfg,
                          "postgresql://app%40x@" EP ":6543/my%20db?region=eu-west-1&profile=dev"
                          "&token_duration_secs=60&connect_timeout=5&options=-c%20x%3D1",
                          &err),
        DSQL_OK);
    resolve_ok();
    dsql_config_host h = host_at(0);
    ck_assert_str_eq(h.host, EP);
    ck_assert_uint_eq(h.port, 6543);
    ck_assert_str_eq(h.region, "us-east-1"); /* the hostname's region wins */
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "app@x");
    ck_assert_str_eq(dsql_config_get(cfg, "dbname"), "my db");
    ck_assert_str_eq(dsql_config_get(cfg, "token_duration_secs"), "60");
    ck_assert_str_eq(dsql_config_get(cfg, "profile"), "dev");
    ck_assert_uint_eq(dsql_config_param_count(cfg), 2);
    const char *k, *v;
    ck_assert_int_eq(dsql_config_param_at(cfg, 0, &k, &v), DSQL_OK);
    ck_assert_str_eq(k, "connect_timeout");
    ck_assert_str_eq(v, "5");
    ck_assert_int_eq(dsql_config_param_at(cfg, 1, &k, &v), DSQL_OK);
    ck_assert_str_eq(k, "options");
    ck_assert_str_eq(v, "-c x=1");
    ck_assert_int_eq(dsql_config_param_at(cfg, 2, &k, &v), DSQL_EINVAL);
}
END_TEST

START_TEST(uri_postgres_scheme_user_param)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "postgres://" EP "?user=reader&sslmode=verify-ca"
                                       "&allow_insecure_tls=1", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "reader");
    ck_assert_str_eq(dsql_config_get(cfg, "sslmode"), "verify-ca");
}
END_TEST

START_TEST(uri_multi_host)
{
    ck_assert_int_eq(dsql_config_parse(cfg,
                                       "postgresql://a.dsql.us-east-1.on.aws:5433,"
                                       "b.dsql.us-east-2.on.aws/postgres?load_balance_hosts=random",
                                       &err),
                     DSQL_OK);
    resolve_ok();
    ck_assert_uint_eq(dsql_config_host_count(cfg), 2);
    ck_assert_str_eq(host_at(0).host, "a.dsql.us-east-1.on.aws");
    ck_assert_uint_eq(host_at(0).port, 5433);
    ck_assert_str_eq(host_at(0).region, "us-east-1");
    ck_assert_str_eq(host_at(1).host, "b.dsql.us-east-2.on.aws");
    ck_assert_uint_eq(host_at(1).port, 5432);
    ck_assert_str_eq(host_at(1).region, "us-east-2");
    ck_assert_str_eq(dsql_config_get(cfg, "load_balance_hosts"), "random");
}
END_TEST

START_TEST(uri_ipv6_hostaddr_signing)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "postgresql://[::1]:7000/?signing_host=" EP, &err),
                     DSQL_OK);
    resolve_ok();
    dsql_config_host h = host_at(0);
    ck_assert_str_eq(h.host, "::1");
    ck_assert_uint_eq(h.port, 7000);
    ck_assert_str_eq(h.signing_host, EP);
    ck_assert_str_eq(h.region, "us-east-1");
}
END_TEST

START_TEST(uri_ipv6_without_signing_host)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "postgresql://[2001:db8::5]/?region=us-east-1", &err),
                     DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "is an IPv6 address");
}
END_TEST

START_TEST(uri_bad)
{
    static const struct {
        const char *uri;
        const char *frag;
        dsql_status st;
    } cases[] = {
        {"postgresql://u:secret@" EP, "contains a password", DSQL_ECONFIG},
        {"postgresql://" EP "?password=x", "a password is given", DSQL_ECONFIG},
        {"postgresql://[::1/", "without a matching ']'", DSQL_EINVAL},
        {"postgresql://[]/", "empty IPv6", DSQL_EINVAL},
        {"postgresql://[zz]/", "is not an IPv6 address", DSQL_EINVAL},
        {"postgresql://[::1]x/", "after IPv6 address", DSQL_EINVAL},
        {"postgresql://h:abc/", "port \"abc\" is not a number", DSQL_EINVAL},
        {"postgresql://h:/", "without a port number", DSQL_EINVAL},
        {"postgresql://h/d%zz", "invalid percent-encoding", DSQL_EINVAL},
        {"postgresql://h/d%4", "invalid percent-encoding", DSQL_EINVAL},
        {"postgresql://h/d%00", "%00", DSQL_EINVAL},
        {"postgresql://h/?region", "has no '='", DSQL_EINVAL},
        {"postgresql://h/?a=b=c", "more than one '='", DSQL_EINVAL},
        {"postgresql://h/?bad-key=1", "key 'bad-key' is invalid", DSQL_EINVAL},
        {"mysql://h/", "must start with postgresql://", DSQL_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsql_config *c = dsql_config_new(NULL);
        dsql_status st = dsql__config_parse_uri(c, cases[i].uri, &err);
        ck_assert_msg(st == cases[i].st, "%s: got %s (%s)", cases[i].uri, dsql_status_name(st),
                      err.message);
        ck_assert_msg(strstr(err.message, cases[i].frag), "%s: '%s' lacks '%s'", cases[i].uri,
                      err.message, cases[i].frag);
        ck_assert_uint_eq(c ? dsql_config_host_count(c) : 0, 0);
        ck_assert_ptr_null(dsql_config_get(c, "host")); /* a bad URI changes nothing */
        dsql_config_free(c);
    }
}
END_TEST

START_TEST(uri_no_host_port_only)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "postgresql://:5433/db", &err), DSQL_OK);
    ck_assert_ptr_null(dsql_config_get(cfg, "host"));
    ck_assert_str_eq(dsql_config_get(cfg, "port"), "5433");
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "no host");
}
END_TEST

START_TEST(conninfo_quoting)
{
    ck_assert_int_eq(
        dsql_config_parse(cfg,
                          "  host = " EP " user='o\\'brien' dbname=a\\ b "
                          "options='-c search_path=x\\\\y' application_name=''  port=5433 ",
                          &err),
        DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "o'brien");
    ck_assert_str_eq(dsql_config_get(cfg, "dbname"), "a b");
    ck_assert_str_eq(dsql_config_get(cfg, "options"), "-c search_path=x\\y");
    ck_assert_str_eq(dsql_config_get(cfg, "application_name"), "");
    ck_assert_uint_eq(host_at(0).port, 5433);
}
END_TEST

START_TEST(conninfo_bad)
{
    ASSERT_FAILS(dsql__config_parse_conninfo(cfg, "host", &err), DSQL_EINVAL,
                 "missing \"=\" after \"host\"");
    ASSERT_FAILS(dsql__config_parse_conninfo(cfg, "host=a user='x", &err), DSQL_EINVAL,
                 "unterminated quoted string");
    ASSERT_FAILS(dsql__config_parse_conninfo(cfg, " =x", &err), DSQL_EINVAL, "without a key");
    ASSERT_FAILS(dsql__config_parse_conninfo(cfg, "host=a password=p", &err), DSQL_ECONFIG,
                 "password");
    ASSERT_FAILS(dsql__config_parse_conninfo(cfg, "ho$t=a", &err), DSQL_EINVAL, "is invalid");
    ck_assert_ptr_null(dsql_config_get(cfg, "host")); /* nothing half-applied */
}
END_TEST

START_TEST(conninfo_uri_passthrough)
{
    ck_assert_int_eq(dsql__config_parse_conninfo(cfg, "postgresql://" EP "/x", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "dbname"), "x");
}
END_TEST

START_TEST(non_dsql_host_needs_region)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "host=localhost", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG,
                 "host 'localhost' is not an Aurora DSQL endpoint");
    ck_assert(strstr(err.message, "set region"));
    ck_assert_int_eq(dsql_config_set(cfg, "region", "us-east-1", &err), DSQL_OK);
    resolve_ok();
    dsql_config_host h = host_at(0);
    ck_assert_str_eq(h.host, "localhost"); /* never rewritten */
    ck_assert_str_eq(h.signing_host, "localhost");
    ck_assert_str_eq(h.region, "us-east-1");
}
END_TEST

START_TEST(ip_and_custom_dns_never_rewritten)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "db.example.com", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "db.example.com");
    dsql_config_free(cfg);
    cfg = dsql_config_new(NULL);
    ck_assert_int_eq(dsql_config_parse(cfg, "host=10.0.0.7 region=ap-south-1", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(host_at(0).host, "10.0.0.7");
    ck_assert_str_eq(host_at(0).region, "ap-south-1");
}
END_TEST

START_TEST(hostaddr_signing_host_override)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "host=" EP " hostaddr=127.0.0.1 port=15432", &err),
                     DSQL_OK);
    resolve_ok();
    dsql_config_host h = host_at(0);
    ck_assert_str_eq(h.host, EP);
    ck_assert_str_eq(h.hostaddr, "127.0.0.1");
    ck_assert_str_eq(h.signing_host, EP);
    ck_assert_uint_eq(h.port, 15432);
}
END_TEST

START_TEST(tunnel_signing_host)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "host=localhost port=6000", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "signing_host", EP, &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(host_at(0).host, "localhost");
    ck_assert_str_eq(host_at(0).signing_host, EP);
    ck_assert_str_eq(host_at(0).region, "us-east-1");
}
END_TEST

START_TEST(unix_socket_needs_signing_host)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "host=/tmp region=us-east-1", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "Unix-domain socket");
}
END_TEST

START_TEST(explicit_wins_any_order)
{
    ck_assert_int_eq(dsql_config_set(cfg, "user", "forced", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "port", "7777", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_parse(cfg, "postgresql://parsed@" EP ":1234/db", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "forced");
    ck_assert_uint_eq(host_at(0).port, 7777);
    ck_assert_str_eq(dsql_config_get(cfg, "dbname"), "db");
    /* removing the explicit value does not bring the parsed one back */
    ck_assert_int_eq(dsql_config_set(cfg, "user", NULL, &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "admin");
    /* a later parse replaces an earlier parse */
    ck_assert_int_eq(dsql_config_parse(cfg, "dbname=other", &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "dbname"), "other");
}
END_TEST

START_TEST(explicit_host_beats_parsed_cluster_id)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "abcdefghijklmnopqrstuvwxyz", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "host", EP, &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(host_at(0).host, EP);
    ck_assert_int_eq(dsql_config_set(cfg, "host", NULL, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_parse(cfg, "host=" EP, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "region", "us-east-1", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "both host and cluster_id");
}
END_TEST

START_TEST(env_is_weakest_and_opt_in)
{
    setenv("PGHOST", EP, 1);
    setenv("PGUSER", "envuser", 1);
    setenv("PGPORT", "9999", 1);
    setenv("AWS_REGION", "eu-west-3", 1);
    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    ck_assert_ptr_null(dsql_config_get(cfg, "host"));
    ck_assert_int_eq(dsql_config_parse(cfg, "user=parsed", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_load_env(cfg, &err), DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "user"), "parsed");
    ck_assert_str_eq(host_at(0).host, EP);
    ck_assert_uint_eq(host_at(0).port, 9999);
    ck_assert_str_eq(dsql_config_get(cfg, "region"), "eu-west-3");
    unsetenv("PGHOST");
    unsetenv("PGUSER");
    unsetenv("PGPORT");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
}
END_TEST

START_TEST(list_mismatch)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "host=a.dsql.us-east-1.on.aws,b.dsql.us-east-1.on.aws "
                                            "hostaddr=127.0.0.1", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "hostaddr lists 1 addresses for 2");
    ck_assert_int_eq(dsql_config_parse(cfg, "hostaddr=1.1.1.1,2.2.2.2 port=1,2,3", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "port lists 3 ports for 2");
    ck_assert_int_eq(dsql_config_parse(cfg, "port=1,", &err), DSQL_OK);
    resolve_ok(); /* an empty port means the default */
    ck_assert_uint_eq(host_at(0).port, 1);
    ck_assert_uint_eq(host_at(1).port, 5432);
    ck_assert_int_eq(dsql_config_parse(cfg, "host=a.dsql.us-east-1.on.aws,", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "empty entry");
}
END_TEST

START_TEST(bad_values)
{
    ck_assert_int_eq(dsql_config_parse(cfg, EP, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_parse(cfg, "token_duration_secs=0", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "token_duration_secs \"0\"");
    ck_assert_int_eq(dsql_config_parse(cfg, "token_duration_secs=604801", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "1..604800");
    ck_assert_int_eq(dsql_config_parse(cfg, "token_duration_secs=604800 port=70000", &err),
                     DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "port \"70000\"");
    ck_assert_int_eq(dsql_config_parse(cfg, "port=5432 region=Us_East", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "region 'Us_East' is invalid");
    ck_assert_int_eq(dsql_config_parse(cfg, "region=us-east-1 connect_retries=99", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "connect_retries");
    ck_assert_int_eq(dsql_config_parse(cfg, "connect_retries=2 host=bad..host", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "host 'bad..host': hostname has an "
                                                               "empty label");
    ASSERT_FAILS(dsql_config_set(cfg, "token_duration_secs", "0", &err), DSQL_EINVAL,
                 "token_duration_secs \"0\" is not a number in 1..604800");
    ASSERT_FAILS(dsql_config_set(cfg, "token_duration_secs", "604801", &err), DSQL_EINVAL,
                 "token_duration_secs");
    ASSERT_FAILS(dsql_config_set(cfg, "token_duration_secs", "+60", &err), DSQL_EINVAL,
                 "token_duration_secs");
    ASSERT_FAILS(dsql_config_set(cfg, "user", "", &err), DSQL_EINVAL, "user is empty");
    ASSERT_FAILS(dsql_config_set(cfg, "host", "", &err), DSQL_EINVAL, "host is empty");
    ASSERT_FAILS(dsql_config_parse(cfg, "", &err), DSQL_EINVAL, "empty");
    ASSERT_FAILS(dsql_config_parse(cfg, "some thing/else", &err), DSQL_EINVAL,
                 "neither a host name");
    ASSERT_FAILS(dsql_config_set(cfg, "password", "x", &err), DSQL_ECONFIG, "password");
    ck_assert_int_eq(dsql_config_host_at(cfg, 0, &(dsql_config_host){0}, &err), DSQL_EINVAL);
}
END_TEST

START_TEST(dup_copies_everything)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "postgresql://u@" EP "/d?sslmode=verify-full", &err),
                     DSQL_OK);
    resolve_ok();
    dsql_config *c = dsql_config_dup(cfg, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(dsql_config_host_count(c), 1);
    ck_assert_str_eq(dsql_config_get(c, "user"), "u");
    ck_assert_str_eq(dsql_config_get(c, "sslmode"), "verify-full");
    dsql_config_free(c);
}
END_TEST

/* Allocation failure: fail the n-th allocation for growing n; every call
 * must fail cleanly (status ENOMEM) or succeed. */
static int fail_at, alloc_count;
static void *failing_malloc(size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return malloc(n);
}
static void *failing_realloc(void *p, size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return realloc(p, n);
}

START_TEST(allocation_failures)
{
    int succeeded = 0;
    for (fail_at = 1; fail_at < 400 && !succeeded; fail_at++) {
        alloc_count = 0;
        dsql_set_allocator(failing_malloc, failing_realloc, free);
        dsql_error e;
        dsql_config *c = dsql_config_new(&e);
        dsql_status st = c ? DSQL_OK : DSQL_ENOMEM;
        if (st == DSQL_OK)
            st = dsql_config_parse(c, "postgresql://u@a.dsql.us-east-1.on.aws:1,"
                                      "b.dsql.us-east-2.on.aws/d?options=x&sslmode=require"
                                      "&allow_insecure_tls=1", &e);
        if (st == DSQL_OK)
            st = dsql_config_parse(c, "application_name='x y' connect_timeout=3 hostaddr=1.1.1.1,"
                                      "2.2.2.2", &e);
        if (st == DSQL_OK)
            st = dsql_config_resolve(c, &e);
        dsql_config *d = NULL;
        if (st == DSQL_OK) {
            d = dsql_config_dup(c, &e);
            st = d ? DSQL_OK : e.status;
        }
        dsql_set_allocator(NULL, NULL, NULL);
        ck_assert_msg(st == DSQL_OK || st == DSQL_ENOMEM, "fail_at %d: %s %s", fail_at,
                      dsql_status_name(st), e.message);
        if (st == DSQL_OK) {
            succeeded = 1;
            ck_assert_uint_eq(dsql_config_host_count(d), 2);
        }
        dsql_config_free(d);
        dsql_config_free(c);
    }
    ck_assert(succeeded);
}
END_TEST

/* ---- TLS: nothing weaker than verify-full without an explicit opt-in ---- */

static const char *const WEAK_MODES[] = {"disable", "allow", "prefer", "require", "verify-ca",
                                         NULL};

static char logged[2048];
static int logged_warnings;
static void capture_log(dsql_log_level level, const char *msg, void *ud)
{
    (void)ud;
    if (level != DSQL_LOG_WARN)
        return;
    logged_warnings++;
    snprintf(logged, sizeof logged, "%s", msg);
}

/* resolve refuses, naming the sslmode, where it came from and the opt-in */
static void assert_refused(const char *mode, const char *from)
{
    char want[64];
    snprintf(want, sizeof want, "sslmode=%s", mode);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, want);
    ck_assert_msg(strstr(err.message, from), "'%s' lacks '%s'", err.message, from);
    ck_assert_msg(strstr(err.message, "allow_insecure_tls=1"), "%s", err.message);
    ck_assert_uint_eq(dsql_config_host_count(cfg), 0);
}

START_TEST(weak_sslmode_refused_in_conninfo)
{
    const char *mode = WEAK_MODES[_i];
    char ci[200];
    snprintf(ci, sizeof ci, "host=" EP " sslmode=%s", mode);
    ck_assert_int_eq(dsql_config_parse(cfg, ci, &err), DSQL_OK);
    assert_refused(mode, "(from the connection string)");
}
END_TEST

START_TEST(weak_sslmode_refused_in_uri)
{
    const char *mode = WEAK_MODES[_i];
    char uri[200];
    snprintf(uri, sizeof uri, "postgresql://" EP "/postgres?sslmode=%s", mode);
    ck_assert_int_eq(dsql_config_parse(cfg, uri, &err), DSQL_OK);
    assert_refused(mode, "(from the connection string)");
}
END_TEST

START_TEST(weak_sslmode_refused_from_pgsslmode)
{
    const char *mode = WEAK_MODES[_i];
    setenv("PGSSLMODE", mode, 1);
    ck_assert_int_eq(dsql_config_parse(cfg, EP, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_load_env(cfg, &err), DSQL_OK);
    unsetenv("PGSSLMODE");
    assert_refused(mode, "(from the environment, PGSSLMODE)");
}
END_TEST

START_TEST(weak_sslmode_refused_when_set_explicitly)
{
    const char *mode = WEAK_MODES[_i];
    ck_assert_int_eq(dsql_config_parse(cfg, EP, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "sslmode", mode, &err), DSQL_OK);
    assert_refused(mode, "weaker than verify-full");
}
END_TEST

START_TEST(insecure_tls_opt_in_warns)
{
    /* the opt-in in each form: conninfo key, URI parameter, explicit key */
    static const char *const inputs[] = {
        "host=" EP " sslmode=prefer allow_insecure_tls=1",
        "postgresql://" EP "/postgres?sslmode=prefer&allow_insecure_tls=1", NULL};
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    for (size_t i = 0; inputs[i]; i++) {
        dsql_config *c = dsql_config_new(&err);
        logged_warnings = 0;
        ck_assert_int_eq(dsql_config_parse(c, inputs[i], &err), DSQL_OK);
        ck_assert_msg(dsql_config_resolve(c, &err) == DSQL_OK, "%s: %s", inputs[i], err.message);
        ck_assert_str_eq(dsql_config_get(c, "sslmode"), "prefer");
        ck_assert_int_eq(logged_warnings, 1);
        ck_assert_msg(strstr(logged, "sslmode=prefer") && strstr(logged, "allow_insecure_tls=1"),
                      "warning: %s", logged);
        ck_assert_uint_eq(dsql_config_param_count(c), 1); /* sslmode; the opt-in stays ours */
        dsql_config_free(c);
    }
    ck_assert_int_eq(dsql_config_parse(cfg, EP, &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "sslmode", "require", &err), DSQL_OK);
    ck_assert_int_eq(dsql_config_set(cfg, "allow_insecure_tls", "1", &err), DSQL_OK);
    logged_warnings = 0;
    resolve_ok();
    ck_assert_int_eq(logged_warnings, 1);
    ck_assert_msg(strstr(logged, "sslmode=require"), "warning: %s", logged);
    /* allow_insecure_tls=0 is the default: refused again, no warning */
    ck_assert_int_eq(dsql_config_set(cfg, "allow_insecure_tls", "0", &err), DSQL_OK);
    logged_warnings = 0;
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "sslmode=require");
    ck_assert_int_eq(logged_warnings, 0);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
}
END_TEST

START_TEST(verify_full_needs_no_opt_in)
{
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    logged_warnings = 0;
    ck_assert_int_eq(dsql_config_parse(cfg, "host=" EP " sslmode=verify-full", &err), DSQL_OK);
    resolve_ok();
    ck_assert_int_eq(logged_warnings, 0);
    dsql_set_log_handler(NULL, DSQL_LOG_WARN, NULL);
}
END_TEST

START_TEST(tls_bad_values)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "host=" EP " sslmode=verify-fool", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG,
                 "sslmode \"verify-fool\" is not one of");
    ck_assert_int_eq(dsql_config_parse(cfg, "sslmode=verify-full allow_insecure_tls=yes", &err),
                     DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG,
                 "allow_insecure_tls \"yes\" is not 0 or 1");
}
END_TEST

START_TEST(host_with_port_or_scheme_named_as_such)
{
    /* not "an IPv6 address" (issue 13, item 12) */
    ck_assert_int_eq(dsql_config_set(cfg, "host", EP ":5432", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG,
                 "host '" EP ":5432' contains a port: give the host alone and the port "
                 "separately (port=5432)");
    ck_assert_int_eq(dsql_config_set(cfg, "host", "https://" EP, &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG,
                 "host 'https://" EP "' is a URL: give the host name alone");
    ck_assert_int_eq(dsql_config_set(cfg, "host", "fd00::1", &err), DSQL_OK);
    ASSERT_FAILS(dsql_config_resolve(cfg, &err), DSQL_ECONFIG, "is an IPv6 address");
}
END_TEST

START_TEST(jdbc_ssl_true_is_verify_full)
{
    ck_assert_int_eq(dsql_config_parse(cfg, "postgresql://" EP "/postgres?ssl=true", &err),
                     DSQL_OK);
    resolve_ok();
    ck_assert_str_eq(dsql_config_get(cfg, "sslmode"), "verify-full");
    ASSERT_FAILS(dsql_config_parse(cfg, "postgresql://" EP "/postgres?ssl=false", &err),
                 DSQL_EINVAL, "ssl=false is not understood");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *t = tcase_create("forms");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, endpoint_defaults);
    tcase_add_test(t, endpoint_https_and_suffix);
    tcase_add_test(t, endpoint_with_port);
    tcase_add_test(t, cluster_id_and_region);
    tcase_add_test(t, cluster_id_detected);
    tcase_add_test(t, cluster_id_bad);
    tcase_add_test(t, uri_full);
    tcase_add_test(t, uri_postgres_scheme_user_param);
    tcase_add_test(t, uri_multi_host);
    tcase_add_test(t, uri_ipv6_hostaddr_signing);
    tcase_add_test(t, uri_ipv6_without_signing_host);
    tcase_add_test(t, uri_bad);
    tcase_add_test(t, uri_no_host_port_only);
    tcase_add_test(t, conninfo_quoting);
    tcase_add_test(t, conninfo_bad);
    tcase_add_test(t, conninfo_uri_passthrough);
    tcase_add_test(t, non_dsql_host_needs_region);
    tcase_add_test(t, ip_and_custom_dns_never_rewritten);
    tcase_add_test(t, hostaddr_signing_host_override);
    tcase_add_test(t, tunnel_signing_host);
    tcase_add_test(t, unix_socket_needs_signing_host);
    tcase_add_test(t, explicit_wins_any_order);
    tcase_add_test(t, explicit_host_beats_parsed_cluster_id);
    tcase_add_test(t, env_is_weakest_and_opt_in);
    tcase_add_test(t, list_mismatch);
    tcase_add_test(t, bad_values);
    tcase_add_test(t, dup_copies_everything);
    tcase_add_test(t, allocation_failures);
    tcase_add_loop_test(t, weak_sslmode_refused_in_conninfo, 0, 5);
    tcase_add_loop_test(t, weak_sslmode_refused_in_uri, 0, 5);
    tcase_add_loop_test(t, weak_sslmode_refused_from_pgsslmode, 0, 5);
    tcase_add_loop_test(t, weak_sslmode_refused_when_set_explicitly, 0, 5);
    tcase_add_test(t, insecure_tls_opt_in_warns);
    tcase_add_test(t, verify_full_needs_no_opt_in);
    tcase_add_test(t, tls_bad_values);
    tcase_add_test(t, jdbc_ssl_true_is_verify_full);
    tcase_add_test(t, host_with_port_or_scheme_named_as_such);
    suite_add_tcase(s, t);
    return s;
}

TEST_MAIN(config_suite)
