/* Loading big shared config files: a config file with N profiles (each a
 * region and a key pair, about 100 bytes), resolved end to end through
 * dsql_credentials_provider_profile (read, parse, find the last profile,
 * copy its keys). Prints one line per size:
 *   profiles_<N>: bytes=<n> median_ms=<n> cpu_ms=<n> ns_per_profile=<n>
 * (median_ms is wall time, cpu_ms this process's CPU time: on a shared
 * machine the first includes waiting for a core; ns_per_profile is from
 * the wall time).
 * and the ratio of per-profile times between the largest and the smallest
 * size (about 1 when parsing is linear; it was about 12 when it was
 * quadratic). Target: 100,000 profiles well under a second; the benchmark
 * fails when their median CPU time passes 1000 ms (CPU, not wall time, so
 * that a busy machine does not fail it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "dsqlauth.h"

#define RUNS 5

static int write_config(const char *path, int profiles, long *bytes)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    for (int i = 0; i < profiles; i++)
        fprintf(f, "[profile p%d]\nregion = us-east-1\naws_access_key_id = AKIA%016d\n"
                   "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRf%013d\n",
                i, i, i);
    *bytes = ftell(f);
    return fclose(f) == 0;
}

/* Median wall ms of RUNS resolutions of the last profile (and median CPU
 * ms in *cpu_ms); < 0 on failure. */
static double time_resolve(int profiles, double *cpu_ms)
{
    char name[32];
    snprintf(name, sizeof name, "p%d", profiles - 1);
    double samples[RUNS], cpu[RUNS];
    for (int r = 0; r < RUNS; r++) {
        dsql_error err;
        dsql_credentials_provider *p = dsql_credentials_provider_profile(name, &err);
        dsql_credentials c;
        double t0 = now_ns(), c0 = cpu_ns();
        dsql_status st = p ? dsql_credentials_provider_get(p, &c, &err) : err.status;
        samples[r] = (now_ns() - t0) / 1e6;
        cpu[r] = (cpu_ns() - c0) / 1e6;
        dsql_credentials_provider_free(p);
        if (st != DSQL_OK) {
            fprintf(stderr, "profile-bench: %s: %s\n", name, err.message);
            return -1;
        }
        dsql_credentials_clear(&c);
    }
    *cpu_ms = percentile(cpu, RUNS, 50);
    return percentile(samples, RUNS, 50);
}

int main(void)
{
    static const int sizes[] = {10000, 20000, 100000};
    char dir[] = "/tmp/dsql-profile-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("profile-bench: mkdtemp");
        return 1;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/config", dir);
    setenv("AWS_CONFIG_FILE", path, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    unsetenv("AWS_PROFILE");
    int ok = 1;
    double first = 0, last = 0, last_cpu_ms = 0;
    for (size_t i = 0; ok && i < sizeof sizes / sizeof sizes[0]; i++) {
        long bytes = 0;
        if (!write_config(path, sizes[i], &bytes)) {
            perror("profile-bench: writing the config file");
            ok = 0;
            break;
        }
        double cpu_ms = 0, ms = time_resolve(sizes[i], &cpu_ms);
        if (ms < 0) {
            ok = 0;
            break;
        }
        double per = ms * 1e6 / sizes[i];
        printf("profiles_%d: bytes=%ld median_ms=%.1f cpu_ms=%.1f ns_per_profile=%.0f\n",
               sizes[i], bytes, ms, cpu_ms, per);
        fflush(stdout);
        if (i == 0)
            first = per;
        last = per;
        last_cpu_ms = cpu_ms;
    }
    unlink(path);
    rmdir(dir);
    if (!ok)
        return 1;
    printf("per_profile_ratio_%d_vs_%d: %.2f\n", sizes[2], sizes[0], last / first);
    if (last_cpu_ms > 1000) {
        fprintf(stderr, "profile-bench: %d profiles took %.0f ms of CPU (target: under 1000)\n",
                sizes[2], last_cpu_ms);
        return 1;
    }
    return 0;
}
