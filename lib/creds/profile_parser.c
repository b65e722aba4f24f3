/* A hand parser for the AWS shared config and credentials files, following
 * the rules of the AWS SDKs' shared profile-parser test suite (smithy-rs /
 * AWS CLI): '#' and ';' comments (inside property values only after
 * whitespace), continuation lines and sub-properties, CRLF, a UTF-8 BOM,
 * duplicate sections merged, duplicate keys last-wins, keys compared
 * case-insensitively, `[profile x]` in config vs `[x]` in credentials, and
 * values of any length (no line limit). */
#include "profile_parser.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_ws(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *n)
{
    while (*n && is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ws((*s)[*n - 1]))
        (*n)--;
}

static int valid_identifier(const char *s, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-/._%@:+", c)))
            return 0;
    }
    return 1;
}

/* ---- name indexes ------------------------------------------------------ */

#define NOT_FOUND ((size_t)-1)

/* FNV-1a: short names, no need for more. Not keyed: the files are the
 * user's own (a crafted file can make lookups slow, not wrong). */
static size_t hash_name(unsigned char kind, const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u;
    h = (h ^ kind) * 1099511628211u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return (size_t)h;
}

static void index_place(dsql__name_index *ix, size_t pos, size_t hash)
{
    size_t mask = ix->cap - 1, i = hash & mask;
    while (ix->slots[i].pos1)
        i = (i + 1) & mask;
    ix->slots[i].pos1 = pos + 1;
    ix->slots[i].hash = hash;
}

/* Room for `count` entries (at most half full); 0 on ENOMEM, the index
 * unchanged. */
static int index_reserve(dsql__name_index *ix, size_t count)
{
    if (count <= ix->cap / 2)
        return 1;
    size_t cap = ix->cap ? ix->cap : 16;
    while (count > cap / 2)
        cap *= 2;
    dsql__name_index grown = {dsql__calloc(cap, sizeof *grown.slots), cap};
    if (!grown.slots)
        return 0;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->slots[i].pos1)
            index_place(&grown, ix->slots[i].pos1 - 1, ix->slots[i].hash);
    dsql__free(ix->slots);
    *ix = grown;
    return 1;
}

/* ---- sections and properties ------------------------------------------ */

/* Below this many properties a section is searched linearly (most have
 * three or four; an index for each would cost more than it saves). */
#define PROPS_INDEXED_FROM 8

static void section_clear(dsql__section *sec)
{
    for (size_t i = 0; i < sec->n; i++) {
        dsql__free(sec->props[i].key);
        dsql__free_secret(sec->props[i].value);
    }
    dsql__free(sec->props);
    dsql__free(sec->name);
    dsql__free(sec->by_key.slots);
    memset(sec, 0, sizeof *sec);
}

void dsql__profiles_free(dsql__profiles *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        section_clear(&set->secs[i]);
    dsql__free(set->secs);
    dsql__free(set->by_name.slots);
    memset(set, 0, sizeof *set);
}

static dsql__section *find_section(const dsql__profiles *set, dsql__section_kind kind,
                                   const char *name, size_t n)
{
    const dsql__name_index *ix = &set->by_name;
    if (!ix->cap)
        return NULL;
    size_t hash = hash_name((unsigned char)kind, name, n), mask = ix->cap - 1;
    for (size_t i = hash & mask; ix->slots[i].pos1; i = (i + 1) & mask) {
        dsql__section *s = &set->secs[ix->slots[i].pos1 - 1];
        if (ix->slots[i].hash == hash && s->kind == kind && s->name_len == n &&
            memcmp(s->name, name, n) == 0)
            return s;
    }
    return NULL;
}

/* Find or append a section; the name is copied. NULL on ENOMEM. */
static dsql__section *get_section(dsql__profiles *set, dsql__section_kind kind, const char *name,
                                  size_t n)
{
    dsql__section *sec = find_section(set, kind, name, n);
    if (sec)
        return sec;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        dsql__section *secs = dsql__realloc(set->secs, cap * sizeof *secs);
        if (!secs)
            return NULL;
        set->secs = secs;
        set->cap = cap;
    }
    if (!index_reserve(&set->by_name, set->n + 1))
        return NULL;
    sec = &set->secs[set->n];
    memset(sec, 0, sizeof *sec);
    sec->kind = kind;
    if (!(sec->name = dsql__strndup(name, n)))
        return NULL;
    sec->name_len = n;
    index_place(&set->by_name, set->n, hash_name((unsigned char)kind, name, n));
    set->n++;
    return sec;
}

static size_t find_prop(const dsql__section *sec, const char *key, size_t hash)
{
    const dsql__name_index *ix = &sec->by_key;
    if (!ix->cap) {
        for (size_t i = 0; i < sec->n; i++)
            if (strcmp(sec->props[i].key, key) == 0)
                return i;
        return NOT_FOUND;
    }
    size_t mask = ix->cap - 1;
    for (size_t i = hash & mask; ix->slots[i].pos1; i = (i + 1) & mask) {
        size_t pos = ix->slots[i].pos1 - 1;
        if (ix->slots[i].hash == hash && strcmp(sec->props[pos].key, key) == 0)
            return pos;
    }
    return NOT_FOUND;
}

/* Index every property once the section is big enough to need it. */
static int index_props(dsql__section *sec)
{
    if (sec->n < PROPS_INDEXED_FROM)
        return 1;
    if (!index_reserve(&sec->by_key, sec->n))
        return 0;
    if (sec->n == PROPS_INDEXED_FROM) /* the index was just made: fill it */
        for (size_t i = 0; i + 1 < sec->n; i++)
            index_place(&sec->by_key, i, sec->props[i].hash);
    index_place(&sec->by_key, sec->n - 1, sec->props[sec->n - 1].hash);
    return 1;
}

/* Set key = value, taking ownership of both (freed on failure). The
 * property's position, NOT_FOUND on ENOMEM. */
static size_t put_prop(dsql__section *sec, char *key, char *value)
{
    size_t hash = hash_name(0, key, strlen(key));
    size_t pos = find_prop(sec, key, hash);
    if (pos != NOT_FOUND) {
        dsql__free(key);
        dsql__free_secret(sec->props[pos].value);
        sec->props[pos].value = value;
        return pos;
    }
    if (sec->n == sec->cap) {
        size_t cap = sec->cap ? sec->cap * 2 : 4; /* most profiles have a few keys */
        dsql__prop *props = dsql__realloc(sec->props, cap * sizeof *props);
        if (!props) {
            dsql__free(key);
            dsql__free_secret(value);
            return NOT_FOUND;
        }
        sec->props = props;
        sec->cap = cap;
    }
    sec->props[sec->n] = (dsql__prop){key, value, hash};
    sec->n++;
    if (!index_props(sec)) { /* undo: the index must cover every property */
        sec->n--;
        dsql__free(key);
        dsql__free_secret(value);
        return NOT_FOUND;
    }
    return sec->n - 1;
}

/* Trim, cut a comment ('#' or ';'; with need_ws only after whitespace),
 * trim again. */
static void prepare_line(const char **s, size_t *n, int need_ws)
{
    trim(s, n);
    int prev_ws = 0;
    for (size_t i = 0; i < *n; i++) {
        char c = (*s)[i];
        if ((c == '#' || c == ';') && (prev_ws || !need_ws)) {
            *n = i;
            break;
        }
        prev_ws = is_ws(c);
    }
    trim(s, n);
}

static dsql_status syntax(dsql_error *err, const char *path, size_t line, const char *msg)
{
    return dsql__error(err, DSQL_ECONFIG, "profile file %s, line %zu: %s", path ? path : "(text)",
                       line, msg);
}

/* A continuation line: append "\n" + text to the current value, growing
 * its buffer geometrically (*len, *cap track it) so that many
 * continuation lines stay linear. The old buffer is wiped. */
static int append_continuation(char **value, size_t *len, size_t *cap, const char *t, size_t tn)
{
    size_t need = *len + 1 + tn + 1;
    if (need > *cap) {
        size_t grown = *cap * 2 > need ? *cap * 2 : need;
        char *v = dsql__malloc(grown);
        if (!v)
            return 0;
        memcpy(v, *value, *len);
        OPENSSL_cleanse(*value, *len);
        dsql__free(*value);
        *value = v;
        *cap = grown;
    }
    (*value)[*len] = '\n';
    memcpy(*value + *len + 1, t, tn);
    *len += 1 + tn;
    (*value)[*len] = '\0';
    return 1;
}

/* Pass 1: raw sections keyed by their bracketed text, duplicates merged. */
static dsql_status parse_raw(dsql__profiles *raw, const char *text, size_t len, const char *path,
                             dsql_error *err)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    dsql__section *cur = NULL;
    size_t prop = NOT_FOUND;        /* the last property set in cur */
    size_t value_len = 0, value_cap = 0; /* of its value buffer */
    int subproperty = 0;
    size_t lineno = 0;
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p;
        size_t n = (size_t)((nl ? nl : end) - p);
        p = nl ? nl + 1 : end;
        lineno++;
        /* A NUL would silently cut a value short (AKIA\0X read as AKIA). */
        if (memchr(s, '\0', n))
            return syntax(err, path, lineno, "contains a NUL byte (profile files are text)");
        if (n && s[n - 1] == '\r')
            n--;
        const char *t = s;
        size_t tn = n;
        trim(&t, &tn);
        if (tn == 0 || s[0] == '#' || s[0] == ';')
            continue;
        if (s[0] == '[') {
            prepare_line(&t, &tn, 0);
            if (tn < 2 || t[tn - 1] != ']')
                return syntax(err, path, lineno, "Profile definition must end with ']'");
            cur = get_section(raw, DSQL__SECTION_PROFILE, t + 1, tn - 2);
            if (!cur)
                return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s", path);
            prop = NOT_FOUND;
            subproperty = 0;
            continue;
        }
        if (!cur)
            return syntax(err, path, lineno, "Expected a profile definition");
        if (is_ws(s[0])) { /* continuation or sub-property */
            if (prop == NOT_FOUND)
                return syntax(err, path, lineno,
                              "Expected a property definition, found continuation");
            if (subproperty) {
                const char *eq = memchr(t, '=', tn);
                if (!eq)
                    return syntax(err, path, lineno,
                                  "Expected an '=' sign defining a sub-property");
                const char *k = t;
                size_t kn = (size_t)(eq - t);
                trim(&k, &kn);
                if (!kn)
                    return syntax(err, path, lineno, "Sub-property did not have a name");
            }
            if (!append_continuation(&cur->props[prop].value, &value_len, &value_cap, t, tn))
                return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s", path);
            continue;
        }
        prepare_line(&t, &tn, 1);
        const char *eq = memchr(t, '=', tn);
        if (!eq)
            return syntax(err, path, lineno, "Expected an '=' sign defining a property");
        const char *k = t, *v = eq + 1;
        size_t kn = (size_t)(eq - t), vn = tn - kn - 1;
        trim(&k, &kn);
        trim(&v, &vn);
        if (!kn)
            return syntax(err, path, lineno, "Property did not have a name");
        char *key = dsql__strndup(k, kn);
        char *value = dsql__strndup(v, vn);
        if (!key || !value) {
            dsql__free(key);
            dsql__free_secret(value);
            return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s", path);
        }
        for (char *c = key; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        if ((prop = put_prop(cur, key, value)) == NOT_FOUND)
            return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s", path);
        value_len = vn;
        value_cap = vn + 1;
        subproperty = vn == 0;
    }
    return DSQL_OK;
}

static int all_keys_valid(const dsql__section *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (!valid_identifier(r->props[i].key, strlen(r->props[i].key)))
            return 0;
    return 1;
}

/* Move the valid properties of raw section r into the set's (kind, name). */
static int merge_into(dsql__profiles *set, dsql__section_kind kind, const char *name, size_t n,
                      dsql__section *r)
{
    dsql__section *dst = get_section(set, kind, name, n);
    if (!dst)
        return 0;
    if (dst->n == 0 && all_keys_valid(r)) { /* the usual case: take r's keys whole */
        dsql__free(dst->props);
        dsql__free(dst->by_key.slots);
        dst->props = r->props;
        dst->n = r->n;
        dst->cap = r->cap;
        dst->by_key = r->by_key;
        r->props = NULL;
        r->n = r->cap = 0;
        r->by_key = (dsql__name_index){NULL, 0};
        return 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!valid_identifier(r->props[i].key, strlen(r->props[i].key))) {
            dsql__log(DSQL_LOG_DEBUG, "profile files: ignoring property with invalid name in [%s]",
                      dst->name);
            continue;
        }
        char *k = r->props[i].key, *v = r->props[i].value;
        r->props[i].key = NULL;
        r->props[i].value = NULL;
        if (put_prop(dst, k, v) == NOT_FOUND)
            return 0;
    }
    return 1;
}

/* "profile" + whitespace + name: the name (trimmed) or NULL. */
static const char *after_prefix(const char *s, size_t n, const char *prefix, size_t *out_n)
{
    size_t pn = strlen(prefix);
    if (n <= pn || memcmp(s, prefix, pn) != 0 || !is_ws(s[pn]))
        return NULL;
    const char *r = s + pn;
    *out_n = n - pn;
    trim(&r, out_n);
    return r;
}

dsql_status dsql__profiles_parse(dsql__profiles *set, const char *text, size_t len,
                                 dsql__file_kind kind, const char *path, dsql_error *err)
{
    dsql__profiles raw = {0};
    dsql_status st = parse_raw(&raw, text, len, path, err);
    if (st != DSQL_OK) {
        dsql__profiles_free(&raw);
        return st;
    }
    int has_profile_default = 0;
    if (kind == DSQL__FILE_CONFIG)
        for (size_t i = 0; i < raw.n; i++) {
            const char *s = raw.secs[i].name, *name;
            size_t n = raw.secs[i].name_len, nn;
            trim(&s, &n);
            if ((name = after_prefix(s, n, "profile", &nn)) && nn == 7 &&
                memcmp(name, "default", 7) == 0)
                has_profile_default = 1;
        }
    for (size_t i = 0; i < raw.n; i++) {
        dsql__section *r = &raw.secs[i];
        const char *s = r->name, *name = NULL;
        size_t n = r->name_len, nn = 0;
        dsql__section_kind sk = DSQL__SECTION_PROFILE;
        trim(&s, &n);
        if (kind == DSQL__FILE_CREDENTIALS) {
            name = s;
            nn = n;
        } else if (n == 7 && memcmp(s, "default", 7) == 0) {
            if (!has_profile_default) {
                name = s;
                nn = n;
            }
        } else if ((name = after_prefix(s, n, "profile", &nn))) {
        } else if ((name = after_prefix(s, n, "sso-session", &nn))) {
            sk = DSQL__SECTION_SSO_SESSION;
        }
        if (!name)
            continue;
        if (!valid_identifier(name, nn)) {
            dsql__log(DSQL_LOG_DEBUG, "profile file %s: ignoring section with an invalid name",
                      path ? path : "(text)");
            continue;
        }
        if (!merge_into(set, sk, name, nn, r)) {
            dsql__profiles_free(&raw);
            return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s",
                               path ? path : "profile text");
        }
    }
    dsql__profiles_free(&raw);
    return DSQL_OK;
}

const char *dsql__profile_name(const char *explicit_name)
{
    if (explicit_name && explicit_name[0])
        return explicit_name;
    const char *env = getenv("AWS_PROFILE");
    return env && env[0] ? env : "default";
}

char *dsql__profiles_path(dsql__file_kind kind)
{
    const char *env = getenv(kind == DSQL__FILE_CONFIG ? "AWS_CONFIG_FILE"
                                                       : "AWS_SHARED_CREDENTIALS_FILE");
    const char *home = getenv("HOME");
    const char *rest;
    if (env && env[0]) {
        if (env[0] != '~' || (env[1] != '\0' && env[1] != '/'))
            return dsql__strdup(env);
        rest = env + 1;
    } else {
        rest = kind == DSQL__FILE_CONFIG ? "/.aws/config" : "/.aws/credentials";
    }
    if (!home || !home[0])
        return NULL;
    size_t hn = strlen(home), rn = strlen(rest);
    char *path = dsql__malloc(hn + rn + 1);
    if (path) {
        memcpy(path, home, hn);
        memcpy(path + hn, rest, rn + 1);
    }
    return path;
}

/* Does the text set a secret (aws_secret_access_key, aws_session_token;
 * keys are case-insensitive)? */
static int holds_secret(const char *text, size_t len)
{
    static const char *const keys[] = {"aws_secret_access_key", "aws_session_token"};
    for (size_t k = 0; k < 2; k++) {
        size_t kn = strlen(keys[k]);
        for (size_t i = 0; i + kn <= len; i++) {
            size_t j = 0;
            while (j < kn && ((text[i + j] >= 'A' && text[i + j] <= 'Z') ? text[i + j] + 32 : text[i + j]) == keys[k][j])
                j++;
            if (j == kn)
                return 1;
        }
    }
    return 0;
}

void dsql__warn_if_exposed(const char *kind, const char *path, const char *holds)
{
    struct stat sb;
    if (stat(path, &sb) != 0) /* stat, not fstat(fileno()): plain C11 + POSIX headers */
        return;
    unsigned mode = (unsigned)sb.st_mode & 07777u;
    if (mode & 077u)
        dsql__log(DSQL_LOG_WARN,
                  "%s %s holds %s but is accessible to group or others (mode %04o); "
                  "restrict it with chmod 600",
                  kind, path, holds, mode);
}

/* Grow a file buffer to `want` bytes (wiping the old one: it may hold
 * secrets). 0 on ENOMEM, *buf unchanged. */
static int grow_file_buffer(char **buf, size_t used, size_t want)
{
    char *nb = dsql__malloc(want);
    if (!nb)
        return 0;
    if (*buf) {
        memcpy(nb, *buf, used);
        OPENSSL_cleanse(*buf, used);
        dsql__free(*buf);
    }
    *buf = nb;
    return 1;
}

/* Open a profile file without blocking: a FIFO opened for reading waits
 * for a writer, and with O_NONBLOCK it does not. fd -1 and *missing when
 * it does not exist. */
static dsql_status open_profile_file(const char *path, int *fd, int *missing, dsql_error *err)
{
    *missing = 0;
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (*fd >= 0)
        return DSQL_OK;
    if (errno == ENOENT || errno == ENOTDIR) {
        *missing = 1;
        return DSQL_OK;
    }
    return dsql__error(err, DSQL_EIO, "profile file %s: cannot open: %s", path, strerror(errno));
}

/* Read fd to its end, at most DSQL__PROFILE_FILE_MAX bytes. The first read
 * of a FIFO or pipe is still non-blocking: end of file there means no
 * writer (an error, as waiting could be for ever); EAGAIN means a writer
 * that has not written yet, so reading turns blocking and waits for it
 * (a process substitution, /dev/fd/N). */
static dsql_status read_fd(int fd, const char *path, char **text, size_t *len, dsql_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return dsql__error(err, DSQL_EIO, "profile file %s: cannot stat: %s", path,
                           strerror(errno));
    int fifo = S_ISFIFO(sb.st_mode), writer_seen = 0;
    if (!fifo && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        return dsql__error(err, DSQL_EIO, "profile file %s: fcntl: %s", path, strerror(errno));
    /* a regular file's size, +1 to see its end without growing */
    size_t cap = S_ISREG(sb.st_mode) && sb.st_size >= 0 &&
                         (uint64_t)sb.st_size <= DSQL__PROFILE_FILE_MAX
                     ? (size_t)sb.st_size + 2
                     : 4096;
    size_t n = 0;
    char *buf = NULL;
    dsql_status st = DSQL_OK;
    if (!grow_file_buffer(&buf, 0, cap))
        return dsql__error(err, DSQL_ENOMEM, "out of memory reading %s", path);
    for (;;) {
        if (n + 1 == cap) { /* keep one byte for the NUL */
            if (n > DSQL__PROFILE_FILE_MAX) {
                st = dsql__error(err, DSQL_ECONFIG,
                                 "profile file %s is larger than the limit of %zu bytes "
                                 "(16 MiB); refusing to read it",
                                 path, DSQL__PROFILE_FILE_MAX);
                break;
            }
            size_t want = cap * 2 < DSQL__PROFILE_FILE_MAX + 2 ? cap * 2
                                                               : DSQL__PROFILE_FILE_MAX + 2;
            if (!grow_file_buffer(&buf, n, want)) {
                st = dsql__error(err, DSQL_ENOMEM, "out of memory reading %s", path);
                break;
            }
            cap = want;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got > 0) {
            n += (size_t)got;
            continue;
        }
        if (got == 0) {
            if (fifo && !writer_seen && n == 0)
                st = dsql__error(err, DSQL_EIO,
                                 "profile file %s is a FIFO or pipe with no writer; refusing "
                                 "to wait for one",
                                 path);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && fifo && !writer_seen) {
            writer_seen = 1;
            if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
                continue;
        }
        st = dsql__error(err, DSQL_EIO, "profile file %s: read error: %s", path,
                         strerror(errno));
        break;
    }
    if (st != DSQL_OK) {
        OPENSSL_cleanse(buf, n);
        dsql__free(buf);
        return st;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return DSQL_OK;
}

/* Whole file into a heap buffer; *text = NULL when it does not exist. */
static dsql_status read_file(const char *path, char **text, size_t *len, dsql_error *err)
{
    *text = NULL;
    *len = 0;
    int fd, missing;
    dsql_status st = open_profile_file(path, &fd, &missing, err);
    if (st != DSQL_OK || missing)
        return st;
    st = read_fd(fd, path, text, len, err);
    close(fd);
    return st;
}

dsql_status dsql__profiles_load(dsql__profiles *set, dsql_error *err)
{
    memset(set, 0, sizeof *set);
    static const dsql__file_kind kinds[2] = {DSQL__FILE_CONFIG, DSQL__FILE_CREDENTIALS};
    for (int i = 0; i < 2; i++) {
        const char *var = i == 0 ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE";
        const char *env = getenv(var);
        char *path = dsql__profiles_path(kinds[i]);
        if (!path) {
            const char *home = getenv("HOME");
            int needs_home = !(env && env[0]) || env[0] == '~';
            if (!needs_home || (home && home[0])) {
                dsql__profiles_free(set);
                return dsql__error(err, DSQL_ENOMEM, "out of memory locating profile files");
            }
            continue; /* no HOME: no default files */
        }
        char *text;
        size_t len;
        dsql_status st = read_file(path, &text, &len, err);
        if (st == DSQL_OK && text && holds_secret(text, len))
            dsql__warn_if_exposed("profile file", path, "credentials");
        if (st == DSQL_OK && text) {
            st = dsql__profiles_parse(set, text, len, kinds[i], path, err);
            OPENSSL_cleanse(text, len);
            dsql__free(text);
        }
        dsql__free(path);
        if (st != DSQL_OK) {
            dsql__profiles_free(set);
            return st;
        }
    }
    return DSQL_OK;
}

const dsql__section *dsql__profiles_find(const dsql__profiles *set, dsql__section_kind kind,
                                         const char *name)
{
    return find_section(set, kind, name, strlen(name));
}

const char *dsql__section_get(const dsql__section *sec, const char *key)
{
    if (!sec)
        return NULL;
    size_t pos = find_prop(sec, key, hash_name(0, key, strlen(key)));
    return pos == NOT_FOUND ? NULL : sec->props[pos].value;
}

const char *dsql__section_get_nonempty(const dsql__section *sec, const char *key)
{
    const char *v = dsql__section_get(sec, key);
    return v && v[0] ? v : NULL;
}
