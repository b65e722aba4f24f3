/* Fuzz target: the configuration parsers (URI, conninfo, detection) and
 * resolution. Input: one connection string; invariants: no crash, a failed
 * parse leaves the configuration unchanged, resolved hosts are complete. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsqlauth.h"
#include "internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    if (!s)
        return 0;
    dsql_error err;
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg) {
        free(s);
        return 0;
    }
    dsql_config_set(cfg, "application_name", "fuzz", &err);
    dsql_status st = dsql_config_parse(cfg, s, &err);
    if (st != DSQL_OK && (!dsql_config_get(cfg, "application_name") ||
                          strcmp(dsql_config_get(cfg, "application_name"), "fuzz") != 0))
        abort(); /* a failed parse must not change anything */
    dsql__config_parse_conninfo(cfg, s, &err);
    dsql__config_parse_uri(cfg, s, &err);
    if (dsql_config_resolve(cfg, &err) == DSQL_OK) {
        size_t n = dsql_config_host_count(cfg);
        if (n == 0)
            abort();
        for (size_t i = 0; i < n; i++) {
            dsql_config_host h;
            if (dsql_config_host_at(cfg, i, &h, &err) != DSQL_OK || !h.host || !h.signing_host ||
                !h.region || h.port == 0 || h.port > 65535)
                abort();
        }
        const char *secs = dsql_config_get(cfg, "token_duration_secs");
        if (!dsql_config_get(cfg, "user") || !dsql_config_get(cfg, "dbname") || !secs ||
            strtoul(secs, NULL, 10) == 0)
            abort();
        dsql_config *d = dsql_config_dup(cfg, &err);
        dsql_config_free(d);
    }
    dsql_config_free(cfg);
    free(s);
    return 0;
}
