// Files of the repository (the shipped zookeeper.conf, test fixtures), found
// from the test binary's own location so the tests run from any directory:
// the binary lives in build/ or build/<sanitizer>/ under the repository.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace zk::test {

inline std::filesystem::path repo_root()
{
    namespace fs = std::filesystem;
    fs::path at = fs::read_symlink("/proc/self/exe").parent_path();
    for (; !at.empty() && at != at.root_path(); at = at.parent_path())
        if (fs::exists(at / "src/config/config.h") && fs::exists(at / "zookeeper.conf")) return at;
    // Fall back to the working directory (make runs tests from the root).
    if (fs::exists("src/config/config.h")) return fs::current_path();
    throw std::runtime_error("cannot find the repository root from the test binary");
}

inline std::string repo_path(const std::string& relative) { return (repo_root() / relative).string(); }

}  // namespace zk::test
