/* Hostname checks shared by the signer and the configuration: strip an
 * http(s):// prefix, validate DNS syntax, find the region of a DSQL name. */
#include "internal.h"
#include "hostname.h"

#include <string.h>
#include <strings.h>


dsql_status dsql__hostname_check(const char *hostname, const char **start, size_t *len,
                                 dsql_error *err)
{
    if (!hostname || !*hostname)
        return dsql__error(err, DSQL_EINVAL, "hostname is empty");
    const char *h = hostname;
    if ((h[0] | 0x20) == 'h') { /* cheap test first: this runs per token */
        if (strncasecmp(h, "https://", 8) == 0)
            h += 8;
        else if (strncasecmp(h, "http://", 7) == 0)
            h += 7;
    }
    size_t n = strlen(h);
    if (n > 0 && h[n - 1] == '/')
        n--;
    if (n == 0)
        return dsql__error(err, DSQL_EINVAL, "hostname is empty");
    if (n > DSQL_HOSTNAME_MAX)
        return dsql__error(err, DSQL_EINVAL, "hostname is %zu characters long; the limit is %u",
                           n, DSQL_HOSTNAME_MAX);
    /* label by label: the inner loop only skips label characters */
    for (size_t i = 0;;) {
        size_t label_start = i;
        while (i < n && (dsql__char_class[(unsigned char)h[i]] & DSQL__CC_HOST_LABEL))
            i++;
        size_t label = i - label_start;
        if (label > 63)
            return dsql__error(err, DSQL_EINVAL,
                               "hostname has a label longer than 63 characters");
        if (i == n) {
            if (label == 0)
                return dsql__error(err, DSQL_EINVAL, "hostname ends with '.'");
            break;
        }
        char c = h[i];
        if (c == '.') {
            if (label == 0)
                return dsql__error(err, DSQL_EINVAL,
                                   "hostname has an empty label at position %zu", i + 1);
            i++;
        } else if (c == ':') {
            return dsql__error(err, DSQL_EINVAL,
                               "hostname contains ':' at position %zu; give the host "
                               "without a port (tokens are signed for the name only)",
                               i + 1);
        } else {
            return dsql__error(err, DSQL_EINVAL,
                               "hostname contains an invalid character (byte 0x%02x) at "
                               "position %zu",
                               (unsigned char)c, i + 1);
        }
    }
    *start = h;
    *len = n;
    return DSQL_OK;
}

int dsql__region_in_hostname(const char *h, size_t n, const char **region, size_t *rlen)
{
    static const char suffix[] = ".on.aws";
    const size_t slen = sizeof suffix - 1;
    if (n <= slen || strncasecmp(h + n - slen, suffix, slen) != 0)
        return 0;
    size_t end = n - slen; /* region label is h[rstart..end) */
    size_t rstart = end;
    while (rstart > 0 && h[rstart - 1] != '.')
        rstart--;
    if (rstart == end || rstart < 2)
        return 0;
    size_t dstart = rstart - 1; /* the '.' before the region */
    while (dstart > 0 && h[dstart - 1] != '.')
        dstart--;
    /* the label before the region starts with "dsql" and is not the first */
    if (dstart == 0 || rstart - 1 - dstart < 4 || strncasecmp(h + dstart, "dsql", 4) != 0)
        return 0;
    *region = h + rstart;
    *rlen = end - rstart;
    return 1;
}

dsql_status dsql_region_from_hostname(const char *hostname, char *buf, size_t cap,
                                      dsql_error *err)
{
    const char *h, *r;
    size_t n, rlen;
    dsql_status st = dsql__hostname_check(hostname, &h, &n, err);
    if (st != DSQL_OK)
        return st;
    if (!dsql__region_in_hostname(h, n, &r, &rlen))
        return dsql__error(err, DSQL_EINVAL,
                           "hostname '%.*s' is not an Aurora DSQL endpoint "
                           "(<id>.dsql.<region>.on.aws); give the region explicitly",
                           (int)n, h);
    if (rlen > DSQL_REGION_MAX)
        return dsql__error(err, DSQL_EINVAL, "region in hostname is longer than %u characters",
                           DSQL_REGION_MAX);
    if (!buf || cap < rlen + 1)
        return dsql__error(err, DSQL_EBUFSIZE, "region buffer needs %zu bytes", rlen + 1);
    for (size_t i = 0; i < rlen; i++) {
        char c = r[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[rlen] = '\0';
    return DSQL_OK;
}
