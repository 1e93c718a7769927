// The one object the Makefile builds with -DZK_VERSION from the VERSION file
// (and rebuilds when VERSION changes).

#include "util/version.h"

#ifndef ZK_VERSION
#define ZK_VERSION "0.0.0-dev"
#endif

namespace zk {
const char* const version = ZK_VERSION;
}
