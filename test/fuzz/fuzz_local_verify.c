/* Fuzz target: dsql-local's IAM token verifier (tools/dsql-local/verify.c),
 * the password the gateway receives from any client before it is
 * authenticated. Input: one flags byte, then the token bytes exactly as the
 * gateway passes them (not NUL-terminated). The flags pick the startup user,
 * the expected region and the server name; the clock is fixed at
 * 2026-01-01T00:05:00Z and the key table holds one long-term and one
 * temporary key, so the seed tokens (signed at 20260101T000000Z for
 * abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws) verify and mutations
 * reach the signature comparison. Besides the sanitizers, checks that the
 * reason is NUL-terminated within its buffer and never quotes a secret or
 * session token that the input did not carry itself. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define FZ_SECRET "fuzzSECRETwJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLE"
#define FZ_SESSION "fuzzSESSIONIQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"
#define FZ_NOW 1767225900 /* 2026-01-01T00:05:00Z */

static char keys_dir[64], keys_path[256];

static void remove_keys(void)
{
    unlink(keys_path);
    rmdir(keys_dir);
}

static void make_keys(void)
{
    static const char table[] = "# fuzz key table\n"
                                "AKIAFUZZLONGTERM0001 " FZ_SECRET "\n"
                                "ASIAFUZZTEMPORARY001 " FZ_SECRET " " FZ_SESSION "\n";
    FILE *fp;

    strcpy(keys_dir, "/tmp/dsql-fuzz-verify.XXXXXX");
    if (!mkdtemp(keys_dir))
        abort();
    snprintf(keys_path, sizeof keys_path, "%s/keys", keys_dir);
    fp = fopen(keys_path, "w");
    if (!fp || fwrite(table, 1, sizeof table - 1, fp) != sizeof table - 1 || fclose(fp) != 0)
        abort();
    atexit(remove_keys);
}

static int contains(const void *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const char *const snis[4] = {
        "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.DSQL.US-EAST-1.ON.AWS", "localhost", NULL};
    static const size_t caps[4] = {400, 64, 8, 1};
    unsigned char flags;
    char *token, reason[400];
    dl_verify_in in;
    size_t cap;
    int rc;

    if (!keys_path[0])
        make_keys();
    if (size < 1)
        return 0;
    flags = data[0];
    data++;
    size--;
    token = malloc(size ? size : 1);
    if (!token)
        return 0;
    memcpy(token, data, size);
    memset(&in, 0, sizeof in);
    in.token = token;
    in.token_len = size;
    in.sni = snis[(flags >> 2) & 3];
    in.user = (flags & 1) ? "alice" : "admin";
    in.region = (flags & 2) ? NULL : "us-east-1";
    in.keys_file = keys_path;
    in.now = FZ_NOW;
    in.clock_skew = (flags & 0x40) ? 0 : 300;
    cap = caps[(flags >> 4) & 3];
    memset(reason, 0x5a, sizeof reason);
    rc = dl_verify_token(&in, reason, cap);
    if (rc != 0 && rc != -1)
        abort();
    if (rc != 0) {
        if (memchr(reason, '\0', cap) == NULL)
            abort(); /* unterminated reason */
        if (cap < sizeof reason && (unsigned char)reason[cap] != 0x5a)
            abort(); /* wrote past cap */
        if (!contains(data, size, FZ_SECRET) && strstr(reason, FZ_SECRET))
            abort();
        if (!contains(data, size, FZ_SESSION) && strstr(reason, FZ_SESSION))
            abort();
    }
    free(token);
    return 0;
}
