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
    const char *cluster_id;
    const char *connection; /* URI, conninfo or host, as a positional argument */
    const char *region;
    const char *user;
    const char *profile;
    uint32_t expires_in;
    int64_t time;
    int verbose;
} options;

/* What the token is for, resolved from the options by lib/config.c. */
typedef struct target {
    dsql_config *cfg;
    dsql_config_host host; /* the first host: the token is for one host */
    const char *user;
} target;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dsql-token [options] {--hostname HOST | --cluster-id ID | CONNECTION}\n"
            "       dsql-token exec [options] {...} -- PROGRAM [ARGS...]\n"
            "\n"
            "Prints an Aurora DSQL IAM authentication token, or runs PROGRAM with it\n"
            "in PGPASSWORD (and PGHOST, PGHOSTADDR, PGPORT, PGUSER, PGDATABASE,\n"
            "PGSSLMODE=verify-full, PGSSLROOTCERT where not already set).\n"
            "CONNECTION is a postgresql:// URI, a libpq conninfo string or a host.\n"
            "\n"
            "  --hostname HOST     cluster endpoint the token is signed for\n"
            "  --cluster-id ID     cluster id; the endpoint is ID.dsql.REGION.on.aws\n"
            "  --region REGION     signing region (default: from the hostname, else\n"
            "                      AWS_REGION, AWS_DEFAULT_REGION, the profile's region)\n"
            "  --profile NAME      AWS profile for credentials and region\n"
            "  --user USER         database user (default admin; admin signs\n"
            "                      DbConnectAdmin, any other user DbConnect)\n"
            "  --expires-in SECS   token lifetime, 1..604800 (default 900)\n"
            "  --time TIME         sign as of YYYY-MM-DDTHH:MM:SSZ (reproducible tokens)\n"
            "  --verbose           log what the library does to stderr (never secrets)\n"
            "  --help, --version\n"
            "\n"
            "Credentials: found as the AWS CLI finds them (environment, ~/.aws/config\n"
            "and credentials, credential_process, SSO, web identity, containers, EC2).\n");
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
        {"cluster-id", required_argument, NULL, 'c'}, {"profile", required_argument, NULL, 'p'},
        {"user", required_argument, NULL, 'u'},     {"expires-in", required_argument, NULL, 'e'},
        {"time", required_argument, NULL, 't'},     {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'H'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': o->hostname = optarg; break;
        case 'c': o->cluster_id = optarg; break;
        case 'p': o->profile = optarg; break;
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
    return 0;
}

static int fail_err(const char *what, const dsql_error *err)
{
    fprintf(stderr, "dsql-token: %s%s\n", what, err->message);
    return 1;
}

static int resolve_target(const options *o, target *t)
{
    dsql_error err;
    int given = (o->hostname != NULL) + (o->cluster_id != NULL) + (o->connection != NULL);
    if (given != 1) {
        fprintf(stderr, "dsql-token: give exactly one of --hostname, --cluster-id or a "
                        "connection string (see --help)\n");
        return EXIT_USAGE;
    }
    if (!(t->cfg = dsql_config_new(&err)))
        return fail_err("", &err);
    dsql_status st = DSQL_OK;
    if (o->connection)
        st = dsql_config_parse(t->cfg, o->connection, &err);
    else if (o->hostname)
        st = dsql_config_set_host(t->cfg, o->hostname, &err);
    else
        st = dsql_config_set_cluster_id(t->cfg, o->cluster_id, NULL, &err);
    if (st == DSQL_OK && o->user)
        st = dsql_config_set_user(t->cfg, o->user, &err);
    if (st == DSQL_OK && o->profile)
        st = dsql_config_set(t->cfg, "profile", o->profile, &err);
    /* region: explicit, else (for hosts that name none) the AWS settings */
    char region[DSQL_REGION_MAX + 1];
    const char *profile = o->profile ? o->profile : dsql_config_get(t->cfg, "profile");
    if (st == DSQL_OK && o->region)
        st = dsql_config_set_region(t->cfg, o->region, &err);
    else if (st == DSQL_OK && !dsql_config_get(t->cfg, "region") &&
             dsql_resolve_region(NULL, profile, region, sizeof region, NULL) == DSQL_OK)
        st = dsql_config_set_from(t->cfg, DSQL_SOURCE_ENV, "region", region, &err);
    if (st == DSQL_OK)
        st = dsql_config_resolve(t->cfg, &err);
    if (st == DSQL_OK)
        st = dsql_config_host_at(t->cfg, 0, &t->host, &err);
    if (st != DSQL_OK)
        return fail_err("", &err);
    if (dsql_config_host_count(t->cfg) > 1)
        dsql__log(DSQL_LOG_INFO, "%zu hosts given; the token is for the first, %s",
                  dsql_config_host_count(t->cfg), t->host.signing_host);
    t->user = dsql_config_user(t->cfg);
    return 0;
}

/* Fills token (heap, caller wipes) or prints the error; returns exit status. */
static int make_token(const options *o, const target *t, char **token)
{
    dsql_error err;
    const char *profile = o->profile ? o->profile : dsql_config_get(t->cfg, "profile");
    dsql_credentials_provider *cp = dsql_credentials_provider_default(profile, &err);
    dsql_credentials creds;
    if (!cp || dsql_credentials_provider_get(cp, &creds, &err) != DSQL_OK) {
        fprintf(stderr, "dsql-token: %s\n", err.message);
        dsql_credentials_provider_free(cp);
        return 1;
    }
    dsql_credentials_provider_free(cp);
    uint32_t expires = o->expires_in ? o->expires_in : dsql_config_token_duration(t->cfg);
    /* an explicit --region is the signing region, even for a DSQL name */
    dsql_token_params p = {DSQL_STRUCT_VERSION, t->host.signing_host,
                           o->region ? o->region : t->host.region, t->user, expires, o->time};
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

static int run_exec(const target *t, char **argv, const char *token)
{
    const char *v;
    char port[16];
    snprintf(port, sizeof port, "%u", t->host.port);
    setenv("PGPASSWORD", token, 1);
    set_default("PGHOST", t->host.host);
    if (t->host.hostaddr)
        set_default("PGHOSTADDR", t->host.hostaddr);
    set_default("PGPORT", port);
    set_default("PGUSER", t->user);
    set_default("PGDATABASE", dsql_config_dbname(t->cfg));
    set_default("PGSSLMODE", (v = dsql_config_get(t->cfg, "sslmode")) ? v : "verify-full");
    /* libpq < 16 does not know sslrootcert=system: name the bundle */
    if (!(v = dsql_config_get(t->cfg, "sslrootcert")))
        v = PQlibVersion() >= 160000 ? "system" : "/etc/ssl/certs/ca-certificates.crt";
    set_default("PGSSLROOTCERT", v);
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
    /* exec: the program is everything after the first "--"; options and
     * the CONNECTION come before it, in any order */
    int program = 0, all = argc;
    for (int i = 1; exec_mode && i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            program = i + 1;
            argv[i] = NULL;
            argc = i;
            break;
        }
    if (exec_mode && (program == 0 || program >= all)) {
        fprintf(stderr, "dsql-token: exec needs a program after '--' (see --help)\n");
        return EXIT_USAGE;
    }
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc;
    if (optind < argc)
        o.connection = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "dsql-token: unexpected argument '%s' (see --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o.verbose)
        dsql_set_log_handler(log_to_stderr, DSQL_LOG_DEBUG, NULL);
    target t = {0};
    char *token = NULL;
    if ((rc = resolve_target(&o, &t)) != 0 || (rc = make_token(&o, &t, &token)) != 0) {
        dsql_config_free(t.cfg);
        return rc;
    }
    if (exec_mode)
        return run_exec(&t, argv + program, token);
    dsql_config_free(t.cfg);
    int ok = printf("%s\n", token) > 0 && fflush(stdout) == 0;
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (!ok) {
        fprintf(stderr, "dsql-token: cannot write the token to stdout\n");
        return 1;
    }
    return 0;
}
