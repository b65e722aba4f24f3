/* dsql-local: the server process (state dir, cluster, gateway, loop). */
#ifndef DSQL_LOCAL_SERVER_H
#define DSQL_LOCAL_SERVER_H
#include "local.h"
/* Runs until SIGTERM/SIGINT/SIGHUP. Reports "OK\n<export lines>END\n" or
 * "ERR <message>\n" on report_fd once ready. Returns an exit status. */
int dl_server_main(const dl_config *cfg, int report_fd);
#endif
