/* IAM Identity Center (SSO) GetRoleCredentials: the HTTP half. The
 * profile provider finds the cached access token and calls this. */
#include <stdio.h>
#include <string.h>

#include "../strbuf.h"
#include "remote.h"
#include "remote_util.h"

#define WHAT "SSO GetRoleCredentials"

static dsql_status sso_url(const char *region, const char *account_id, const char *role_name,
                           char **url, dsql_error *err)
{
    const char *ep = dsql__env_nonempty("AWS_ENDPOINT_URL_SSO");
    dsql__strbuf sb = {0};
    if (ep) {
        size_t n = strlen(ep);
        while (n && ep[n - 1] == '/')
            n--;
        dsql__sb_append(&sb, ep, n);
    } else {
        dsql__sb_puts(&sb, "https://portal.sso.");
        dsql__sb_puts(&sb, region);
        dsql__sb_puts(&sb, strncmp(region, "cn-", 3) == 0 ? ".amazonaws.com.cn"
                                                          : ".amazonaws.com");
    }
    dsql__sb_puts(&sb, "/federation/credentials?account_id=");
    dsql__sb_encoded(&sb, account_id, strlen(account_id), 0);
    dsql__sb_puts(&sb, "&role_name=");
    dsql__sb_encoded(&sb, role_name, strlen(role_name), 0);
    if (!(*url = dsql__sb_take(&sb))) {
        dsql__sb_free(&sb);
        return dsql__error(err, DSQL_ENOMEM, WHAT ": out of memory");
    }
    return DSQL_OK;
}

dsql_status dsql__sso_get_role_credentials(const char *sso_region, const char *access_token,
                                           const char *account_id, const char *role_name,
                                           dsql_credentials *out, dsql_error *err)
{
    if (!out)
        return dsql__error(err, DSQL_EINVAL, WHAT ": output is NULL");
    memset(out, 0, sizeof *out);
    if (!dsql__region_is_valid(sso_region))
        return dsql__error(err, DSQL_ECONFIG, WHAT ": sso_region \"%.63s\" is not a valid AWS "
                           "region name", sso_region ? sso_region : "");
    if (!account_id || !account_id[0])
        return dsql__error(err, DSQL_ECONFIG, WHAT ": sso_account_id is empty");
    if (!role_name || !role_name[0])
        return dsql__error(err, DSQL_ECONFIG, WHAT ": sso_role_name is empty");
    if (!access_token || !access_token[0])
        return dsql__error(err, DSQL_ECREDENTIALS,
                           WHAT ": there is no cached SSO access token; run `aws sso login`");
    if (strpbrk(access_token, "\r\n"))
        return dsql__error(err, DSQL_ECREDENTIALS,
                           WHAT ": the cached SSO access token contains a line break; run "
                           "`aws sso login`");
    char *url = NULL;
    dsql_status st = sso_url(sso_region, account_id, role_name, &url, err);
    if (st != DSQL_OK)
        return st;
    char host[256];
    dsql__http_url_host(url, host, sizeof host);
    dsql__http_header headers[2] = {{"x-amz-sso_bearer_token", access_token},
                                    {"Accept", "application/json"}};
    dsql__http_request req = {.what = WHAT,
                              .method = "GET",
                              .url = url,
                              .headers = headers,
                              .header_count = 2,
                              .connect_timeout_ms = 5000,
                              .timeout_ms = 15000};
    dsql__http_response resp;
    dsql__log(DSQL_LOG_DEBUG, WHAT ": account %s role %s via %s", account_id, role_name, host);
    st = dsql__http_perform_retry(&req, 3, &resp, err);
    dsql__free(url);
    if (st != DSQL_OK)
        return st;
    if (resp.status == 401 || resp.status == 403) {
        char detail[200];
        dsql__http_error_summary(&resp, detail, sizeof detail);
        const char *sep = detail[0] ? " (" : "", *end = detail[0] ? ")" : "";
        st = dsql__error(err, resp.status == 401 ? DSQL_EEXPIRED : DSQL_ECREDENTIALS,
                         WHAT ": %s rejected the SSO access token with HTTP %ld%s%s%s; "
                         "it has expired or lacks access to role %s in account %s: run "
                         "`aws sso login`",
                         host, resp.status, sep, detail, end, role_name, account_id);
        dsql__http_response_clear(&resp);
        return st;
    }
    cJSON *j;
    st = dsql__http_json_answer(WHAT, host, &resp, &j, err);
    if (st == DSQL_OK) {
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(j, "roleCredentials");
        if (!cJSON_IsObject(rc))
            st = dsql__error(err, DSQL_EPARSE, WHAT ": the response from %s has no "
                             "roleCredentials object", host);
        else
            st = dsql__creds_from_json(WHAT, rc, "accessKeyId", "secretAccessKey",
                                       "sessionToken", "expiration", 1, 1, out, err);
        dsql__json_delete_wiped(j);
    }
    dsql__http_response_clear(&resp);
    return st;
}
