/* dsql-local --regions: a multi-Region cluster pair (or more) on one
 * database ("Configuring multi-Region clusters": peered clusters, one
 * regional endpoint each, one logical database). The first region is the
 * primary gateway; each other region gets a gateway of its own on another
 * port, named <id>.dsql.<region>.on.aws with an identifier of its own (as
 * each peered cluster has), and accepts only tokens signed for that name
 * and region. What they share is the PostgreSQL behind them. */
#include <stdio.h>
#include <string.h>

#include "local.h"

int dl_regions_names(dl_regions *r, const dl_config *cfg, const char **hosts, int *nhosts,
                     char *err, size_t cap)
{
    char id[32];
    int i;

    memset(r, 0, sizeof *r);
    for (i = 1; i < cfg->nregions; i++) {
        if (*nhosts == DL_MAX_HOSTS) {
            snprintf(err, cap, "too many names and regions (at most %d in all)", DL_MAX_HOSTS);
            return -1;
        }
        dl_random_string(id, 26, "abcdefghijklmnopqrstuvwxyz0123456789");
        if (snprintf(r->host[r->n], sizeof r->host[r->n], "%s.dsql.%s.on.aws", id,
                     cfg->regions[i]) >= (int)sizeof r->host[r->n]) {
            snprintf(err, cap, "region name too long");
            return -1;
        }
        hosts[(*nhosts)++] = r->host[r->n];
        r->n++;
    }
    return 0;
}

int dl_regions_start(dl_regions *r, struct event_base *base, const dl_config *primary,
                     const char *cert_dir, const char *keys, const char *sockdir, char *err,
                     size_t cap)
{
    int i;

    for (i = 0; i < r->n; i++) {
        r->cfg[i] = *primary;
        r->cfg[i].hosts[0] = r->host[i];
        r->cfg[i].nhosts = 1;
        r->cfg[i].region = primary->regions[i + 1];
        r->cfg[i].port = 0;
        r->gw[i] = dl_gateway_new(base, &r->cfg[i], cert_dir, keys, sockdir, err, cap);
        if (!r->gw[i])
            return -1;
    }
    return 0;
}

void dl_regions_report(const dl_regions *r, dl_gateway *primary, const char *primary_host,
                       char *buf, size_t cap)
{
    size_t off = strlen(buf);
    int i;

    if (r->n == 0)
        return;
    off += (size_t)snprintf(buf + off, cap - off, "export DSQL_LOCAL_HOSTS='%s", primary_host);
    for (i = 0; i < r->n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, ",%s", r->host[i]);
    if (off < cap)
        off += (size_t)snprintf(buf + off, cap - off, "'\nexport DSQL_LOCAL_PORTS='%d",
                                dl_gateway_port(primary));
    for (i = 0; i < r->n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, ",%d", dl_gateway_port(r->gw[i]));
    if (off < cap)
        snprintf(buf + off, cap - off, "'\n");
}

void dl_regions_set_faults(dl_regions *r, const dl_faults *f)
{
    int i;

    for (i = 0; i < r->n; i++)
        if (r->gw[i])
            *dl_gateway_faults(r->gw[i]) = *f;
}

void dl_regions_free(dl_regions *r)
{
    int i;

    for (i = 0; i < r->n; i++) {
        dl_gateway_free(r->gw[i]);
        r->gw[i] = NULL;
    }
}

int dl_regions_restart(dl_regions *r, struct event_base *base, const char *cert_dir,
                       const char *keys, const char *sockdir, char *err, size_t cap)
{
    int i;

    for (i = 0; i < r->n; i++) {
        r->cfg[i].port = dl_gateway_port(r->gw[i]);
        dl_gateway_free(r->gw[i]);
        r->gw[i] = dl_gateway_new(base, &r->cfg[i], cert_dir, keys, sockdir, err, cap);
        if (!r->gw[i])
            return -1;
    }
    return 0;
}
