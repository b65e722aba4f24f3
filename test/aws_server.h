/* Starts test/aws_test_server.py (loopback stand-in for IMDS, ECS, STS and
 * SSO) and talks to its control plane. Include from one Check suite; call
 * aws_server_start() in main() before srunner_run_all (the forked tests
 * inherit it) and aws_server_stop() after, or use AWS_SERVER_TEST_MAIN.
 * Only 127.0.0.1 is used. */
#ifndef DSQL_AWS_SERVER_H
#define DSQL_AWS_SERVER_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "testutil.h"

static pid_t aws_server_pid = -1;
static int aws_server_port;
static char aws_server_url[64]; /* http://127.0.0.1:<port> */

/* Proxies and AWS settings from the caller's environment must not leak
 * into the tests. */
static inline void aws_server_clean_env(void)
{
    static const char *const vars[] = {
        "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_V1_DISABLED",
        "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_REGION",
        "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

/* Runs the script with extra arguments (NULL-terminated list, may be
 * NULL); fills *pid and *port. Returns 0 on success. */
static inline int aws_server_spawn(const char *const *extra, pid_t *pid_out, int *port_out)
{
    const char *script = getenv("DSQL_AWS_TEST_SERVER");
    if (!script)
        script = "test/aws_test_server.py";
    const char *argv[16] = {"python3", script, "--host", "127.0.0.1", "--port", "0"};
    size_t argc = 6;
    for (; extra && *extra && argc < 15; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[64] = "";
    int ok = f && fgets(line, sizeof line, f) && sscanf(line, "PORT %d", port_out) == 1;
    if (f)
        fclose(f);
    else
        close(fds[0]);
    if (!ok) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    *pid_out = pid;
    return 0;
}

static inline int aws_server_start(void)
{
    if (aws_server_spawn(NULL, &aws_server_pid, &aws_server_port) != 0)
        return -1;
    snprintf(aws_server_url, sizeof aws_server_url, "http://127.0.0.1:%d", aws_server_port);
    return 0;
}

static inline void aws_server_stop(void)
{
    if (aws_server_pid > 0) {
        kill(aws_server_pid, SIGTERM);
        waitpid(aws_server_pid, NULL, 0);
        aws_server_pid = -1;
    }
}

/* For main(): aws_server_clean_env() and aws_server_start(), saying on
 * stderr why the server did not start. Returns 0 on success. */
static inline int aws_server_start_clean(void)
{
    aws_server_clean_env();
    if (aws_server_start() != 0) {
        fprintf(stderr, "cannot start test/aws_test_server.py (python3 needed)\n");
        return -1;
    }
    return 0;
}

/* main() of a suite whose tests all talk to the server. */
#define AWS_SERVER_TEST_MAIN(suite_fn)                                          \
    int main(void)                                                              \
    {                                                                           \
        if (aws_server_start_clean() != 0)                                      \
            return EXIT_FAILURE;                                                \
        int failed = test_run_suite(suite_fn());                                \
        aws_server_stop();                                                      \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                       \
    }

static inline char *aws_server_call(const char *method, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", aws_server_url, path);
    dsql__http_request req = {.what = "test control",
                              .method = method,
                              .url = url,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .timeout_ms = 5000,
                              .no_proxy = 1};
    dsql__http_response resp;
    if (dsql__http_perform(&req, &resp, NULL) != DSQL_OK || resp.status != 200) {
        dsql__http_response_clear(&resp);
        return NULL;
    }
    char *out = strdup(resp.body);
    dsql__http_response_clear(&resp);
    return out;
}

/* Replaces the server configuration (JSON object; see the script) and
 * resets its counters. Returns 0 on success. */
static inline int aws_server_config(const char *json)
{
    char *r = aws_server_call("POST", "/_control/config", json ? json : "{}");
    free(r);
    return r ? 0 : -1;
}

/* {"counts": {...}, "last": {...}}; cJSON_Delete it. */
static inline cJSON *aws_server_stats(void)
{
    char *r = aws_server_call("GET", "/_control/stats", NULL);
    cJSON *j = r ? cJSON_Parse(r) : NULL;
    free(r);
    return j;
}

/* Requests the server saw on a route since the last aws_server_config. */
static inline int aws_server_count(const char *route)
{
    cJSON *j = aws_server_stats();
    const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"), route);
    int v = cJSON_IsNumber(n) ? n->valueint : (j ? 0 : -1);
    cJSON_Delete(j);
    return v;
}

/* Total requests on every route. */
static inline int aws_server_total(void)
{
    cJSON *j = aws_server_stats();
    int total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "counts")) total += c->valueint;
    cJSON_Delete(j);
    return j ? total : -1;
}

/* A copy of a field of the last request on a route ("body", "path", or
 * "headers.<Name>"); NULL if none. free() it. */
static inline char *aws_server_last(const char *route, const char *field)
{
    cJSON *j = aws_server_stats();
    const cJSON *r = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "last"), route);
    const cJSON *v = NULL;
    if (strncmp(field, "headers.", 8) == 0)
        v = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "headers"), field + 8);
    else
        v = cJSON_GetObjectItem(r, field);
    char *out = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
    cJSON_Delete(j);
    return out;
}

#endif
