/* dsql-local: a local Aurora DSQL stand-in. Shared declarations. */
#ifndef DSQL_LOCAL_H
#define DSQL_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "faults.h"

#define DL_MAX_HOSTS 8
#define DL_MAX_REGIONS 4

#if defined(__GNUC__)
#define DL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DL_PRINTF(a, b)
#endif

typedef struct dl_config {
    const char *hosts[DL_MAX_HOSTS]; /* hosts[0] is the cluster name */
    int nhosts;
    const char *region;            /* NULL: from hosts[0] */
    int port;                      /* 0: any free port */
    int max_conn_seconds;          /* connections are closed after this */
    int auth_timeout;              /* seconds to finish TLS + login */
    int clock_skew;                /* allowed X-Amz-Date skew, seconds */
    const char *state_dir;         /* NULL: default / mkdtemp */
    const char *keys_file;         /* NULL: generated */
    const char *log_file;          /* NULL: <state>/dsql-local.log */
    int temporary;                 /* generate a session token */
    int max_preauth;               /* connections not logged in; 0: default */
    int postgres_compat;           /* 1: plain PostgreSQL, DSQL's SQL rules off */
    int max_connections;           /* logged-in sessions; 0: what we can honour */
    double conn_rate, conn_burst;  /* new sessions a second, burst; 0: no limit */
    int max_txn_seconds;           /* a transaction's longest life */
    dl_faults faults;              /* injected at start; `set` changes them */
    const char *regions[DL_MAX_REGIONS]; /* --regions: one gateway each */
    int nregions;
} dl_config;

/* util.c */
void dl_log(const char *fmt, ...) DL_PRINTF(1, 2);
void dl_log_open(const char *path);
int dl_random_string(char *buf, size_t n, const char *alphabet);
int dl_rmtree(const char *path);
int dl_write_file(const char *path, const char *data, size_t len, int mode);
/* SIGINT, SIGTERM and SIGHUP (the ways to stop us) to handler, or SIG_DFL. */
void dl_on_stop_signals(void (*handler)(int));

/* keys.c: the key table, "ACCESS_KEY_ID SECRET [SESSION_TOKEN]" a line. */
typedef struct dl_key {
    char akid[129];
    char secret[129];
    char session[4097]; /* "" when long-term */
} dl_key;
int dl_keys_generate(const char *path, int temporary, dl_key *out);
/* 1 found, 0 not found, -1 file unreadable. */
int dl_keys_lookup(const char *path, const char *akid, dl_key *out);
int dl_keys_first(const char *path, dl_key *out);

/* certs.c: CA + server certificate for the hosts, PEM files in dir. */
int dl_certs_make(const char *dir, const char *const *hosts, int nhosts,
                  char *err, size_t errcap);

/* cluster.c: throwaway PostgreSQL under dir/pg. */
typedef struct dl_cluster {
    char dir[512];     /* dir/pg */
    char sock_dir[512];
    pid_t pid;
} dl_cluster;
/* dsql_rules: install DSQL's SQL rules (rules_sql.c) and lock_timeout. */
int dl_cluster_start(dl_cluster *c, const char *state_dir, int dsql_rules, char *err,
                     size_t errcap);
#define DL_PG_MAX_CONNECTIONS 300 /* PostgreSQL's max_connections */
#define DL_PG_CONN_MARGIN 10      /* kept for superuser_reserved_connections */
#define DL_LOCK_TIMEOUT_MS 1 /* a writer's wait before it fails as a conflict: none to
                               * speak of (0 would mean forever) */
extern const char dl_rules_sql[];
void dl_cluster_stop(dl_cluster *c);

/* verify.c: the IAM token check. On failure *sqlstate and reason are set. */
typedef struct dl_verify_in {
    const char *token;
    size_t token_len;
    const char *sni;       /* TLS server name */
    const char *user;      /* startup user */
    const char *region;    /* expected region */
    const char *keys_file;
    int64_t now;
    int clock_skew;
    /* out of descriptors: frees one (1) or cannot (0); may be NULL */
    int (*make_room)(void *arg);
    void *room_arg;
} dl_verify_in;
int dl_verify_token(const dl_verify_in *in, char *reason, size_t cap);

/* gateway.c */
struct event_base;
typedef struct dl_gateway dl_gateway;
dl_gateway *dl_gateway_new(struct event_base *base, const dl_config *cfg,
                           const char *cert_dir, const char *keys_file,
                           const char *pg_sock_dir, char *err, size_t errcap);
int dl_gateway_port(const dl_gateway *gw);
/* The faults injected now, for `dsql-local set` to change. */
dl_faults *dl_gateway_faults(dl_gateway *gw);
void dl_gateway_free(dl_gateway *gw);

/* regions.c: the other regions' gateways (--regions). */
typedef struct dl_regions {
    int n;
    char host[DL_MAX_REGIONS][300];
    dl_config cfg[DL_MAX_REGIONS];
    dl_gateway *gw[DL_MAX_REGIONS];
} dl_regions;
/* Names for regions[1..] (a new cluster id each), added to hosts (for the
 * certificate). */
int dl_regions_names(dl_regions *r, const dl_config *cfg, const char **hosts, int *nhosts,
                     char *err, size_t cap);
int dl_regions_start(dl_regions *r, struct event_base *base, const dl_config *primary,
                     const char *cert_dir, const char *keys, const char *sockdir, char *err,
                     size_t cap);
/* Appends DSQL_LOCAL_HOSTS and DSQL_LOCAL_PORTS (all regions, primary first). */
void dl_regions_report(const dl_regions *r, dl_gateway *primary, const char *primary_host,
                       char *buf, size_t cap);
void dl_regions_set_faults(dl_regions *r, const dl_faults *f);
/* Each region's gateway closed and listening again on its port. */
int dl_regions_restart(dl_regions *r, struct event_base *base, const char *cert_dir,
                       const char *keys, const char *sockdir, char *err, size_t cap);
void dl_regions_free(dl_regions *r);

#endif
