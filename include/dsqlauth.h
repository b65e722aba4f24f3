/* libdsqlauth: IAM authentication for Amazon Aurora DSQL.
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth). */
#ifndef DSQLAUTH_H
#define DSQLAUTH_H

#include "dsqlauth/common.h"
#include "dsqlauth/credentials.h"
#include "dsqlauth/token.h"
#include "dsqlauth/config.h"
#include "dsqlauth/conflict.h"
#include "dsqlauth/retry.h"

#endif
