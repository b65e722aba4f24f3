/* The aws-c-auth SigV4 suite, query-signing outputs: canonical request,
 * string to sign, signature and signed query for all 38 cases. */
#include <cjson/cJSON.h>
#include <openssl/sha.h>
#include <dirent.h>
#include <strings.h>

#include "testutil.h"
#include "sigv4.h"

static char *case_names[64];
static int n_cases;

static void load_case_names(void)
{
    const char *dir = getenv("DSQL_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/sigv4", dir ? dir : "test/data");
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && n_cases < 64)
        if (e->d_name[0] != '.' && strcmp(e->d_name, "LICENSE") && strcmp(e->d_name, "README.md"))
            case_names[n_cases++] = strdup(e->d_name);
    closedir(d);
}

static char *case_file(const char *name, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "sigv4/%s/%s", name, file);
    char *s = test_read_file(rel, NULL);
    ck_assert_msg(s != NULL, "missing %s", rel);
    return s;
}

typedef struct parsed_request {
    char method[16];
    char *path;
    dsql_sigv4_pair query[16];
    size_t n_query;
    dsql_sigv4_pair headers[16];
    size_t n_headers;
    char *body;
    char *owned[16]; /* continuation-joined header values */
    size_t n_owned;
} parsed_request;

/* request.txt: "METHOD target HTTP/1.1", header lines (indented lines
 * continue the previous value), empty line, body. Modifies text in place. */
static void parse_request(char *text, parsed_request *r)
{
    memset(r, 0, sizeof *r);
    char *line_end = strchr(text, '\n');
    ck_assert(line_end);
    *line_end = '\0';
    char *sp1 = strchr(text, ' ');
    char *sp2 = strrchr(text, ' ');
    ck_assert(sp1 && sp2 && sp1 < sp2);
    *sp1 = '\0';
    *sp2 = '\0';
    snprintf(r->method, sizeof r->method, "%s", text);
    char *target = sp1 + 1;
    char *q = strchr(target, '?');
    if (q) {
        *q++ = '\0';
        for (char *tok = strtok(q, "&"); tok; tok = strtok(NULL, "&")) {
            char *eq = strchr(tok, '=');
            if (eq)
                *eq = '\0';
            r->query[r->n_query].name = tok;
            r->query[r->n_query++].value = eq ? eq + 1 : "";
        }
    }
    r->path = target;
    char *p = line_end + 1;
    while (*p && *p != '\n') {
        char *end = strchr(p, '\n');
        char *next = end ? end + 1 : p + strlen(p);
        if (*p == ' ' || *p == '\t') { /* continuation: join with the newline kept */
            const char *prev = r->headers[r->n_headers - 1].value;
            size_t n = strlen(prev), m = end ? (size_t)(end - p) : strlen(p);
            char *joined = malloc(n + m + 2);
            ck_assert_ptr_nonnull(joined);
            memcpy(joined, prev, n);
            joined[n] = '\n';
            memcpy(joined + n + 1, p, m);
            joined[n + 1 + m] = '\0';
            r->headers[r->n_headers - 1].value = joined;
            r->owned[r->n_owned++] = joined;
        } else {
            if (end)
                *end = '\0';
            char *colon = strchr(p, ':');
            ck_assert(colon);
            *colon = '\0';
            r->headers[r->n_headers].name = p;
            r->headers[r->n_headers++].value = colon + 1;
        }
        p = next;
    }
    r->body = *p == '\n' ? p + 1 : p;
}

static int param_in(const char *query, const char *pair)
{
    size_t n = strlen(pair);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len == n && strncasecmp(p, pair, n) == 0)
            return 1;
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

START_TEST(test_suite_case)
{
    const char *name = case_names[_i];
    char *context = case_file(name, "context.json");
    char *request = case_file(name, "request.txt");
    char *want_creq = case_file(name, "query-canonical-request.txt");
    char *want_sts = case_file(name, "query-string-to-sign.txt");
    char *want_sig = case_file(name, "query-signature.txt");
    char *want_signed = case_file(name, "query-signed-request.txt");

    cJSON *ctx = cJSON_Parse(context);
    ck_assert(ctx);
    cJSON *cj = cJSON_GetObjectItem(ctx, "credentials");
    cJSON *token = cJSON_GetObjectItem(cj, "token");
    dsql_credentials creds = {
        cJSON_GetObjectItem(cj, "access_key_id")->valuestring,
        cJSON_GetObjectItem(cj, "secret_access_key")->valuestring,
        token ? token->valuestring : NULL, 0};

    parsed_request r;
    parse_request(request, &r);
    int sign_body = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "sign_body"));
    char body_hash[65];
    if (sign_body) {
        unsigned char d[32];
        SHA256((unsigned char *)r.body, strlen(r.body), d);
        for (int i = 0; i < 32; i++)
            sprintf(body_hash + 2 * i, "%02x", d[i]);
    }
    int64_t t = 0;
    ck_assert_str_eq(cJSON_GetObjectItem(ctx, "timestamp")->valuestring, "2015-08-30T12:36:00Z");
    t = 1440938160; /* 2015-08-30T12:36:00Z */

    dsql_sigv4_request req = {
        .version = DSQL_STRUCT_VERSION,
        .mode = DSQL_SIGV4_QUERY,
        .method = r.method,
        .path = r.path,
        .normalize_path = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "normalize")),
        .query = r.query,
        .query_count = r.n_query,
        .headers = r.headers,
        .header_count = r.n_headers,
        .payload_sha256 = sign_body ? body_hash : NULL,
        .region = cJSON_GetObjectItem(ctx, "region")->valuestring,
        .service = cJSON_GetObjectItem(ctx, "service")->valuestring,
        .time = t,
        .expires = (uint32_t)cJSON_GetObjectItem(ctx, "expiration_in_seconds")->valuedouble,
        .omit_session_token = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "omit_session_token")),
    };
    dsql_sigv4_result res;
    dsql_error err;
    ck_assert_int_eq(dsql__sigv4_sign(&req, &creds, &res, &err), DSQL_OK);
    ck_assert_str_eq(res.canonical_request, want_creq);
    ck_assert_str_eq(res.string_to_sign, want_sts);
    ck_assert_str_eq(res.signature, want_sig);

    /* signed request line: same method and path, same parameter set */
    char *line_end = strchr(want_signed, '\n');
    *line_end = '\0';
    char *target = strchr(want_signed, ' ') + 1;
    *strrchr(target, ' ') = '\0';
    char *q = strchr(target, '?');
    *q++ = '\0';
    ck_assert_str_eq(target, r.path);
    size_t n_want = 1, n_got = 1;
    for (char *c = q; *c; c++)
        n_want += *c == '&';
    for (char *c = res.query; *c; c++)
        n_got += *c == '&';
    ck_assert_uint_eq(n_want, n_got);
    for (char *tok = strtok(q, "&"); tok; tok = strtok(NULL, "&"))
        ck_assert_msg(param_in(res.query, tok), "%s: missing %s in %s", name, tok, res.query);

    dsql__sigv4_result_clear(&res);
    ck_assert_ptr_null(res.query);
    for (size_t i = 0; i < r.n_owned; i++)
        free(r.owned[i]);
    cJSON_Delete(ctx);
    free(context), free(request), free(want_creq), free(want_sts), free(want_sig),
        free(want_signed);
}
END_TEST

START_TEST(test_suite_complete)
{
    ck_assert_int_eq(n_cases, 38);
}
END_TEST

/* Header mode: the AWS SigV4 suite's get-vanilla Authorization signature. */
START_TEST(test_header_mode_vanilla)
{
    dsql_credentials creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, 0};
    dsql_sigv4_pair headers[] = {{"Host", "example.amazonaws.com"}};
    dsql_sigv4_request req = {.version = DSQL_STRUCT_VERSION, .mode = DSQL_SIGV4_HEADER,
                              .method = "GET", .path = "/", .headers = headers,
                              .header_count = 1, .region = "us-east-1",
                              .service = "service", .time = 1440938160};
    dsql_sigv4_result res;
    ck_assert_int_eq(dsql__sigv4_sign(&req, &creds, &res, NULL), DSQL_OK);
    ck_assert_str_eq(res.amz_date, "20150830T123600Z");
    ck_assert_str_eq(res.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                     "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    dsql__sigv4_result_clear(&res);
}
END_TEST

START_TEST(test_rejects_bad_requests)
{
    dsql_credentials creds = {"AKID", "SECRET", NULL, 0};
    dsql_sigv4_pair headers[] = {{"Host", "h"}};
    dsql_sigv4_request req = {.version = DSQL_STRUCT_VERSION, .method = "GET", .path = "/",
                              .headers = headers, .header_count = 1, .region = "r",
                              .service = "s", .time = 1, .expires = 0};
    dsql_sigv4_result res;
    dsql_error err;
    ck_assert_int_eq(dsql__sigv4_sign(&req, &creds, &res, &err), DSQL_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "expires"));
    req.expires = 60;
    req.header_count = 0;
    ck_assert_int_eq(dsql__sigv4_sign(&req, &creds, &res, &err), DSQL_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "Host"));
    req.header_count = 1;
    req.region = "";
    ck_assert_int_eq(dsql__sigv4_sign(&req, &creds, &res, &err), DSQL_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "region"));
    req.region = "r";
    creds.secret_access_key = "";
    ck_assert_int_eq(dsql__sigv4_sign(&req, &creds, &res, &err), DSQL_ECREDENTIALS);
}
END_TEST

/* Fail the n-th allocation for every n until signing succeeds: each
 * failure must be DSQL_ENOMEM with nothing leaked and an empty result. */
START_TEST(test_allocation_failures)
{
    dsql_credentials creds = {"AKID", "SECRET", "TOKEN/+=", 0};
    dsql_sigv4_pair headers[] = {{"Host", "h"}, {"X-Dup", "a"}, {"x-dup", " b  c "}};
    dsql_sigv4_pair query[] = {{"b", "2"}, {"a", "%20x"}};
    dsql_sigv4_request req = {.version = DSQL_STRUCT_VERSION, .method = "GET",
                              .path = "/a/./b/../c//", .normalize_path = 1, .query = query,
                              .query_count = 2, .headers = headers, .header_count = 3,
                              .region = "r", .service = "s", .time = 1, .expires = 60};
    for (int mode = 0; mode < 2; mode++) {
        req.mode = mode ? DSQL_SIGV4_HEADER : DSQL_SIGV4_QUERY;
        test_use_failing_allocator();
        dsql_status st = DSQL_ENOMEM;
        long n;
        for (n = 1; st == DSQL_ENOMEM && n < 10000; n++) {
            dsql_sigv4_result res;
            dsql_error err;
            test_alloc_fail_nth(n);
            st = dsql__sigv4_sign(&req, &creds, &res, &err);
            if (st == DSQL_ENOMEM) {
                ck_assert_ptr_null(res.canonical_request);
                ck_assert_ptr_null(res.query);
                ck_assert_ptr_null(res.authorization);
            } else {
                ck_assert_int_eq(st, DSQL_OK);
                dsql__sigv4_result_clear(&res);
            }
            ck_assert_msg(test_alloc_live() == 0, "leak after failing allocation %ld", n);
        }
        dsql_set_allocator(NULL, NULL, NULL);
        ck_assert_int_eq(st, DSQL_OK);
        ck_assert_int_gt(n, 10); /* the loop really exercised failures */
    }
}
END_TEST

static Suite *sigv4_suite(void)
{
    load_case_names();
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("aws-c-auth suite");
    tcase_add_test(tc, test_suite_complete);
    tcase_add_loop_test(tc, test_suite_case, 0, n_cases);
    tcase_add_test(tc, test_header_mode_vanilla);
    tcase_add_test(tc, test_rejects_bad_requests);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(sigv4_suite)
