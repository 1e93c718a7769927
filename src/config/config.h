// zookeeper.conf: the original's INI word lists ([animals], [verbs],
// [adjectives], [adverbs]; one key-only line per word) plus [workload],
// [service] and [store] with `key = value` lines. Defaults live here, in one
// place; every error names the file, the line and what is wrong.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zk {

struct WorkloadSettings {
    double min_seconds = 10;
    double max_seconds = 20;
};

struct ServiceSettings {
    std::size_t acceptor_threads = 8;
    std::size_t awake_acceptors = 1;  // acceptors that may sleep waiting for work
    std::size_t pool_threads = 2;
    std::size_t queue_capacity = 4096;  // due pool tasks waiting; beyond it the timer waits
    std::size_t max_jobs = 100'000;     // queued + running surveys; beyond it 503
    double result_ttl = 3600;           // seconds a finished survey is kept
    std::size_t max_wait_seconds = 30;  // the longest ?wait= a poll may ask for
    std::size_t max_waiters = 0;        // waiting polls at once; 0: half of RLIMIT_NOFILE
    std::string log_level = "info";
};

struct StoreSettings {
    std::string dir = "/var/lib/zookeeper";
    std::size_t commit_interval_ms = 0;  // extra wait to gather a batch; 0: batches form while a commit runs
};

struct Config {
    std::string path;
    std::vector<std::string> animals, verbs, adjectives, adverbs;
    WorkloadSettings workload;
    ServiceSettings service;
    StoreSettings store;
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
