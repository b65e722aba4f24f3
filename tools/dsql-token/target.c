/* What the token is for: options > URI/conninfo > PG* environment >
 * defaults, resolved by lib/config.c (which also refuses an sslmode weaker
 * than verify-full unless --allow-insecure-tls). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsql_token.h"

typedef struct env_key {
    const char *var;
    const char *key;
} env_key;

/* Not tied to a host: always the weakest source, as libpq reads them. */
static const env_key PG_ENV[] = {
    {"PGUSER", "user"}, {"PGDATABASE", "dbname"}, {"PGSSLMODE", "sslmode"}, {NULL, NULL}};
/* Describe the PGHOST host: used only when the token is for that host. */
static const env_key PG_HOST_ENV[] = {{"PGHOSTADDR", "hostaddr"},
                                      {"PGPORT", "port"},
                                      {"PGSSLROOTCERT", "sslrootcert"},
                                      {NULL, NULL}};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static dsql_status import_env(dsql_config *cfg, const env_key *keys, dsql_error *err)
{
    for (size_t i = 0; keys[i].var; i++) {
        const char *v = env(keys[i].var);
        dsql_status st = v ? dsql_config_set_from(cfg, DSQL_SOURCE_ENV, keys[i].key, v, err)
                           : DSQL_OK;
        if (st != DSQL_OK)
            return st;
    }
    return DSQL_OK;
}

static const char *prog_name(const options *o)
{
    return o->prog ? o->prog : "dsql-token";
}

static int fail_err(const options *o, const dsql_error *err)
{
    /* the library names its key; on the command line it is an option */
    const char *hint = strstr(err->message, "allow_insecure_tls=1") ? " (--allow-insecure-tls)"
                                                                     : "";
    fprintf(stderr, "%s: %s%s\n", prog_name(o), err->message, hint);
    return 1;
}

/* The options and the connection string, the stronger sources. */
static dsql_status apply_inputs(const options *o, dsql_config *cfg, dsql_error *err)
{
    dsql_status st = DSQL_OK;
    if (o->connection)
        st = dsql_config_parse(cfg, o->connection, err);
    else if (o->hostname)
        st = dsql_config_set(cfg, "host", o->hostname, err);
    else if (o->cluster_id)
        st = dsql_config_set(cfg, "cluster_id", o->cluster_id, err);
    if (st == DSQL_OK && o->user)
        st = dsql_config_set(cfg, "user", o->user, err);
    if (st == DSQL_OK && o->profile)
        st = dsql_config_set(cfg, "profile", o->profile, err);
    if (st == DSQL_OK && o->hostaddr)
        st = dsql_config_set(cfg, "hostaddr", o->hostaddr, err);
    if (st == DSQL_OK && o->port)
        st = dsql_config_set(cfg, "port", o->port, err);
    if (st == DSQL_OK && o->allow_insecure_tls)
        st = dsql_config_set(cfg, "allow_insecure_tls", "1", err);
    return st;
}

/* Region: explicit, else (for hosts that name none) the AWS settings. */
static dsql_status apply_region(const options *o, dsql_config *cfg, dsql_error *err)
{
    if (o->region)
        return dsql_config_set(cfg, "region", o->region, err);
    char region[DSQL_REGION_MAX + 1];
    const char *profile = o->profile ? o->profile : dsql_config_get(cfg, "profile");
    if (!dsql_config_get(cfg, "region") &&
        dsql_region_resolve(NULL, profile, region, sizeof region, NULL) == DSQL_OK)
        return dsql_config_set_from(cfg, DSQL_SOURCE_ENV, "region", region, err);
    return DSQL_OK;
}

static dsql_status resolve_first_host(target *t, dsql_error *err)
{
    dsql_status st = dsql_config_resolve(t->cfg, err);
    return st == DSQL_OK ? dsql_config_host_at(t->cfg, 0, &t->host, err) : st;
}

int resolve_target(const options *o, target *t)
{
    dsql_error err;
    if ((o->hostname != NULL) + (o->cluster_id != NULL) + (o->connection != NULL) > 1) {
        fprintf(stderr, "%s: give at most one of --hostname, --cluster-id or a "
                        "connection string (see --help)\n", prog_name(o));
        return EXIT_USAGE;
    }
    if (!(t->cfg = dsql_config_new(&err)))
        return fail_err(o, &err);
    if (apply_inputs(o, t->cfg, &err) != DSQL_OK)
        return fail_err(o, &err);
    int named = dsql_config_get(t->cfg, "host") || dsql_config_get(t->cfg, "cluster_id");
    const char *pghost = env("PGHOST");
    if (!named && !pghost) {
        fprintf(stderr, "%s: no host: give --hostname, --cluster-id or a connection "
                        "string, or set PGHOST (see --help)\n", prog_name(o));
        return EXIT_USAGE;
    }
    /* no host given: PGHOST and what describes it, as libpq would */
    t->env_is_host = !named;
    dsql_status st = import_env(t->cfg, PG_ENV, &err);
    if (st == DSQL_OK && !named)
        st = dsql_config_set_from(t->cfg, DSQL_SOURCE_ENV, "host", pghost, &err);
    if (st == DSQL_OK && !named)
        st = import_env(t->cfg, PG_HOST_ENV, &err);
    if (st == DSQL_OK)
        st = apply_region(o, t->cfg, &err);
    if (st == DSQL_OK)
        st = resolve_first_host(t, &err);
    /* the host given is PGHOST: its hostaddr, port and CA still apply */
    if (st == DSQL_OK && named && pghost && strcasecmp(pghost, t->host.host) == 0) {
        t->env_is_host = 1;
        st = import_env(t->cfg, PG_HOST_ENV, &err);
        if (st == DSQL_OK)
            st = resolve_first_host(t, &err);
    }
    if (st != DSQL_OK) {
        if (!named)
            fprintf(stderr, "%s: with the host from PGHOST=%s:\n", prog_name(o), pghost);
        return fail_err(o, &err);
    }
    if (o->verbose && dsql_config_host_count(t->cfg) > 1)
        fprintf(stderr, "%s: info: %zu hosts given; the token is for the first, %s\n",
                prog_name(o), dsql_config_host_count(t->cfg), t->host.signing_host);
    t->user = dsql_config_get(t->cfg, "user");
    return 0;
}
