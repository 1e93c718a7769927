// The release version, from the VERSION file. Only version.cpp is compiled
// with it (-DZK_VERSION), so a version bump rebuilds one object, not all.
#pragma once

namespace zk {
extern const char* const version;
}
