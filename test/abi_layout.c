/* Prints the layout of every public struct (size, alignment, each member's
 * offset and size) and the value of every public enum constant, one per
 * line, for test/t-abi.sh to compare with test/data/abi-layout.txt. A
 * change here is an ABI change: programs built against the old headers
 * would pass the wrong layout. t-abi.sh also checks that every struct
 * member and enum constant in include/ is listed below. */
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>

#include <dsqlauth.h>
#include <dsqlauth/libpq.h>
#include <dsqlauth/odbc.h>
#include <dsqlauth/pool.h>

#define S(T) printf("struct %s size %zu align %zu\n", #T, sizeof(T), alignof(T))
#define M(T, m) \
    printf("member %s.%s offset %zu size %zu\n", #T, #m, offsetof(T, m), sizeof(((T *)0)->m))
#define E(c) printf("enum %s %lld\n", #c, (long long)(c))

int main(void)
{
    printf("model pointer %zu long %zu int %zu double %zu\n", sizeof(void *), sizeof(long),
           sizeof(int), sizeof(double));
    printf("define DSQL_STRUCT_VERSION %d\n", DSQL_STRUCT_VERSION);

    /* common.h */
    S(dsql_error);
    M(dsql_error, status);
    M(dsql_error, sqlstate);
    M(dsql_error, message);
    E(DSQL_OK);
    E(DSQL_EINVAL);
    E(DSQL_ENOMEM);
    E(DSQL_EBUFSIZE);
    E(DSQL_ECREDENTIALS);
    E(DSQL_EEXPIRED);
    E(DSQL_ECONFIG);
    E(DSQL_EIO);
    E(DSQL_ENETWORK);
    E(DSQL_ETIMEOUT);
    E(DSQL_EPARSE);
    E(DSQL_ETLS);
    E(DSQL_EAUTH);
    E(DSQL_ESERVER);
    E(DSQL_ECONFLICT);
    E(DSQL_EUNKNOWN_COMMIT);
    E(DSQL_EINTERNAL);
    E(DSQL_ECANCELLED);
    E(DSQL_LOG_ERROR);
    E(DSQL_LOG_WARN);
    E(DSQL_LOG_INFO);
    E(DSQL_LOG_DEBUG);

    /* credentials.h */
    S(dsql_credentials);
    M(dsql_credentials, access_key_id);
    M(dsql_credentials, secret_access_key);
    M(dsql_credentials, session_token);
    M(dsql_credentials, expiration);
    S(dsql_credentials_provider_vtable);
    M(dsql_credentials_provider_vtable, version);
    M(dsql_credentials_provider_vtable, get);
    M(dsql_credentials_provider_vtable, destroy);

    S(dsql_assume_role_options);
    M(dsql_assume_role_options, version);
    M(dsql_assume_role_options, role_arn);
    M(dsql_assume_role_options, role_session_name);
    M(dsql_assume_role_options, external_id);
    M(dsql_assume_role_options, duration_seconds);
    M(dsql_assume_role_options, policy_arns);
    M(dsql_assume_role_options, policy_arn_count);
    M(dsql_assume_role_options, region);

    /* retry.h */
    S(dsql_retry_options);
    M(dsql_retry_options, version);
    M(dsql_retry_options, max_retries);
    M(dsql_retry_options, base_delay_us);
    M(dsql_retry_options, max_delay_us);
    M(dsql_retry_options, jitter);
    M(dsql_retry_options, deadline_ms);
    M(dsql_retry_options, cancelled);
    M(dsql_retry_options, cancel_arg);
    S(dsql_retry_info);
    M(dsql_retry_info, attempt);
    M(dsql_retry_info, max_attempts);
    M(dsql_retry_info, previous);
    M(dsql_retry_info, previous_sqlstate);
    M(dsql_retry_info, previous_conflict);
    S(dsql_retry_result);
    M(dsql_retry_result, attempts);
    M(dsql_retry_result, conflicts);
    M(dsql_retry_result, reconnects);
    M(dsql_retry_result, last_conflict);
    M(dsql_retry_result, data_conflicts);
    M(dsql_retry_result, schema_conflicts);
    M(dsql_retry_result, unknown_conflicts);

    /* conflict.h */
    E(DSQL_CONFLICT_NONE);
    E(DSQL_CONFLICT_DATA);
    E(DSQL_CONFLICT_SCHEMA);
    E(DSQL_CONFLICT_UNKNOWN);

    /* token.h */
    S(dsql_token_request);
    M(dsql_token_request, version);
    M(dsql_token_request, hostname);
    M(dsql_token_request, user);
    M(dsql_token_request, region);
    M(dsql_token_request, expires_in);
    M(dsql_token_request, now);
    S(dsql_token_provider_vtable);
    M(dsql_token_provider_vtable, version);
    M(dsql_token_provider_vtable, token);
    M(dsql_token_provider_vtable, destroy);
    S(dsql_token_provider_options);
    M(dsql_token_provider_options, version);
    M(dsql_token_provider_options, region);
    M(dsql_token_provider_options, expires_in);

    /* config.h */
    E(DSQL_SOURCE_ENV);
    E(DSQL_SOURCE_PARSED);
    E(DSQL_SOURCE_EXPLICIT);
    S(dsql_config_host);
    M(dsql_config_host, host);
    M(dsql_config_host, hostaddr);
    M(dsql_config_host, port);
    M(dsql_config_host, signing_host);
    M(dsql_config_host, region);

    /* libpq.h */
    E(DSQL_PQ_POLL_FAILED);
    E(DSQL_PQ_POLL_READING);
    E(DSQL_PQ_POLL_WRITING);
    E(DSQL_PQ_POLL_WAITING);
    E(DSQL_PQ_POLL_OK);

    /* pool.h */
    S(dsql_pq_txn_options);
    M(dsql_pq_txn_options, version);
    M(dsql_pq_txn_options, retry);
    M(dsql_pq_txn_options, begin);
    S(dsql_pq_connector_vtable);
    M(dsql_pq_connector_vtable, version);
    M(dsql_pq_connector_vtable, connect);
    M(dsql_pq_connector_vtable, connect_start);
    M(dsql_pq_connector_vtable, connect_poll);
    M(dsql_pq_connector_vtable, connect_finish);
    M(dsql_pq_connector_vtable, destroy);
    S(dsql_pq_pool_options);
    M(dsql_pq_pool_options, version);
    M(dsql_pq_pool_options, min_size);
    M(dsql_pq_pool_options, max_size);
    M(dsql_pq_pool_options, acquire_timeout_ms);
    M(dsql_pq_pool_options, max_lifetime_ms);
    M(dsql_pq_pool_options, lifetime_jitter);
    M(dsql_pq_pool_options, idle_timeout_ms);
    M(dsql_pq_pool_options, check_idle_ms);
    M(dsql_pq_pool_options, ping_idle_ms);
    M(dsql_pq_pool_options, reset_query);
    M(dsql_pq_pool_options, background_thread);
    M(dsql_pq_pool_options, maintain_interval_ms);
    M(dsql_pq_pool_options, txn);
    M(dsql_pq_pool_options, connector);
    M(dsql_pq_pool_options, connector_self);
    S(dsql_pq_pool_stats);
    M(dsql_pq_pool_stats, version);
    M(dsql_pq_pool_stats, size);
    M(dsql_pq_pool_stats, idle);
    M(dsql_pq_pool_stats, in_use);
    M(dsql_pq_pool_stats, opening);
    M(dsql_pq_pool_stats, waiting);
    M(dsql_pq_pool_stats, acquires);
    M(dsql_pq_pool_stats, waits);
    M(dsql_pq_pool_stats, timeouts);
    M(dsql_pq_pool_stats, opened);
    M(dsql_pq_pool_stats, open_failures);
    M(dsql_pq_pool_stats, closed_lifetime);
    M(dsql_pq_pool_stats, closed_idle);
    M(dsql_pq_pool_stats, closed_broken);
    M(dsql_pq_pool_stats, closed_dirty);
    M(dsql_pq_pool_stats, closed_pool);
    M(dsql_pq_pool_stats, txn_commits);
    M(dsql_pq_pool_stats, txn_retries);
    M(dsql_pq_pool_stats, txn_conflicts);
    M(dsql_pq_pool_stats, txn_failures);
    M(dsql_pq_pool_stats, txn_unknown_commits);
    M(dsql_pq_pool_stats, txn_conflicts_data);
    M(dsql_pq_pool_stats, txn_conflicts_schema);
    M(dsql_pq_pool_stats, txn_conflicts_unknown);

    /* odbc.h (libdsqlauth-odbc) */
    S(dsql_odbc_options);
    M(dsql_odbc_options, version);
    M(dsql_odbc_options, driver);
    M(dsql_odbc_options, extra);
    return 0;
}
