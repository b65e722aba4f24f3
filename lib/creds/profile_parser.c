/* A hand parser for the AWS shared config and credentials files, following
 * the rules of the AWS SDKs' shared profile-parser test suite (smithy-rs /
 * AWS CLI): '#' and ';' comments (inside property values only after
 * whitespace), continuation lines and sub-properties, CRLF, a UTF-8 BOM,
 * duplicate sections merged, duplicate keys last-wins, keys compared
 * case-insensitively, `[profile x]` in config vs `[x]` in credentials, and
 * values of any length (no line limit). */
#include "profile_parser.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static int valid_identifier(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-/._%@:+", c)))
            return 0;
    }
    return 1;
}

static void section_clear(dsql__section *sec)
{
    for (size_t i = 0; i < sec->n; i++) {
        dsql__free(sec->props[i].key);
        dsql__free_secret(sec->props[i].value);
    }
    dsql__free(sec->props);
    dsql__free(sec->name);
    memset(sec, 0, sizeof *sec);
}

void dsql__profiles_free(dsql__profiles *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        section_clear(&set->secs[i]);
    dsql__free(set->secs);
    memset(set, 0, sizeof *set);
}

static dsql__section *find_section(dsql__profiles *set, dsql__section_kind kind,
                                   const char *name, size_t n)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->secs[i].kind == kind && strlen(set->secs[i].name) == n &&
            memcmp(set->secs[i].name, name, n) == 0)
            return &set->secs[i];
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
    sec = &set->secs[set->n];
    memset(sec, 0, sizeof *sec);
    sec->kind = kind;
    if (!(sec->name = dsql__strndup(name, n)))
        return NULL;
    set->n++;
    return sec;
}

static dsql__prop *find_prop(const dsql__section *sec, const char *key)
{
    for (size_t i = 0; i < sec->n; i++)
        if (strcmp(sec->props[i].key, key) == 0)
            return &sec->props[i];
    return NULL;
}

/* Set key = value, taking ownership of both (freed on failure). */
static int put_prop(dsql__section *sec, char *key, char *value)
{
    dsql__prop *p = find_prop(sec, key);
    if (p) {
        dsql__free(key);
        dsql__free_secret(p->value);
        p->value = value;
        return 1;
    }
    if (sec->n == sec->cap) {
        size_t cap = sec->cap ? sec->cap * 2 : 8;
        dsql__prop *props = dsql__realloc(sec->props, cap * sizeof *props);
        if (!props) {
            dsql__free(key);
            dsql__free_secret(value);
            return 0;
        }
        sec->props = props;
        sec->cap = cap;
    }
    sec->props[sec->n].key = key;
    sec->props[sec->n].value = value;
    sec->n++;
    return 1;
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

/* Pass 1: raw sections keyed by their bracketed text, duplicates merged. */
static dsql_status parse_raw(dsql__profiles *raw, const char *text, size_t len, const char *path,
                             dsql_error *err)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    dsql__section *cur = NULL;
    dsql__prop *prop = NULL;
    size_t prop_index = 0;
    int subproperty = 0;
    size_t lineno = 0;
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p;
        size_t n = (size_t)((nl ? nl : end) - p);
        p = nl ? nl + 1 : end;
        lineno++;
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
            prop = NULL;
            subproperty = 0;
            continue;
        }
        if (!cur)
            return syntax(err, path, lineno, "Expected a profile definition");
        if (is_ws(s[0])) { /* continuation or sub-property */
            if (!prop)
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
            size_t old = strlen(prop->value);
            char *v = dsql__malloc(old + 1 + tn + 1);
            if (!v)
                return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s", path);
            memcpy(v, prop->value, old);
            v[old] = '\n';
            memcpy(v + old + 1, t, tn);
            v[old + 1 + tn] = '\0';
            dsql__free_secret(prop->value);
            prop->value = v;
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
        dsql__prop *existing = find_prop(cur, key);
        prop_index = existing ? (size_t)(existing - cur->props) : cur->n;
        if (!put_prop(cur, key, value))
            return dsql__error(err, DSQL_ENOMEM, "out of memory parsing %s", path);
        prop = &cur->props[prop_index];
        subproperty = vn == 0;
    }
    return DSQL_OK;
}

/* Move the valid properties of raw section r into the set's (kind, name). */
static int merge_into(dsql__profiles *set, dsql__section_kind kind, const char *name, size_t n,
                      dsql__section *r)
{
    dsql__section *dst = get_section(set, kind, name, n);
    if (!dst)
        return 0;
    for (size_t i = 0; i < r->n; i++) {
        if (!valid_identifier(r->props[i].key)) {
            dsql__log(DSQL_LOG_DEBUG, "profile files: ignoring property with invalid name in [%s]",
                      dst->name);
            continue;
        }
        char *k = r->props[i].key, *v = r->props[i].value;
        r->props[i].key = NULL;
        r->props[i].value = NULL;
        if (!put_prop(dst, k, v))
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
            size_t n = strlen(s), nn;
            trim(&s, &n);
            if ((name = after_prefix(s, n, "profile", &nn)) && nn == 7 &&
                memcmp(name, "default", 7) == 0)
                has_profile_default = 1;
        }
    for (size_t i = 0; i < raw.n; i++) {
        dsql__section *r = &raw.secs[i];
        const char *s = r->name, *name = NULL;
        size_t n = strlen(s), nn = 0;
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
        char *tmp = dsql__strndup(name, nn);
        if (tmp && !valid_identifier(tmp)) {
            dsql__log(DSQL_LOG_DEBUG, "profile file %s: ignoring section with an invalid name",
                      path ? path : "(text)");
            dsql__free(tmp);
            continue;
        }
        int merged = tmp && merge_into(set, sk, tmp, nn, r);
        dsql__free(tmp);
        if (!merged) {
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

/* Whole file into a heap buffer; *text = NULL when it does not exist. */
static dsql_status read_file(const char *path, char **text, size_t *len, dsql_error *err)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return DSQL_OK;
        return dsql__error(err, DSQL_EIO, "profile file %s: cannot open: %s", path,
                           strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = dsql__malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = dsql__malloc(cap * 2);
            if (nb)
                memcpy(nb, buf, n);
            OPENSSL_cleanse(buf, n);
            dsql__free(buf);
            buf = nb;
            cap *= 2;
            if (!buf)
                break;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf)
        return dsql__error(err, DSQL_ENOMEM, "out of memory reading %s", path);
    if (failed) {
        OPENSSL_cleanse(buf, n);
        dsql__free(buf);
        return dsql__error(err, DSQL_EIO, "profile file %s: read error", path);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return DSQL_OK;
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
    return find_section((dsql__profiles *)set, kind, name, strlen(name));
}

const char *dsql__section_get(const dsql__section *sec, const char *key)
{
    if (!sec)
        return NULL;
    const dsql__prop *p = find_prop(sec, key);
    return p ? p->value : NULL;
}

const char *dsql__section_get_nonempty(const dsql__section *sec, const char *key)
{
    const char *v = dsql__section_get(sec, key);
    return v && v[0] ? v : NULL;
}
