/* exec: the program's PG* environment comes from the resolved target, so
 * the token can only go where it is signed for, over verify-full TLS
 * unless --allow-insecure-tls. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "dsql_token.h"

static void set_or_unset(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

/* Says so when the inherited PGHOST (or what describes a host) is
 * replaced: the token is for another host. */
static void note_replaced(const target *t)
{
    static const char *const vars[] = {"PGHOSTADDR", "PGPORT", "PGSSLROOTCERT", NULL};
    if (t->env_is_host)
        return;
    const char *pghost = getenv("PGHOST");
    char list[64] = "";
    for (size_t i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "",
                     vars[i]);
    }
    if ((!pghost || !*pghost) && !*list)
        return;
    fprintf(stderr, "dsql-token: note: the token is for %s%s%s: the program gets PGHOST=%s%s%s%s\n",
            t->host.signing_host, pghost && *pghost ? ", not for PGHOST=" : "",
            pghost && *pghost ? pghost : "", t->host.host,
            *list ? " and not the inherited " : "", list, *list ? " of the environment" : "");
}

/* Wipes the token from the environment (setenv's copy is ours). */
static void wipe_password(void)
{
    char *pw = getenv("PGPASSWORD");
    if (pw)
        OPENSSL_cleanse(pw, strlen(pw));
    unsetenv("PGPASSWORD");
}

/* libpq lets a service file's host, port and sslmode beat the PG*
 * variables set here, so an inherited PGSERVICE could send the token
 * elsewhere, or in cleartext. */
static void drop_service(void)
{
    const char *svc = getenv("PGSERVICE");
    if (!svc || !*svc)
        return;
    fprintf(stderr, "dsql-token: note: PGSERVICE=%s is not passed on: its settings would "
                    "override the host and TLS settings the token is made for\n", svc);
    unsetenv("PGSERVICE");
}

int run_exec(const target *t, char **argv, const char *token)
{
    const char *v;
    char port[16];
    snprintf(port, sizeof port, "%u", t->host.port);
    note_replaced(t);
    drop_service();
    setenv("PGPASSWORD", token, 1);
    setenv("PGHOST", t->host.host, 1);
    set_or_unset("PGHOSTADDR", t->host.hostaddr);
    setenv("PGPORT", port, 1);
    setenv("PGUSER", t->user, 1);
    setenv("PGDATABASE", dsql_config_get(t->cfg, "dbname"), 1);
    /* anything weaker was refused unless --allow-insecure-tls */
    setenv("PGSSLMODE", (v = dsql_config_get(t->cfg, "sslmode")) ? v : "verify-full", 1);
    /* libpq < 16 does not know sslrootcert=system: name the bundle */
    if (!(v = dsql_config_get(t->cfg, "sslrootcert")))
        v = PQlibVersion() >= 160000 ? "system" : "/etc/ssl/certs/ca-certificates.crt";
    setenv("PGSSLROOTCERT", v, 1);
    execvp(argv[0], argv);
    int e = errno;
    wipe_password();
    fprintf(stderr, "dsql-token: cannot run '%s': %s\n", argv[0], strerror(e));
    return 127;
}
