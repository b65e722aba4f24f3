/* The AWS shared config / credentials file format (not naive INI): the
 * parsed, merged view of both files. Internal to lib/creds. */
#ifndef DSQLAUTH_CREDS_PROFILE_PARSER_H
#define DSQLAUTH_CREDS_PROFILE_PARSER_H

#include "../internal.h"

/* Positions of array entries by the hash of their name: open addressing,
 * a power-of-two number of slots, at most half full. Lookups in constant
 * time keep parsing linear in the size of the file (a linear search per
 * section header made 100k profiles take minutes). */
typedef struct dsql__index_slot {
    size_t pos1; /* position + 1; 0: empty */
    size_t hash;
} dsql__index_slot;
typedef struct dsql__name_index {
    dsql__index_slot *slots;
    size_t cap;
} dsql__name_index;

typedef struct dsql__prop {
    char *key;   /* lower-cased */
    char *value; /* may hold a secret: wiped when freed */
    size_t hash; /* of key */
} dsql__prop;

typedef enum dsql__section_kind { DSQL__SECTION_PROFILE = 0, DSQL__SECTION_SSO_SESSION = 1 } dsql__section_kind;

typedef struct dsql__section {
    dsql__section_kind kind;
    char *name;
    size_t name_len;
    dsql__prop *props;
    size_t n, cap;
    dsql__name_index by_key; /* empty until the section has a few properties */
} dsql__section;

typedef struct dsql__profiles {
    dsql__section *secs;
    size_t n, cap;
    dsql__name_index by_name; /* (kind, name) */
} dsql__profiles;

typedef enum dsql__file_kind { DSQL__FILE_CONFIG = 0, DSQL__FILE_CREDENTIALS = 1 } dsql__file_kind;

/* Parse one file's text and merge it into *set (initialise *set to zeros
 * first). Merge config before credentials so the credentials file wins.
 * `path` only names the file in error messages. DSQL_ECONFIG on a syntax
 * error or a NUL byte (with the line number), DSQL_ENOMEM. Time linear in
 * len. */
dsql_status dsql__profiles_parse(dsql__profiles *set, const char *text, size_t len,
                                 dsql__file_kind kind, const char *path, dsql_error *err);

/* The most a profile file may hold: a larger one is refused, not read to
 * the end (so /dev/zero or a runaway generator cannot exhaust memory).
 * Documented in dsql_credentials_provider_profile(3). */
#define DSQL__PROFILE_FILE_MAX ((size_t)16 << 20)

/* Read the config file (AWS_CONFIG_FILE, else ~/.aws/config) and the
 * credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials);
 * missing files count as empty. A file larger than DSQL__PROFILE_FILE_MAX
 * is DSQL_ECONFIG; a FIFO with no writer is DSQL_EIO at once (never a
 * hang); a pipe or FIFO with a writer is read to its end. */
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

/* For a file just read that holds secrets: when stat() shows any group or
 * other permission bit (077), logs at DSQL_LOG_WARN "<kind> <path> holds
 * <holds> but is accessible to group or others (mode 0NNN); restrict it
 * with chmod 600". Names the path and mode only, never the content; silent
 * when the file is private or cannot be stat()ed. The caller still uses the
 * file (as the AWS CLI and SDKs do). Used for the shared config and
 * credentials files (profile_parser.c) and the SSO token cache (profile.c). */
void dsql__warn_if_exposed(const char *kind, const char *path, const char *holds);

#endif
