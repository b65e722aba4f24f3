/* Helpers shared by the HTTP credential providers. */
#include "remote_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

const char *dsql__env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

long dsql__env_seconds_ms(const char *name, long dflt_ms)
{
    const char *v = dsql__env_nonempty(name);
    if (!v)
        return dflt_ms;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d > 0) || d > 3600)
        return dflt_ms;
    long ms = (long)(d * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

int dsql__env_positive_int(const char *name, int dflt)
{
    const char *v = dsql__env_nonempty(name);
    if (!v)
        return dflt;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > 100)
        return dflt;
    return (int)n;
}

void dsql__sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

dsql_status dsql__read_token_file(const char *what, const char *label, const char *path,
                                  size_t max, char **out, dsql_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsql__error(err, DSQL_EIO, "%s: cannot open %s %s: %s", what, label, path,
                           strerror(errno));
    char *buf = dsql__malloc(max + 1);
    if (!buf) {
        fclose(f);
        return dsql__error(err, DSQL_ENOMEM, "%s: out of memory reading %s", what, label);
    }
    size_t n = fread(buf, 1, max + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || n > max) {
        OPENSSL_cleanse(buf, n);
        dsql__free(buf);
        return rerr ? dsql__error(err, DSQL_EIO, "%s: cannot read %s %s", what, label, path)
                    : dsql__error(err, DSQL_ECREDENTIALS,
                                  "%s: %s %s is larger than %zu bytes", what, label, path, max);
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                 buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\0', n)) {
        dsql__free(buf);
        return dsql__error(err, DSQL_ECREDENTIALS, "%s: %s %s is empty or binary", what, label,
                           path);
    }
    *out = buf;
    return DSQL_OK;
}

static void wipe_tree(cJSON *j)
{
    for (; j; j = j->next) {
        if (j->valuestring)
            OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
        wipe_tree(j->child);
    }
}

void dsql__json_delete_wiped(cJSON *j)
{
    if (!j)
        return;
    wipe_tree(j);
    cJSON_Delete(j);
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

dsql_status dsql__creds_from_json(const char *what, const cJSON *obj, const char *k_akid,
                                  const char *k_secret, const char *k_token,
                                  const char *k_exp, int exp_ms, int exp_required,
                                  dsql_credentials *out, dsql_error *err)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(obj))
        return dsql__error(err, DSQL_EPARSE, "%s: the response is not a JSON object", what);
    const char *akid = json_str(obj, k_akid);
    const char *secret = json_str(obj, k_secret);
    if (!akid || !secret)
        return dsql__error(err, DSQL_EPARSE, "%s: the response has no %s", what,
                           !akid ? k_akid : k_secret);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(obj, k_token);
    if (tok && !cJSON_IsNull(tok) && !cJSON_IsString(tok))
        return dsql__error(err, DSQL_EPARSE, "%s: %s in the response is not a string", what,
                           k_token);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(obj, k_exp);
    int64_t expiration = 0;
    if (!exp || cJSON_IsNull(exp)) {
        if (exp_required)
            return dsql__error(err, DSQL_EPARSE, "%s: the response has no %s", what, k_exp);
    } else if (exp_ms) {
        if (!cJSON_IsNumber(exp) || exp->valuedouble < 0 || exp->valuedouble > 253402300799000.0)
            return dsql__error(err, DSQL_EPARSE,
                               "%s: %s in the response is not a time in milliseconds", what,
                               k_exp);
        expiration = (int64_t)(exp->valuedouble / 1000.0);
    } else {
        if (!cJSON_IsString(exp) || !dsql__utc_parse_iso8601(exp->valuestring, &expiration))
            return dsql__error(err, DSQL_EPARSE,
                               "%s: %s in the response is not an ISO 8601 UTC time", what,
                               k_exp);
    }
    int64_t now = dsql__now();
    if (expiration != 0 && expiration <= now)
        return dsql__error(err, DSQL_EEXPIRED,
                           "%s: the credentials returned have already expired (%s %lld, %lld "
                           "s ago)",
                           what, k_exp, (long long)expiration, (long long)(now - expiration));
    dsql_credentials view = {(char *)akid, (char *)secret,
                             cJSON_IsString(tok) ? tok->valuestring : NULL, expiration};
    dsql_status st = dsql_credentials_copy(out, &view, err);
    if (st == DSQL_ENOMEM)
        dsql__error(err, DSQL_ENOMEM, "%s: out of memory copying credentials", what);
    return st;
}

int dsql__region_is_valid(const char *region)
{
    size_t n = region ? strlen(region) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = region[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return 1;
}

int dsql__http_status_retryable(long status)
{
    return status >= 500 || status == 429;
}

dsql_status dsql__http_perform_retry(const dsql__http_request *req, int attempts,
                                     dsql__http_response *resp, dsql_error *err)
{
    dsql_status st = DSQL_EINTERNAL;
    for (int i = 1; i <= attempts; i++) {
        st = dsql__http_perform(req, resp, err);
        int again = st == DSQL_ETIMEOUT || st == DSQL_ENETWORK ||
                    (st == DSQL_OK && dsql__http_status_retryable(resp->status));
        if (!again || i == attempts)
            break;
        dsql__log(DSQL_LOG_DEBUG, "%s: attempt %d of %d failed (%s), retrying", req->what, i,
                  attempts,
                  st == DSQL_OK ? "server error" : dsql_status_name(st));
        dsql__http_response_clear(resp);
        dsql__sleep_ms(50L * i);
    }
    return st;
}

void dsql__http_error_summary(const dsql__http_response *resp, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!resp->body || !resp->body_len)
        return;
    cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (j) {
        const char *keys[][2] = {{"code", "message"}, {"Code", "Message"},
                                 {"__type", "message"}};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *c = json_str(j, keys[i][0]), *m = json_str(j, keys[i][1]);
            if (c || m) {
                snprintf(buf, cap, "%s%s%s", c ? c : "", c && m ? ": " : "", m ? m : "");
                break;
            }
        }
        dsql__json_delete_wiped(j);
    }
}

dsql_status dsql__http_json_answer(const char *what, const char *host,
                                   const dsql__http_response *resp, cJSON **out,
                                   dsql_error *err)
{
    *out = NULL;
    if (resp->status != 200) {
        char detail[200];
        dsql__http_error_summary(resp, detail, sizeof detail);
        return dsql__error(err, resp->status >= 500 ? DSQL_ESERVER : DSQL_ECREDENTIALS,
                           "%s: %s answered HTTP %ld%s%s%s", what, host, resp->status,
                           detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
    }
    *out = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (*out)
        return DSQL_OK;
    return dsql__error(err, DSQL_EPARSE,
                       "%s: the response from %s is not valid JSON (content type %s, %zu "
                       "bytes)",
                       what, host, resp->content_type ? resp->content_type : "none",
                       resp->body_len);
}
