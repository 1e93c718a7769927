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
    std::optional<std::string> backend;    // overrides [store] backend
    std::optional<std::string> worker_name;  // overrides [service] worker_name
};

struct UsageError {
    std::string message;
};

std::variant<Options, UsageError> parse_options(int argc, const char* const argv[]);
const char* usage_text();

}  // namespace zk::app
