// Command-line options of zookeeper-fcgi.
#pragma once

#include <optional>
#include <string>
#include <variant>

namespace zk::app {

enum class Mode { serve, check_config, help, version };

struct Options {
    Mode mode = Mode::serve;
    std::string config_path = "/etc/zookeeper/zookeeper.conf";
    std::optional<std::string> state_dir;  // overrides [store] dir
    std::optional<std::string> log_level;  // overrides [service] log_level
};

struct UsageError {
    std::string message;
};

std::variant<Options, UsageError> parse_options(int argc, const char* const argv[]);
const char* usage_text();

}  // namespace zk::app
