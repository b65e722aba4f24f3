/* The AWS shared config / credentials file format (not naive INI): the
 * parsed, merged view of both files. Internal to lib/creds. */
#ifndef DSQLAUTH_CREDS_PROFILE_PARSER_H
#define DSQLAUTH_CREDS_PROFILE_PARSER_H

#include "../internal.h"

typedef struct dsql__prop {
    char *key;   /* lower-cased */
    char *value; /* may hold a secret: wiped when freed */
} dsql__prop;

typedef enum dsql__section_kind { DSQL__SECTION_PROFILE = 0, DSQL__SECTION_SSO_SESSION = 1 } dsql__section_kind;

typedef struct dsql__section {
    dsql__section_kind kind;
    char *name;
    dsql__prop *props;
    size_t n, cap;
} dsql__section;

typedef struct dsql__profiles {
    dsql__section *secs;
    size_t n, cap;
} dsql__profiles;

typedef enum dsql__file_kind { DSQL__FILE_CONFIG = 0, DSQL__FILE_CREDENTIALS = 1 } dsql__file_kind;

/* Parse one file's text and merge it into *set (initialise *set to zeros
 * first). Merge config before credentials so the credentials file wins.
 * `path` only names the file in error messages. DSQL_ECONFIG on a syntax
 * error (with the line number), DSQL_ENOMEM. */
dsql_status dsql__profiles_parse(dsql__profiles *set, const char *text, size_t len,
                                 dsql__file_kind kind, const char *path, dsql_error *err);

/* Read the config file (AWS_CONFIG_FILE, else ~/.aws/config) and the
 * credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials);
 * missing files count as empty. */
dsql_status dsql__profiles_load(dsql__profiles *set, dsql_error *err);

/* The path of a file as the loader picks it ("~" expanded with $HOME);
 * heap string, NULL when neither the variable nor HOME is set or on ENOMEM. */
char *dsql__profiles_path(dsql__file_kind kind);

/* The profile name to use: `explicit` when non-empty, else AWS_PROFILE,
 * else "default". Never NULL. */
const char *dsql__profile_name(const char *explicit_name);

const dsql__section *dsql__profiles_find(const dsql__profiles *set, dsql__section_kind kind,
                                         const char *name);
/* A property's value, NULL when absent. */
const char *dsql__section_get(const dsql__section *sec, const char *key);
/* Same, but an empty value counts as absent. */
const char *dsql__section_get_nonempty(const dsql__section *sec, const char *key);

void dsql__profiles_free(dsql__profiles *set);

#endif
