/* libpq adapter: a token signed on a helper thread (token_job.c), for the
 * non-blocking connect. Not installed. */
#ifndef DSQL_PQ_TOKEN_JOB_H
#define DSQL_PQ_TOKEN_JOB_H

#include "dsqlauth/token.h"

typedef struct dsql__pq_token_job dsql__pq_token_job;

/* Start signing req with p on a new thread (the strings are copied); NULL
 * when no thread or pipe could be made (then sign inline). */
dsql__pq_token_job *dsql__pq_token_job_start(dsql_token_provider *p,
                                            const dsql_token_request *req);
/* Readable once the job is done. */
int dsql__pq_token_job_fd(const dsql__pq_token_job *j);
/* 1 when the job is done (finish will not wait). */
int dsql__pq_token_job_done(dsql__pq_token_job *j);
/* Wait for the thread, hand over its token (dsql_token_free) or error,
 * free j. */
dsql_status dsql__pq_token_job_finish(dsql__pq_token_job *j, char **token, dsql_error *err);

#endif
