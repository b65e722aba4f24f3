/* STS AssumeRole (SigV4 header auth with the source credentials) and
 * AssumeRoleWithWebIdentity (unsigned), plus the web identity provider.
 * Responses are XML, read with expat (entity declarations and DOCTYPEs
 * are refused: STS never sends them). */
#include <expat.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "../sigv4.h"
#include "../strbuf.h"
#include "remote.h"
#include "remote_util.h"

#define STS_VERSION "2011-06-15"
#define WEB_TOKEN_MAX (256 * 1024)

/* ---- XML ------------------------------------------------------------ */

enum { F_NONE, F_AKID, F_SECRET, F_TOKEN, F_EXP, F_CODE, F_MESSAGE, F_COUNT };

typedef struct sts_xml {
    XML_Parser parser;
    int depth;
    int creds_depth; /* depth of <Credentials>, 0 when outside */
    int error_depth; /* depth of <Error>, 0 when outside */
    int field;
    int refused;     /* a DOCTYPE or entity declaration was seen */
    dsql__strbuf text[F_COUNT];
} sts_xml;

static const char *local_name(const XML_Char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    (void)atts;
    sts_xml *x = ud;
    const char *n = local_name(name);
    x->depth++;
    x->field = F_NONE;
    if (strcmp(n, "Credentials") == 0 && !x->creds_depth) {
        x->creds_depth = x->depth;
    } else if (strcmp(n, "Error") == 0 && !x->error_depth) {
        x->error_depth = x->depth;
    } else if (x->creds_depth && x->depth == x->creds_depth + 1) {
        static const char *const names[] = {NULL, "AccessKeyId", "SecretAccessKey",
                                            "SessionToken", "Expiration"};
        for (int i = F_AKID; i <= F_EXP; i++)
            if (strcmp(n, names[i]) == 0)
                x->field = i;
    } else if (x->error_depth && x->depth == x->error_depth + 1) {
        if (strcmp(n, "Code") == 0)
            x->field = F_CODE;
        else if (strcmp(n, "Message") == 0)
            x->field = F_MESSAGE;
    }
    if (x->field != F_NONE)
        x->text[x->field].len = 0; /* a repeated element: the last one wins */
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    sts_xml *x = ud;
    if (x->creds_depth == x->depth)
        x->creds_depth = 0;
    if (x->error_depth == x->depth)
        x->error_depth = 0;
    x->depth--;
    x->field = F_NONE;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    sts_xml *x = ud;
    if (x->field != F_NONE && len > 0)
        dsql__sb_append(&x->text[x->field], s, (size_t)len);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    sts_xml *x = ud;
    x->refused = 1;
    XML_StopParser(x->parser, XML_FALSE);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int pe, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)pe, (void)value, (void)value_len, (void)base, (void)sysid, (void)pubid,
        (void)notation;
    sts_xml *x = ud;
    x->refused = 1;
    XML_StopParser(x->parser, XML_FALSE);
}

static void sts_xml_free(sts_xml *x)
{
    for (int i = 0; i < F_COUNT; i++)
        dsql__sb_free(&x->text[i]);
}

/* Parses body into x. DSQL_EPARSE with a message on malformed XML. */
static dsql_status sts_xml_parse(const char *what, const char *host,
                                 const dsql__http_response *resp, sts_xml *x, dsql_error *err)
{
    static const XML_Memory_Handling_Suite mem = {dsql__malloc, dsql__realloc, dsql__free};
    memset(x, 0, sizeof *x);
    x->parser = XML_ParserCreate_MM(NULL, &mem, NULL);
    if (!x->parser)
        return dsql__error(err, DSQL_ENOMEM, "%s: out of memory creating an XML parser", what);
    XML_SetUserData(x->parser, x);
    XML_SetElementHandler(x->parser, on_start, on_end);
    XML_SetCharacterDataHandler(x->parser, on_text);
    XML_SetStartDoctypeDeclHandler(x->parser, on_doctype);
    XML_SetEntityDeclHandler(x->parser, on_entity);
    dsql_status st = DSQL_OK;
    if (resp->body_len > (size_t)INT32_MAX) {
        st = dsql__error(err, DSQL_EPARSE, "%s: the response is too large", what);
    } else if (XML_Parse(x->parser, resp->body, (int)resp->body_len, XML_TRUE) !=
               XML_STATUS_OK) {
        enum XML_Error code = XML_GetErrorCode(x->parser);
        if (code == XML_ERROR_NO_MEMORY)
            st = dsql__error(err, DSQL_ENOMEM, "%s: out of memory parsing XML", what);
        else if (x->refused)
            st = dsql__error(err, DSQL_EPARSE,
                             "%s: the response from %s declares a DOCTYPE or entities; "
                             "refusing it",
                             what, host);
        else
            st = dsql__error(err, DSQL_EPARSE,
                             "%s: the response from %s (HTTP %ld, content type %s) is not "
                             "well-formed XML: %s at line %lu",
                             what, host, resp->status,
                             resp->content_type ? resp->content_type : "none",
                             XML_ErrorString(code),
                             (unsigned long)XML_GetCurrentLineNumber(x->parser));
    }
    for (int i = 0; st == DSQL_OK && i < F_COUNT; i++)
        if (x->text[i].failed)
            st = dsql__error(err, DSQL_ENOMEM, "%s: out of memory parsing XML", what);
    XML_ParserFree(x->parser);
    x->parser = NULL;
    if (st != DSQL_OK)
        sts_xml_free(x);
    return st;
}

static const char *text_of(sts_xml *x, int f)
{
    dsql__strbuf *sb = &x->text[f];
    if (!sb->data || !sb->len)
        return NULL;
    /* trim surrounding whitespace in place */
    char *s = sb->data;
    size_t n = sb->len;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    s[n] = '\0';
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    return *s ? s : NULL;
}

/* Turns an STS response into credentials or an error. */
dsql_status dsql__sts_parse_response(const char *what, const char *host,
                                     const dsql__http_response *resp, dsql_credentials *out,
                                     dsql_error *err)
{
    memset(out, 0, sizeof *out);
    sts_xml x;
    dsql_status st = sts_xml_parse(what, host, resp, &x, err);
    if (st != DSQL_OK) {
        if (resp->status != 200 && st == DSQL_EPARSE)
            st = dsql__error(err, resp->status >= 500 ? DSQL_ESERVER : DSQL_ECREDENTIALS,
                             "%s: %s answered HTTP %ld (content type %s, not an STS error "
                             "document)",
                             what, host, resp->status,
                             resp->content_type ? resp->content_type : "none");
        return st;
    }
    if (resp->status != 200) {
        const char *code = text_of(&x, F_CODE), *msg = text_of(&x, F_MESSAGE);
        dsql_status s = resp->status >= 500 ? DSQL_ESERVER : DSQL_ECREDENTIALS;
        if (code && strcmp(code, "ExpiredToken") == 0)
            s = DSQL_EEXPIRED;
        st = dsql__error(err, s, "%s: %s answered HTTP %ld: %s%s%s", what, host, resp->status,
                         code ? code : "(no error code)", msg ? ": " : "", msg ? msg : "");
        sts_xml_free(&x);
        return st;
    }
    const char *akid = text_of(&x, F_AKID), *secret = text_of(&x, F_SECRET);
    const char *token = text_of(&x, F_TOKEN), *exp = text_of(&x, F_EXP);
    int64_t expiration = 0;
    const char *missing = !akid ? "AccessKeyId" : !secret ? "SecretAccessKey"
                                             : !token    ? "SessionToken"
                                             : !exp      ? "Expiration"
                                                         : NULL;
    if (missing) {
        st = dsql__error(err, DSQL_EPARSE, "%s: the response from %s has no Credentials/%s",
                         what, host, missing);
    } else if (!dsql__utc_parse_iso8601(exp, &expiration)) {
        st = dsql__error(err, DSQL_EPARSE,
                         "%s: Credentials/Expiration from %s is not an ISO 8601 time", what,
                         host);
    } else if (expiration <= dsql__now()) {
        st = dsql__error(err, DSQL_EEXPIRED,
                         "%s: the credentials returned by %s have already expired (%s)", what,
                         host, exp);
    } else {
        dsql_credentials view = {(char *)akid, (char *)secret, (char *)token, expiration};
        st = dsql_credentials_copy(out, &view, err);
    }
    sts_xml_free(&x);
    return st;
}

/* ---- requests ------------------------------------------------------- */

static const char *partition_suffix(const char *region)
{
    return strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

static dsql_status sts_endpoint(const char *what, const char *region, char **url,
                                dsql_error *err)
{
    const char *ep = dsql__env_nonempty("AWS_ENDPOINT_URL_STS");
    if (!ep)
        ep = dsql__env_nonempty("AWS_ENDPOINT_URL");
    if (ep) {
        *url = dsql__strdup(ep);
    } else {
        size_t n = strlen(region) + 40;
        if ((*url = dsql__malloc(n)))
            snprintf(*url, n, "https://sts.%s.%s/", region, partition_suffix(region));
    }
    return *url ? DSQL_OK : dsql__error(err, DSQL_ENOMEM, "%s: out of memory", what);
}

static void form_pair(dsql__strbuf *sb, const char *k, const char *v)
{
    if (sb->len)
        dsql__sb_putc(sb, '&');
    dsql__sb_puts(sb, k);
    dsql__sb_putc(sb, '=');
    dsql__sb_encoded(sb, v, strlen(v), 0);
}

static int valid_session_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("_+=,.@-", *s)))
            return 0;
    return 1;
}

/* Builds the form body shared by both calls. */
static dsql_status sts_body(const char *what, const char *action,
                            const dsql__assume_role_params *p, const char *web_token,
                            char **body, dsql_error *err)
{
    *body = NULL;
    if (!p || !p->role_arn || !p->role_arn[0])
        return dsql__error(err, DSQL_EINVAL, "%s: role_arn is empty", what);
    char gen[40];
    const char *session = p->role_session_name;
    if (!session || !session[0]) {
        snprintf(gen, sizeof gen, "dsqlauth-%lld", (long long)dsql__now());
        session = gen;
    } else if (!valid_session_name(session)) {
        return dsql__error(err, DSQL_ECONFIG,
                           "%s: role_session_name \"%.64s\" must be 2..64 characters of "
                           "A-Za-z0-9_+=,.@-",
                           what, session);
    }
    if (p->duration_seconds < 0 || (p->duration_seconds && p->duration_seconds < 900) ||
        p->duration_seconds > 43200)
        return dsql__error(err, DSQL_ECONFIG, "%s: duration_seconds %d is outside 900..43200",
                           what, p->duration_seconds);
    dsql__strbuf sb = {0};
    form_pair(&sb, "Action", action);
    form_pair(&sb, "Version", STS_VERSION);
    form_pair(&sb, "RoleArn", p->role_arn);
    form_pair(&sb, "RoleSessionName", session);
    if (p->external_id && p->external_id[0])
        form_pair(&sb, "ExternalId", p->external_id);
    if (p->duration_seconds) {
        char d[16];
        snprintf(d, sizeof d, "%d", p->duration_seconds);
        form_pair(&sb, "DurationSeconds", d);
    }
    for (size_t i = 0; i < p->policy_arn_count; i++) {
        char key[48];
        snprintf(key, sizeof key, "PolicyArns.member.%u.arn", (unsigned)(i + 1) % 100000u);
        form_pair(&sb, key, p->policy_arns[i]);
    }
    if (web_token)
        form_pair(&sb, "WebIdentityToken", web_token);
    if (!(*body = dsql__sb_take(&sb))) {
        dsql__sb_free(&sb);
        return dsql__error(err, DSQL_ENOMEM, "%s: out of memory", what);
    }
    return DSQL_OK;
}

dsql_status dsql__sts_check_params(const char *what, const dsql__assume_role_params *p,
                                   dsql_error *err)
{
    char *body = NULL;
    dsql_status st = sts_body(what, "AssumeRole", p, NULL, &body, err);
    dsql__free_secret(body);
    return st;
}

static dsql_status sts_call(const char *what, const dsql_credentials *source,
                            const dsql__assume_role_params *p, const char *action,
                            const char *web_token, dsql_credentials *out, dsql_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!out)
        return dsql__error(err, DSQL_EINVAL, "%s: output is NULL", what);
    const char *region = p && p->region && p->region[0] ? p->region : "us-east-1";
    char *body = NULL, *url = NULL, *host = NULL, *host_header = NULL, *path = NULL;
    dsql_sigv4_result sig;
    memset(&sig, 0, sizeof sig);
    dsql_status st = sts_body(what, action, p, web_token, &body, err);
    if (st == DSQL_OK && !dsql__region_is_valid(region))
        st = dsql__error(err, DSQL_ECONFIG, "%s: region \"%.63s\" is not a valid AWS region "
                         "name", what, region);
    if (st == DSQL_OK)
        st = sts_endpoint(what, region, &url, err);
    if (st == DSQL_OK) {
        st = dsql__http_url_parts(url, NULL, &host, &host_header, &path, err);
        if (st == DSQL_EINVAL)
            st = dsql__error(err, DSQL_ECONFIG, "%s: the STS endpoint \"%s\" is not an "
                             "http(s) URL", what, url);
    }
    dsql__http_header headers[6];
    size_t nh = 0;
    headers[nh++] = (dsql__http_header){"Host", host_header};
    headers[nh++] =
        (dsql__http_header){"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    if (st == DSQL_OK && source) {
        unsigned char digest[SHA256_DIGEST_LENGTH];
        char payload_hex[65];
        SHA256((const unsigned char *)body, strlen(body), digest);
        dsql__hex(payload_hex, digest, sizeof digest);
        payload_hex[64] = '\0';
        dsql_sigv4_pair signed_headers[2] = {{"Host", host_header},
                                             {"Content-Type", headers[1].value}};
        dsql_sigv4_request sreq = {.version = DSQL_STRUCT_VERSION,
                                   .mode = DSQL_SIGV4_HEADER,
                                   .method = "POST",
                                   .path = path,
                                   .normalize_path = 1,
                                   .headers = signed_headers,
                                   .header_count = 2,
                                   .payload_sha256 = payload_hex,
                                   .region = region,
                                   .service = "sts",
                                   .time = dsql__now()};
        st = dsql__sigv4_sign(&sreq, source, &sig, err);
        if (st == DSQL_OK) {
            headers[nh++] = (dsql__http_header){"X-Amz-Date", sig.amz_date};
            if (source->session_token && source->session_token[0])
                headers[nh++] =
                    (dsql__http_header){"X-Amz-Security-Token", source->session_token};
            headers[nh++] = (dsql__http_header){"Authorization", sig.authorization};
        } else if (st != DSQL_ENOMEM) {
            char why[sizeof err->message];
            snprintf(why, sizeof why, "%s", err ? err->message : "invalid request");
            st = dsql__error(err, st, "%s: cannot sign the request: %s", what, why);
        }
    }
    if (st == DSQL_OK) {
        dsql__log(DSQL_LOG_DEBUG, "%s: role %s in %s via %s", what, p->role_arn, region, host);
        dsql__http_request req = {.what = what,
                                  .method = "POST",
                                  .url = url,
                                  .headers = headers,
                                  .header_count = nh,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .connect_timeout_ms = 5000,
                                  .timeout_ms = 15000};
        dsql__http_response resp;
        st = dsql__http_perform_retry(&req, 3, &resp, err);
        if (st == DSQL_OK) {
            st = dsql__sts_parse_response(what, host, &resp, out, err);
            dsql__http_response_clear(&resp);
        }
    }
    dsql__sigv4_result_clear(&sig);
    dsql__free_secret(body);
    dsql__free(url);
    dsql__free(host);
    dsql__free(host_header);
    dsql__free(path);
    if (st != DSQL_OK)
        dsql_credentials_clear(out);
    return st;
}

dsql_status dsql__sts_assume_role(const dsql_credentials *source,
                                  const dsql__assume_role_params *p, dsql_credentials *out,
                                  dsql_error *err)
{
    if (!source || !source->access_key_id || !source->access_key_id[0] ||
        !source->secret_access_key || !source->secret_access_key[0]) {
        if (out)
            memset(out, 0, sizeof *out);
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "STS AssumeRole: the source credentials are missing");
    }
    return sts_call("STS AssumeRole", source, p, "AssumeRole", NULL, out, err);
}

dsql_status dsql__sts_assume_role_with_web_identity(const dsql__assume_role_params *p,
                                                    const char *web_identity_token,
                                                    dsql_credentials *out, dsql_error *err)
{
    if (!web_identity_token || !web_identity_token[0]) {
        if (out)
            memset(out, 0, sizeof *out);
        return dsql__error(err, DSQL_ECREDENTIALS,
                           "STS AssumeRoleWithWebIdentity: the web identity token is empty");
    }
    return sts_call("STS AssumeRoleWithWebIdentity", NULL, p, "AssumeRoleWithWebIdentity",
                    web_identity_token, out, err);
}

/* ---- the web identity provider (environment) ------------------------ */

#define WI "web identity"

static dsql_status web_identity_get(void *self, dsql_credentials *out, dsql_error *err)
{
    (void)self;
    const char *file = dsql__env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *arn = dsql__env_nonempty("AWS_ROLE_ARN");
    if (!file && !arn)
        return dsql__error(err, DSQL_ECREDENTIALS,
                           WI ": AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set");
    if (!file || !arn)
        return dsql__error(err, DSQL_ECREDENTIALS, WI ": %s is set but %s is not",
                           file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                           file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
    char *token = NULL;
    dsql_status st =
        dsql__read_token_file(WI, "AWS_WEB_IDENTITY_TOKEN_FILE", file, WEB_TOKEN_MAX, &token, err);
    if (st != DSQL_OK)
        return st;
    const char *region = dsql__env_nonempty("AWS_REGION");
    if (!region)
        region = dsql__env_nonempty("AWS_DEFAULT_REGION");
    dsql__assume_role_params p = {.role_arn = arn,
                                  .role_session_name = dsql__env_nonempty("AWS_ROLE_SESSION_NAME"),
                                  .region = region};
    st = dsql__sts_assume_role_with_web_identity(&p, token, out, err);
    dsql__free_secret(token);
    return st;
}

static const dsql_credentials_provider_vtable WEB_IDENTITY_VTABLE = {DSQL_STRUCT_VERSION,
                                                                     web_identity_get, NULL};

dsql_credentials_provider *dsql_credentials_provider_web_identity(dsql_error *err)
{
    return dsql_credentials_provider_new(&WEB_IDENTITY_VTABLE, NULL, err);
}
