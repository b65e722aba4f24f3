/* Your own credentials source behind the public vtable: keys read from a
 * file on every request (so a rotated file is picked up at once), turned
 * into tokens by the signing token provider, used for a libpq connection.
 *
 *   custom-provider KEYS_FILE [ENDPOINT | CLUSTER_ID | URI | "key=value ..."]
 *
 * KEYS_FILE holds "name = value" lines, as in ~/.aws/credentials but
 * without a [section]:
 *     aws_access_key_id = AKIA...
 *     aws_secret_access_key = ...
 *     aws_session_token = ...        (optional)
 * '#' starts a comment line. Without a second argument the PG* / AWS_REGION
 * environment is used (as set by `dsql-local run`). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>

/* The provider's state: whatever your source needs. get() may run in
 * several threads at once (a pool connecting in parallel), so keep it
 * read-only there or lock it. */
struct keys_file {
    char *path;
};

/* errors from a provider are reported like the library's own: fill the
 * caller's dsql_error (it may be NULL) and return the status */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static dsql_status fail(dsql_error *err, dsql_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        err->sqlstate[0] = '\0';
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

static void wipe(void *p, size_t n) /* a store the compiler may not drop */
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    return s;
}

static dsql_status keys_file_get(void *self, dsql_credentials *out, dsql_error *err)
{
    struct keys_file *kf = self;
    FILE *f = fopen(kf->path, "r");
    if (!f)
        return fail(err, DSQL_EIO, "keys file %s: %s", kf->path, strerror(errno));
    char line[4096], id[256] = "", secret[256] = "", token[2048] = "";
    dsql_status st = DSQL_OK;
    unsigned lineno = 0;
    while (st == DSQL_OK && fgets(line, sizeof line, f)) {
        char *s = trim(line), *eq = strchr(s, '='), *dst = NULL;
        size_t cap = 0;
        lineno++;
        if (*s == '\0' || *s == '#')
            continue;
        if (!eq) {
            st = fail(err, DSQL_ECREDENTIALS, "keys file %s line %u: expected name = value",
                      kf->path, lineno);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        if (strcmp(name, "aws_access_key_id") == 0)
            dst = id, cap = sizeof id;
        else if (strcmp(name, "aws_secret_access_key") == 0)
            dst = secret, cap = sizeof secret;
        else if (strcmp(name, "aws_session_token") == 0)
            dst = token, cap = sizeof token;
        else
            st = fail(err, DSQL_ECREDENTIALS, "keys file %s: unknown name '%s'", kf->path, name);
        if (dst && strlen(value) >= cap)
            st = fail(err, DSQL_ECREDENTIALS, "keys file %s: %s is too long", kf->path, name);
        else if (dst)
            memcpy(dst, value, strlen(value) + 1);
    }
    wipe(line, sizeof line);
    fclose(f);
    if (st == DSQL_OK && (!id[0] || !secret[0]))
        st = fail(err, DSQL_ECREDENTIALS, "keys file %s: needs %s", kf->path,
                  !id[0] ? "aws_access_key_id" : "aws_secret_access_key");
    if (st == DSQL_OK) {
        /* hand over heap copies made with the library's allocator: the
         * caller releases them with dsql_credentials_clear() */
        dsql_credentials c = {id, secret, token[0] ? token : NULL, 0 /* no expiry */};
        st = dsql_credentials_copy(out, &c, err);
    }
    wipe(secret, sizeof secret);
    wipe(token, sizeof token);
    return st;
}

static void keys_file_destroy(void *self)
{
    struct keys_file *kf = self;
    free(kf->path);
    free(kf);
}

static const dsql_credentials_provider_vtable keys_file_vtable = {
    .version = DSQL_STRUCT_VERSION,
    .get = keys_file_get,
    .destroy = keys_file_destroy,
};

static dsql_credentials_provider *keys_file_provider(const char *path, dsql_error *err)
{
    struct keys_file *kf = calloc(1, sizeof *kf);
    if (!kf || !(kf->path = strdup(path))) {
        free(kf);
        fail(err, DSQL_ENOMEM, "out of memory");
        return NULL;
    }
    dsql_credentials_provider *p = dsql_credentials_provider_new(&keys_file_vtable, kf, err);
    if (!p) /* on failure the library has not taken self */
        keys_file_destroy(kf);
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: custom-provider KEYS_FILE [ENDPOINT | URI | \"key=value ...\"]\n");
        return 2;
    }
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || (argc > 2 && dsql_config_parse(cfg, argv[2], &err) != DSQL_OK) ||
        dsql_config_load_env(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "custom-provider: %s\n", err.message);
        dsql_config_free(cfg);
        return 1;
    }

    dsql_credentials_provider *creds = keys_file_provider(argv[1], &err);
    /* Fail early with the provider's own message rather than at connect. */
    dsql_credentials probe = {0};
    if (creds && dsql_credentials_provider_get(creds, &probe, &err) != DSQL_OK) {
        dsql_credentials_provider_free(creds);
        creds = NULL;
    }
    dsql_credentials_clear(&probe);
    /* From here on only tokens: the signing provider owns creds (also when
     * it fails) and asks it for keys whenever it signs. To read the file
     * less often, wrap it: dsql_credentials_provider_cached(creds, &err)
     * (then give the keys an expiration, or they are kept for good). */
    dsql_token_provider *tokens = creds ? dsql_token_provider_signing(creds, NULL, &err) : NULL;
    if (!tokens) {
        fprintf(stderr, "custom-provider: %s\n", err.message);
        dsql_config_free(cfg);
        return 1;
    }

    PGconn *conn = dsql_pq_connect(cfg, tokens, &err);
    int ok = 0;
    if (!conn) {
        fprintf(stderr, "custom-provider: %s (%s%s%s)\n", err.message,
                dsql_status_name(err.status), err.sqlstate[0] ? ", SQLSTATE " : "",
                err.sqlstate);
    } else {
        PGresult *res = PQexec(conn, "select current_user");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        if (ok)
            printf("connected as %s with keys from %s\n", PQgetvalue(res, 0, 0), argv[1]);
        else
            fprintf(stderr, "query: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
    }
    dsql_token_provider_free(tokens);
    dsql_config_free(cfg);
    return ok ? 0 : 1;
}
