/* dsql-token's parts: options (main.c), what the token is for (target.c),
 * the program's environment for exec (exec.c). */
#ifndef DSQL_TOKEN_TOOL_H
#define DSQL_TOKEN_TOOL_H

#include <stdint.h>

#include "dsqlauth.h"

#define EXIT_USAGE 2

typedef struct options {
    const char *prog;       /* for messages; NULL: "dsql-token" (dsql-proxy shares target.c) */
    const char *hostname;
    const char *cluster_id;
    const char *connection; /* URI, conninfo or host, as a positional argument */
    const char *hostaddr;
    const char *port;
    const char *region;
    const char *user;
    const char *profile;
    uint32_t expires_in;
    int64_t time;
    int allow_insecure_tls;
    int verbose;
} options;

/* What the token is for, resolved from the options, the connection string
 * and the PG* environment by lib/config.c. */
typedef struct target {
    dsql_config *cfg;
    dsql_config_host host; /* the first host: the token is for one host */
    const char *user;
    /* 1 when the inherited PGHOSTADDR, PGPORT and PGSSLROOTCERT belong to
     * the host (no host was given, or the given one is PGHOST) */
    int env_is_host;
} target;

/* Fills t (t->cfg is the caller's to free, also on failure); returns the
 * exit status (0, 1, EXIT_USAGE) after printing any error. */
int resolve_target(const options *o, target *t);

/* Sets the program's environment from t and runs argv with the token in
 * PGPASSWORD. Returns only on failure (127), with PGPASSWORD wiped. */
int run_exec(const target *t, char **argv, const char *token);

#endif
