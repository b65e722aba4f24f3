/* UTC calendar arithmetic without the C library's time-zone machinery:
 * days <-> civil date after H. Hinnant's public-domain algorithms. */
#include "internal.h"

#include <string.h>
#include <time.h>

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void put_digits(char *dst, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        dst[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void utc_format(int64_t t, char date[9], char datetime[17])
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    unsigned secs = (unsigned)(t - days * 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    put_digits(date, (unsigned)y, 4);
    put_digits(date + 4, m, 2);
    put_digits(date + 6, d, 2);
    date[8] = '\0';
    for (int i = 0; i < 8; i++)
        datetime[i] = date[i];
    datetime[8] = 'T';
    put_digits(datetime + 9, secs / 3600, 2);
    put_digits(datetime + 11, secs / 60 % 60, 2);
    put_digits(datetime + 13, secs % 60, 2);
    datetime[15] = 'Z';
    datetime[16] = '\0';
}

/* Tokens are signed many times a second: each thread keeps its last
 * second's text. */
void dsql__utc_format(int64_t t, char date[9], char datetime[17])
{
    static _Thread_local int64_t last_t = -1;
    static _Thread_local char last_date[9], last_datetime[17];
    if (t != last_t) {
        utc_format(t, last_date, last_datetime);
        last_t = t;
    }
    memcpy(date, last_date, 9);
    memcpy(datetime, last_datetime, 17);
}

static int read_num(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

static int expect(const char **p, char c)
{
    if (**p != c && !(c == 'T' && (**p == 't' || **p == ' ')))
        return 0;
    (*p)++;
    return 1;
}

int dsql__utc_parse_iso8601(const char *s, int64_t *out)
{
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, sec;
    const char *p = s;
    if (!s || !read_num(&p, 4, &y) || !expect(&p, '-') || !read_num(&p, 2, &mo) ||
        !expect(&p, '-') || !read_num(&p, 2, &d) || !expect(&p, 'T') ||
        !read_num(&p, 2, &h) || !expect(&p, ':') || !read_num(&p, 2, &mi) ||
        !expect(&p, ':') || !read_num(&p, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return 0;
    if (*p == '.') { /* fractional seconds: ignored */
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        unsigned oh, om;
        p++;
        if (!read_num(&p, 2, &oh) || !expect(&p, ':') || !read_num(&p, 2, &om) ||
            oh > 23 || om > 59)
            return 0;
        offset = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return 0;
    }
    if (*p != '\0')
        return 0;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 1;
}

int64_t dsql__now(void) { return (int64_t)time(NULL); }
