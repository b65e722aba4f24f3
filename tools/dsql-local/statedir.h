/* dsql-local: the state directory. Other local users are adversaries:
 * the directory must be ours and private, every file in it is created
 * afresh (never through a symbolic link, never over an existing file), and
 * the one process holding its lock file is its server. */
#ifndef DSQL_LOCAL_STATEDIR_H
#define DSQL_LOCAL_STATEDIR_H

#include <stddef.h>
#include <sys/types.h>

#define DL_LOCK_NAME "dsql-local.lock"
#define DL_PID_NAME "dsql-local.pid"
#define DL_KEYS_NAME "keys"
#define DL_LOG_NAME "dsql-local.log"

/* What a server made besides its fixed files (pg, ca.pem, server.pem,
 * server.key, postgres.log, the pid and lock files). The server writes
 * these bits into its lock file, so a later start or stop knows what a
 * killed server left. */
#define DL_MADE_DIR 1  /* the directory itself */
#define DL_MADE_KEYS 2 /* the generated key table "keys" */
#define DL_MADE_LOG 4  /* the default log "dsql-local.log" */

/* Turns dir into an absolute path without symbolic links in its parents
 * (the last component is kept as given, for dl_state_dir_check to lstat)
 * and checks that no other user can rename or replace it: every parent
 * must be owned by us or root and not writable by group or others unless
 * sticky (as /tmp). 0, or -1 with err naming the problem. */
int dl_state_dir_resolve(const char *dir, char *out, size_t cap, char *err,
                         size_t errcap);

/* 0 when dir (resolved, existing) may hold our state: a directory, not a
 * symbolic link, owned by us and not writable by group or others. Else -1
 * with err naming the problem; errno ENOENT when it does not exist. */
int dl_state_dir_check(const char *dir, char *err, size_t errcap);

/* Creates path for writing; fails (EEXIST) when anything, a symbolic
 * link included, has that name already. Returns the descriptor or -1. */
int dl_state_create(const char *path, int mode);

/* Takes dir's lock, held until the process exits. Returns the descriptor
 * (never close it while serving: that drops the lock), or -1: errno EAGAIN
 * when another process holds it. *left: the DL_MADE_* bits a previous
 * server recorded in the lock file, or -1 when there was none. */
int dl_state_lock(const char *dir, int *left);

/* Records made (DL_MADE_* bits) in the lock file lock_fd. */
int dl_state_record(int lock_fd, int made);

/* The pid of the process holding dir's lock: > 0; 0 when nobody holds
 * it or there is no lock file; -1 with errno on error. */
pid_t dl_state_lock_holder(const char *dir);

/* The name of a state file a server would make (see made) that exists in
 * dir already, or NULL when there is none. */
const char *dl_state_find_existing(const char *dir, int made);

/* Removes the state files a server made (by name, never following a
 * symbolic link) and the pid file. With all, also the lock file and, when
 * made has DL_MADE_DIR, dir itself if it is then empty. */
void dl_state_remove(const char *dir, int made, int all);

/* stop.c: `dsql-local stop`: signals the server of dir, and only it.
 * Returns the exit status. */
int dl_stop(const char *dir);

#endif
