// The release version, from the VERSION file via the Makefile's -DZK_VERSION.
#pragma once

#ifndef ZK_VERSION
#define ZK_VERSION "0.0.0-dev"
#endif

namespace zk {
inline constexpr const char* version = ZK_VERSION;
}
