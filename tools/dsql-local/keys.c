/* dsql-local: the key table. One key a line: ACCESS_KEY_ID SECRET
 * [SESSION_TOKEN]; blank lines and lines starting with '#' are skipped. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "local.h"

static const char upper_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int dl_keys_generate(const char *path, int temporary, dl_key *k)
{
    char line[sizeof k->akid + sizeof k->secret + sizeof k->session + 4];
    int n, rc;

    memset(k, 0, sizeof *k);
    memcpy(k->akid, temporary ? "ASIA" : "AKIA", 4);
    if (dl_random_string(k->akid + 4, 16, upper_digits) != 0 ||
        dl_random_string(k->secret, 40, b64) != 0)
        return -1;
    if (temporary) {
        /* long and base64-like, as STS session tokens are */
        if (dl_random_string(k->session, 200, b64) != 0 ||
            dl_random_string(k->session + 200, 156, b64) != 0)
            return -1;
    }
    n = snprintf(line, sizeof line, "# dsql-local key table\n%s %s%s%s\n", k->akid,
                 k->secret, k->session[0] ? " " : "", k->session);
    rc = (n > 0 && (size_t)n < sizeof line)
             ? dl_write_file(path, line, (size_t)n, 0600)
             : -1;
    OPENSSL_cleanse(line, sizeof line);
    return rc;
}

/* Splits one line into the key fields; 0 when it holds a key. */
static int parse_line(char *line, dl_key *k)
{
    char *f[3] = {0}, *save = NULL, *tok;
    int n = 0;

    if (line[0] == '#')
        return -1;
    for (tok = strtok_r(line, " \t\r\n", &save); tok && n < 4;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 3)
            return -1;
        f[n++] = tok;
    }
    if (n < 2 || strlen(f[0]) >= sizeof k->akid || strlen(f[1]) >= sizeof k->secret ||
        (f[2] && strlen(f[2]) >= sizeof k->session))
        return -1;
    strcpy(k->akid, f[0]);
    strcpy(k->secret, f[1]);
    strcpy(k->session, f[2] ? f[2] : "");
    return 0;
}

static int scan(const char *path, const char *akid, dl_key *out)
{
    FILE *fp = fopen(path, "re");
    char line[sizeof out->akid + sizeof out->secret + sizeof out->session + 8];
    int found = 0;

    if (!fp)
        return -1;
    while (!found && fgets(line, sizeof line, fp)) {
        if (parse_line(line, out) == 0 && (!akid || strcmp(out->akid, akid) == 0))
            found = 1;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(fp);
    if (!found)
        OPENSSL_cleanse(out, sizeof *out);
    return found;
}

int dl_keys_lookup(const char *path, const char *akid, dl_key *out)
{
    return scan(path, akid, out);
}

int dl_keys_first(const char *path, dl_key *out)
{
    return scan(path, NULL, out);
}
