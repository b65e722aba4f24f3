/* dsql-token: print an Aurora DSQL IAM token, or run a program with it in
 * PGPASSWORD (psql, pg_dump, any libpq program).
 * Exit status: 0 ok, 1 failure, 2 bad usage; the child's status for exec. */
#define _XOPEN_SOURCE 700 /* strptime */
#define _DEFAULT_SOURCE   /* timegm */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dsqlauth.h"
#include "dsql_token.h"

/* --time: exactly YYYY-MM-DDTHH:MM:SSZ, a real date after 1970. Formatting
 * the result back and comparing refuses what strptime and timegm would
 * quietly normalise (2024-02-30 becoming March 1st). */
static int parse_utc_time(const char *s, int64_t *out)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return 0;
    time_t t = timegm(&tm);
    struct tm back;
    char text[32];
    if (t <= 0 || !gmtime_r(&t, &back) ||
        strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &back) == 0 || strcmp(text, s) != 0)
        return 0;
    *out = (int64_t)t;
    return 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dsql-token [options] [--hostname HOST | --cluster-id ID | CONNECTION]\n"
            "       dsql-token exec [options] [...] -- PROGRAM [ARGS...]\n"
            "\n"
            "Prints an Aurora DSQL IAM authentication token, or runs PROGRAM with it\n"
            "in PGPASSWORD and PGHOST, PGHOSTADDR, PGPORT, PGUSER, PGDATABASE,\n"
            "PGSSLMODE (verify-full), PGSSLROOTCERT set for the host it is signed for.\n"
            "CONNECTION is a postgresql:// URI, a libpq conninfo string or a host.\n"
            "Options win over CONNECTION, which wins over PGHOST, PGHOSTADDR, PGPORT,\n"
            "PGUSER, PGDATABASE, PGSSLMODE, PGSSLROOTCERT; with no host given, PGHOST.\n"
            "\n"
            "  --hostname HOST     cluster endpoint the token is signed for\n"
            "  --cluster-id ID     cluster id; the endpoint is ID.dsql.REGION.on.aws\n"
            "  --hostaddr ADDR     connect to this address (the token stays for HOST)\n"
            "  --port PORT         port (default 5432)\n"
            "  --region REGION     signing region (default: from the hostname, else\n"
            "                      AWS_REGION, AWS_DEFAULT_REGION, the profile's region)\n"
            "  --profile NAME      AWS profile for credentials and region\n"
            "  --user USER         database user (default admin; admin signs\n"
            "                      DbConnectAdmin, any other user DbConnect)\n"
            "  --expires-in SECS   token lifetime, 1..604800 (default 900)\n"
            "  --time TIME         sign as of YYYY-MM-DDTHH:MM:SSZ (reproducible tokens)\n"
            "  --allow-insecure-tls\n"
            "                      accept an sslmode weaker than verify-full (warns)\n"
            "  --verbose           log what the library does to stderr (never secrets)\n"
            "  --help, --version\n"
            "\n"
            "Credentials: found as the AWS CLI finds them (environment, ~/.aws/config\n"
            "and credentials, credential_process, SSO, web identity, containers, EC2).\n");
}

/* FNV-1a: enough to recognise a line already printed. */
static uint64_t line_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Warnings once each: the library may repeat one in a run (the profile
 * files are read for the region and again for the credentials). */
static void log_to_stderr(dsql_log_level level, const char *msg, void *ud)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    static uint64_t seen[32];
    static size_t nseen;
    (void)ud;
    if (level <= DSQL_LOG_WARN) {
        uint64_t h = line_hash(msg);
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == h)
                return;
        if (nseen < sizeof seen / sizeof seen[0])
            seen[nseen++] = h;
    }
    fprintf(stderr, "dsql-token: %s: %s\n", names[level], msg);
}

/* --hostname as documented: a leading https:// and a trailing '/' are
 * dropped (in place); a ":port" is pointed at --port. */
static int normalize_hostname(char *h, const char **out)
{
    const char *given = h;
    if (strncasecmp(h, "https://", 8) == 0)
        h += 8;
    size_t n = strlen(h);
    if (n > 0 && h[n - 1] == '/')
        h[--n] = '\0';
    const char *colon = strchr(h, ':');
    if (colon && !strchr(colon + 1, ':') && colon[1] &&
        strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        fprintf(stderr, "dsql-token: --hostname '%s' contains a port: give the host alone and "
                        "use --port %s\n", given, colon + 1);
        return EXIT_USAGE;
    }
    if (n == 0 || strpbrk(h, "/?#@")) {
        fprintf(stderr, "dsql-token: --hostname '%s' is not a host name\n", given);
        return EXIT_USAGE;
    }
    *out = h;
    return 0;
}

static int parse_port(const char *s)
{
    unsigned long v = strspn(s, "0123456789") == strlen(s) && strlen(s) <= 5
                          ? strtoul(s, NULL, 10) : 0;
    if (v < 1 || v > 65535) {
        fprintf(stderr, "dsql-token: --port '%s' is not a number in 1..65535\n", s);
        return EXIT_USAGE;
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"hostname", required_argument, NULL, 'h'}, {"region", required_argument, NULL, 'r'},
        {"cluster-id", required_argument, NULL, 'c'}, {"profile", required_argument, NULL, 'p'},
        {"user", required_argument, NULL, 'u'},     {"expires-in", required_argument, NULL, 'e'},
        {"time", required_argument, NULL, 't'},     {"verbose", no_argument, NULL, 'v'},
        {"hostaddr", required_argument, NULL, 'a'}, {"port", required_argument, NULL, 'P'},
        {"allow-insecure-tls", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'H'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c, rc = 0, idx = 0;
    opterr = 0;
    /* the leading ':' makes getopt tell a missing value (':') from an
     * unknown option ('?') */
    while ((c = getopt_long(argc, argv, ":", longopts, &idx)) != -1) {
        if (optarg && strncmp(optarg, "--", 2) == 0) { /* "--hostname --user x" */
            fprintf(stderr, "dsql-token: option --%s needs a value\n", longopts[idx].name);
            return EXIT_USAGE;
        }
        switch (c) {
        case 'h':
            if ((rc = normalize_hostname(optarg, &o->hostname)) != 0)
                return rc;
            break;
        case 'a': o->hostaddr = optarg; break;
        case 'P':
            if ((rc = parse_port(optarg)) != 0)
                return rc;
            o->port = optarg;
            break;
        case 'I': o->allow_insecure_tls = 1; break;
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
            if (!parse_utc_time(optarg, &o->time)) {
                fprintf(stderr, "dsql-token: --time '%s' is not YYYY-MM-DDTHH:MM:SSZ\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'H': usage(stdout); exit(0);
        case 'V': printf("dsql-token %s\n", dsql_version()); exit(0);
        case ':':
            fprintf(stderr, "dsql-token: option %s needs a value\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "dsql-token: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
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
    /* resolved: token_duration_secs is a number in 1..604800 */
    uint32_t expires = o->expires_in ? o->expires_in
                                     : (uint32_t)strtoul(dsql_config_get(t->cfg,
                                                                         "token_duration_secs"),
                                                         NULL, 10);
    /* an explicit --region is the signing region, even for a DSQL name */
    dsql_token_request p = {DSQL_STRUCT_VERSION, t->host.signing_host,
                           t->user, o->region ? o->region : t->host.region, expires, o->time};
    size_t len = 0;
    dsql_status st = dsql_token_generate(&p, &creds, NULL, 0, &len, &err);
    if (st == DSQL_EBUFSIZE) {
        *token = malloc(len + 1);
        if (*token)
            st = dsql_token_generate(&p, &creds, *token, len + 1, &len, &err);
        else
            snprintf(err.message, sizeof err.message, "out of memory for the token");
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

static int print_token(const char *token)
{
    if (printf("%s\n", token) > 0 && fflush(stdout) == 0)
        return 0;
    fprintf(stderr, "dsql-token: cannot write the token to stdout\n");
    return 1;
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
    /* warnings always (an insecure-TLS opt-in, a readable credentials
     * file); everything with --verbose */
    dsql_set_log_handler(log_to_stderr, o.verbose ? DSQL_LOG_DEBUG : DSQL_LOG_WARN, NULL);
    target t = {0};
    char *token = NULL;
    rc = resolve_target(&o, &t);
    if (rc == 0)
        rc = make_token(&o, &t, &token);
    if (rc == 0)
        rc = exec_mode ? run_exec(&t, argv + program, token) : print_token(token);
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    dsql_config_free(t.cfg);
    return rc;
}
