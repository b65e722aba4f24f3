/* dsql-proxy: local passwords for TCP clients (--client-password-file),
 * checked with SCRAM-SHA-256 against stored verifiers, never a cleartext
 * password. The file holds "user:SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:
 * <ServerKey>" lines (PostgreSQL's rolpassword format); # starts a comment. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "session.h"
#include "wire.h"

struct dp_password {
    char user[64];
    pgs_scram_verifier v;
};

static int add_line(dp_proxy *p, char *line, int lineno, char *err, size_t errcap)
{
    char *colon = strchr(line, ':');
    struct dp_password *grown;
    size_t i;

    if (!colon || colon == line) {
        snprintf(err, errcap, "line %d: expected user:SCRAM-SHA-256$...", lineno);
        return -1;
    }
    if ((size_t)(colon - line) >= sizeof grown->user) {
        snprintf(err, errcap, "line %d: the user name is longer than %zu bytes", lineno,
                 sizeof grown->user - 1);
        return -1;
    }
    /* a second line would be ignored (the first one wins): say so */
    for (i = 0; i < p->npasswords; i++)
        if (strncmp(p->passwords[i].user, line, (size_t)(colon - line)) == 0 &&
            p->passwords[i].user[colon - line] == '\0') {
            snprintf(err, errcap, "line %d: user %.63s has a line already", lineno,
                     p->passwords[i].user);
            return -1;
        }
    grown = realloc(p->passwords, (p->npasswords + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    p->passwords = grown;
    *colon = '\0';
    memcpy(grown[p->npasswords].user, line, (size_t)(colon - line) + 1);
    if (pgs_scram_parse_verifier(colon + 1, &grown[p->npasswords].v) != 0) {
        snprintf(err, errcap, "line %d: user %.63s: not a SCRAM-SHA-256 verifier "
                 "(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)", lineno, line);
        return -1;
    }
    p->npasswords++;
    return 0;
}

int dp_passwords_load(dp_proxy *p, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    struct stat st;
    int lineno = 0, rc = 0;

    if (!f) {
        snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "cannot read %s: it is a directory", path);
        fclose(f);
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "dsql-proxy: warning: %s can be read by other users; verifiers can "
                        "be attacked offline (chmod 600)\n", path);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        lineno++;
        line[n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        rc = add_line(p, line, lineno, err, errcap);
        if (rc != 0) {
            char tmp[300];
            snprintf(tmp, sizeof tmp, "%s", err);
            snprintf(err, errcap, "%s: %s", path, tmp);
        }
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (rc == 0 && p->npasswords == 0) {
        snprintf(err, errcap, "%s: no user:verifier lines", path);
        rc = -1;
    }
    if (rc == 0 && RAND_bytes(p->mock_key, sizeof p->mock_key) != 1) {
        snprintf(err, errcap, "no randomness for the unknown users' SCRAM salts");
        rc = -1;
    }
    return rc;
}

void dp_passwords_free(dp_proxy *p)
{
    if (p->passwords)
        OPENSSL_cleanse(p->passwords, p->npasswords * sizeof *p->passwords);
    OPENSSL_cleanse(p->mock_key, sizeof p->mock_key);
    free(p->passwords);
    p->passwords = NULL;
    p->npasswords = 0;
}

static int send_auth(dp_session *s, uint32_t code, const char *data, size_t len)
{
    unsigned char hdr[9];

    hdr[0] = 'R';
    pgs_put_be32(hdr + 1, (uint32_t)(8 + len));
    pgs_put_be32(hdr + 5, code);
    return bufferevent_write(s->client, hdr, 9) != 0 ||
                   (len && bufferevent_write(s->client, data, len) != 0)
               ? -1
               : 0;
}

int dp_clientauth_start(dp_session *s)
{
    static const char mechs[] = PGS_SCRAM_MECH "\0"; /* list ends with one more NUL */
    const dp_proxy *p = s->p;
    size_t i;

    s->scram = calloc(1, sizeof *s->scram);
    if (!s->scram)
        return -1;
    for (i = 0; i < p->npasswords; i++)
        if (strcmp(p->passwords[i].user, s->user) == 0)
            break;
    /* an unknown user gets a stand-in shaped like the file's first verifier */
    if (i < p->npasswords)
        s->scram->v = p->passwords[i].v;
    else if (pgs_scram_mock_verifier(&s->scram->v, &p->passwords[0].v, p->mock_key, s->user) != 0)
        return -1;
    s->state = DP_SASL_INIT;
    return send_auth(s, 10, mechs, sizeof mechs); /* AuthenticationSASL */
}

static void auth_failed(dp_session *s, const char *why)
{
    char msg[400];

    pgs_log_limited(&s->p->log_rl, "conn %lu: local password check for user \"%s\": %s",
                    s->id, s->user_shown, why);
    snprintf(msg, sizeof msg, "password authentication failed for user \"%s\"", s->user_shown);
    dp_session_refuse(s, DP_FAIL_PASSWORD, "28P01", msg);
}

/* One password message from the client: 1 next, 0 need more, -1 done. */
int dp_clientauth_step(dp_session *s, struct evbuffer *in)
{
    unsigned char *body;
    uint32_t len;
    const char *data, *err = "";
    size_t dlen;
    char out[512];
    pgs_msg msg;
    int rc = pgs_msg_peek(in, &msg);

    if (rc == PGS_MSG_SHORT)
        return 0;
    len = msg.len;
    if (msg.type != 'p' || rc == PGS_MSG_BROKEN || len - 4 > PGS_SCRAM_MSG_MAX + 64) {
        dp_session_refuse(s, DP_FAIL_PROTOCOL, "08P01", "expected a SASL response");
        return -1;
    }
    if (rc != PGS_MSG_WHOLE)
        return 0;
    body = evbuffer_pullup(in, len + 1);
    if (!body) {
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
        return -1;
    }
    data = (const char *)body + 5;
    dlen = len - 4;
    if (s->state == DP_SASL_INIT) {
        /* SASLInitialResponse: mechanism, NUL, int32 length, data */
        size_t m = strnlen(data, dlen);
        if (m == dlen || strcmp(data, PGS_SCRAM_MECH) != 0 || dlen < m + 5 ||
            pgs_be32((const unsigned char *)data + m + 1) != dlen - m - 5) {
            evbuffer_drain(in, len + 1);
            auth_failed(s, "not a SCRAM-SHA-256 initial response");
            return -1;
        }
        rc = pgs_scram_first(s->scram, data + m + 5, dlen - m - 5, out, sizeof out, &err);
        evbuffer_drain(in, len + 1);
        if (rc != 0 || send_auth(s, 11, out, strlen(out)) != 0) {
            auth_failed(s, rc ? err : "out of memory");
            return -1;
        }
        s->state = DP_SASL_FINAL;
        return 1;
    }
    rc = pgs_scram_final(s->scram, data, dlen, out, sizeof out, &err);
    evbuffer_drain(in, len + 1);
    pgs_scram_clear(s->scram);
    if (rc != 0) {
        auth_failed(s, err);
        return -1;
    }
    if (send_auth(s, 12, out, strlen(out)) != 0) { /* AuthenticationSASLFinal */
        dp_session_refuse(s, DP_FAIL_MEMORY, "53200", "dsql-proxy: out of memory");
        return -1;
    }
    dp_session_begin_login(s); /* the upstream's AuthenticationOk follows */
    return -1;
}
