/* Internal: how a profile turns into credentials (a plan: one base source
 * plus zero or more AssumeRole hops), the credential_process runner, and the
 * profile-provider hook used by the default chain. */
#ifndef DSQLAUTH_CREDS_PROFILE_H
#define DSQLAUTH_CREDS_PROFILE_H

#include "profile_parser.h"

typedef enum dsql__base_kind {
    DSQL__BASE_STATIC = 0,   /* aws_access_key_id / aws_secret_access_key */
    DSQL__BASE_NAMED,        /* credential_source */
    DSQL__BASE_WEB_IDENTITY, /* web_identity_token_file + role_arn */
    DSQL__BASE_SSO,          /* sso_session or legacy sso_start_url */
    DSQL__BASE_PROCESS       /* credential_process */
} dsql__base_kind;

typedef struct dsql__profile_plan {
    dsql__base_kind base;
    const dsql__section *base_profile; /* the profile that holds the base */
    const char *named_source;          /* DSQL__BASE_NAMED */
    const dsql__section *sso_session;  /* DSQL__BASE_SSO with sso_session */
    /* AssumeRole hops as found, from the selected profile outwards: run
     * them last to first, each signing with the previous result. */
    const dsql__section **hops;
    size_t n_hops;
} dsql__profile_plan;

/* Build the plan for profile `name`. On failure *absent (if given) is 1
 * when the profile does not exist or holds no credential settings at all
 * (so a default chain may fall through), 0 for a real configuration error.
 * Errors name the profile(s) and, for a loop, the whole cycle. */
dsql_status dsql__profile_plan_build(const dsql__profiles *set, const char *name,
                                     dsql__profile_plan *plan, int *absent, dsql_error *err);
void dsql__profile_plan_free(dsql__profile_plan *plan);
/* Carry the plan out (files, processes, STS/SSO calls). */
dsql_status dsql__profile_plan_run(const dsql__profiles *set, const dsql__profile_plan *plan,
                                   dsql_credentials *out, dsql_error *err);

/* Load the files, pick the profile (explicit, AWS_PROFILE, default) and
 * resolve it. *absent as for plan_build. */
dsql_status dsql__profile_resolve(const char *explicit_profile, dsql_credentials *out,
                                  int *absent, dsql_error *err);

/* credential_process: split `command` with shell-like quoting, run it
 * without a shell, at most timeout_ms, stderr lines to the log, parse the
 * Version 1 JSON on stdout. */
#define DSQL__PROCESS_TIMEOUT_MS 60000
dsql_status dsql__credential_process_run(const char *command, int timeout_ms,
                                         dsql_credentials *out, dsql_error *err);
/* Shell-like split: '...' literal, "..." with \\ \" \$ \` escapes, \x
 * outside quotes. *argv is a NULL-terminated heap array; free with
 * dsql__argv_free. DSQL_EINVAL on unbalanced quotes or an empty command. */
dsql_status dsql__split_command(const char *command, char ***argv, dsql_error *err);
void dsql__argv_free(char **argv);

#endif
