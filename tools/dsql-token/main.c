/* dsql-token: print an Aurora DSQL IAM token, or run a program with it in
 * PGPASSWORD (psql, pg_dump, any libpq program).
 * Exit status: 0 ok, 1 failure, 2 bad usage; the child's status for exec. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "dsqlauth.h"
#include "internal.h" /* dsql__utc_parse_iso8601 */

#define EXIT_USAGE 2

typedef struct options {
    const char *hostname;
    const char *region;
    const char *user;
    const char *profile;
    uint32_t expires_in;
    int64_t time;
    int verbose;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dsql-token --hostname HOST [options]\n"
            "       dsql-token exec --hostname HOST [options] -- PROGRAM [ARGS...]\n"
            "\n"
            "Prints an Aurora DSQL IAM authentication token, or runs PROGRAM with it\n"
            "in PGPASSWORD (and PGHOST, PGUSER, PGDATABASE, PGSSLMODE=verify-full,\n"
            "PGSSLROOTCERT where not already set).\n"
            "\n"
            "  --hostname HOST     cluster endpoint the token is signed for\n"
            "  --region REGION     signing region (default: from the hostname)\n"
            "  --user USER         database user (default admin; admin signs\n"
            "                      DbConnectAdmin, any other user DbConnect)\n"
            "  --expires-in SECS   token lifetime, 1..604800 (default 900)\n"
            "  --time TIME         sign as of YYYY-MM-DDTHH:MM:SSZ (reproducible tokens)\n"
            "  --verbose           log what the library does to stderr (never secrets)\n"
            "  --help, --version\n"
            "\n"
            "Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.\n");
}

static void log_to_stderr(dsql_log_level level, const char *msg, void *ud)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    (void)ud;
    fprintf(stderr, "dsql-token: %s: %s\n", names[level], msg);
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"hostname", required_argument, NULL, 'h'}, {"region", required_argument, NULL, 'r'},
        {"user", required_argument, NULL, 'u'},     {"expires-in", required_argument, NULL, 'e'},
        {"time", required_argument, NULL, 't'},     {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'H'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': o->hostname = optarg; break;
        case 'r': o->region = optarg; break;
        case 'u': o->user = optarg; break;
        case 'v': o->verbose = 1; break;
        case 'e': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-' || v < 1 || v > DSQL_TOKEN_MAX_EXPIRES) {
                fprintf(stderr, "dsql-token: --expires-in '%s' is not a number of seconds in "
                                "1..%u\n", optarg, DSQL_TOKEN_MAX_EXPIRES);
                return EXIT_USAGE;
            }
            o->expires_in = (uint32_t)v;
            break;
        }
        case 't':
            if (!dsql__utc_parse_iso8601(optarg, &o->time) || o->time <= 0) {
                fprintf(stderr, "dsql-token: --time '%s' is not YYYY-MM-DDTHH:MM:SSZ\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'H': usage(stdout); exit(0);
        case 'V': printf("dsql-token %s\n", dsql_version()); exit(0);
        case ':':
            fprintf(stderr, "dsql-token: %s needs a value\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "dsql-token: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (!o->hostname) {
        fprintf(stderr, "dsql-token: --hostname is required (see --help)\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* Fills token (heap, caller wipes) or prints the error; returns exit status. */
static int make_token(const options *o, char **token)
{
    dsql_error err;
    dsql_credentials_provider *cp = dsql_credentials_provider_env(&err);
    dsql_credentials creds;
    if (!cp || dsql_credentials_provider_get(cp, &creds, &err) != DSQL_OK) {
        fprintf(stderr, "dsql-token: %s\n", err.message);
        dsql_credentials_provider_free(cp);
        return 1;
    }
    dsql_credentials_provider_free(cp);
    dsql_token_params p = {DSQL_STRUCT_VERSION, o->hostname, o->region, o->user,
                           o->expires_in, o->time};
    size_t len = 0;
    dsql_status st = dsql_token_generate(&p, &creds, NULL, 0, &len, &err);
    if (st == DSQL_EBUFSIZE) {
        *token = malloc(len + 1);
        st = *token ? dsql_token_generate(&p, &creds, *token, len + 1, &len, &err)
                    : dsql__error(&err, DSQL_ENOMEM, "out of memory");
    }
    dsql_credentials_clear(&creds);
    if (st != DSQL_OK) {
        fprintf(stderr, "dsql-token: %s\n", err.message);
        free(*token);
        *token = NULL;
        return 1;
    }
    return 0;
}

static void set_default(const char *name, const char *value)
{
    const char *cur = getenv(name);
    if (!cur || !*cur)
        setenv(name, value, 1);
}

static int run_exec(const options *o, char **argv, const char *token)
{
    setenv("PGPASSWORD", token, 1);
    set_default("PGHOST", o->hostname);
    set_default("PGUSER", o->user ? o->user : "admin");
    set_default("PGDATABASE", "postgres");
    set_default("PGSSLMODE", "verify-full");
    /* libpq < 16 does not know sslrootcert=system: name the bundle */
    set_default("PGSSLROOTCERT", PQlibVersion() >= 160000 ? "system"
                                                          : "/etc/ssl/certs/ca-certificates.crt");
    execvp(argv[0], argv);
    fprintf(stderr, "dsql-token: cannot run '%s': %s\n", argv[0], strerror(errno));
    return 127;
}

int main(int argc, char **argv)
{
    options o = {0};
    int exec_mode = argc > 1 && strcmp(argv[1], "exec") == 0;
    if (exec_mode) {
        argv++;
        argc--;
    }
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc;
    if (exec_mode && optind >= argc) {
        fprintf(stderr, "dsql-token: exec needs a program after '--' (see --help)\n");
        return EXIT_USAGE;
    }
    if (!exec_mode && optind < argc) {
        fprintf(stderr, "dsql-token: unexpected argument '%s' (see --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o.verbose)
        dsql_set_log_handler(log_to_stderr, DSQL_LOG_DEBUG, NULL);
    char *token = NULL;
    if ((rc = make_token(&o, &token)) != 0)
        return rc;
    if (exec_mode)
        return run_exec(&o, argv + optind, token);
    int ok = printf("%s\n", token) > 0 && fflush(stdout) == 0;
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (!ok) {
        fprintf(stderr, "dsql-token: cannot write the token to stdout\n");
        return 1;
    }
    return 0;
}
