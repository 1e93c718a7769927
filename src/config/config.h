// zookeeper.conf: the original's INI word lists ([animals], [verbs],
// [adjectives], [adverbs]; one key-only line per word) plus [workload],
// [service] and [store] with `key = value` lines. Every key, its default and
// its range live in one table (config/settings.h); every error names the
// file, the line and what is wrong.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zk {

// The settings, zero until set: their defaults and meanings are the rows of
// config/settings.cpp (default_config() applies them; so does the parser).
struct WorkloadSettings {
    double min_seconds = 0;
    double max_seconds = 0;
};

struct ServiceSettings {
    std::size_t acceptor_threads = 0;
    std::size_t awake_acceptors = 0;
    std::size_t pool_threads = 0;
    std::size_t queue_capacity = 0;
    std::size_t max_jobs = 0;
    double result_ttl = 0;
    std::size_t max_wait_seconds = 0;
    std::size_t max_waiters = 0;
    std::string log_level;
    std::string worker_name;
};

struct StoreSettings {
    std::string backend;
    std::string dir;
    std::size_t commit_interval_ms = 0;
    std::string url;
    std::size_t read_connections = 0;
    std::size_t statement_timeout_ms = 0;
    std::size_t connect_timeout_s = 0;
    std::size_t reconnect_interval_ms = 0;
    std::size_t rescue_after_ms = 0;
    std::size_t sweep_interval_ms = 0;
};

struct Config {
    std::string path;
    std::vector<std::string> animals, verbs, adjectives, adverbs;
    WorkloadSettings workload;
    ServiceSettings service;
    StoreSettings store;
    // Where each setting was given: "section.key" → line, for errors found
    // after parsing (an unreachable database names the url's line).
    std::map<std::string, int> lines;
};

struct ConfigError {
    std::string file;
    int line = 0;  // 0: the file as a whole (unreadable)
    std::string problem;
    std::string str() const;  // "file:line: problem"
};

using ConfigResult = std::variant<Config, ConfigError>;

ConfigResult parse_config(std::string_view text, const std::string& file);
ConfigResult load_config(const std::string& path);

}  // namespace zk
