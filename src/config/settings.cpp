// The settings table and the value parsers it names. Error texts are the
// ones the parser has always given; config.cpp adds the file and line.

#include "config/settings.h"

#include <cctype>
#include <charconv>
#include <sstream>

#include "util/log.h"

namespace zk {

namespace {

constexpr double max_workload_seconds = 86'400;  // a day: anything longer is a typo
constexpr double max_threads = 256;
constexpr double max_ttl_seconds = 365.0 * 86'400;
constexpr double max_wait_limit_seconds = 3600;  // nginx's fastcgi_read_timeout must exceed it

using K = SettingKind;

// Grouped by section, in zookeeper.conf's order: unknown-key errors list them so.
constexpr Setting table[] = {
    {"workload", "min_seconds", K::number, 0.001, max_workload_seconds, "10", "shortest survey, in seconds",
     [](Config& c) -> SettingField { return &c.workload.min_seconds; }, true},
    {"workload", "max_seconds", K::number, 0.001, max_workload_seconds, "20", "longest survey, in seconds",
     [](Config& c) -> SettingField { return &c.workload.max_seconds; }, true},
    {"service", "acceptor_threads", K::count, 1, max_threads, "8", "threads that accept and answer FastCGI requests",
     [](Config& c) -> SettingField { return &c.service.acceptor_threads; }},
    {"service", "awake_acceptors", K::count, 1, max_threads, "1", "acceptors that may sleep waiting for work",
     [](Config& c) -> SettingField { return &c.service.awake_acceptors; }},
    {"service", "pool_threads", K::count, 1, max_threads, "2", "threads that complete and expire surveys",
     [](Config& c) -> SettingField { return &c.service.pool_threads; }},
    {"service", "queue_capacity", K::count, 1, 10'000'000, "4096", "due pool tasks that may wait; beyond it the timer waits",
     [](Config& c) -> SettingField { return &c.service.queue_capacity; }},
    {"service", "max_jobs", K::count, 1, 100'000'000, "100000", "queued + running surveys; beyond it 503",
     [](Config& c) -> SettingField { return &c.service.max_jobs; }, true},
    {"service", "result_ttl", K::number, 0.001, max_ttl_seconds, "3600", "seconds a finished survey stays queryable",
     [](Config& c) -> SettingField { return &c.service.result_ttl; }, true},
    {"service", "max_wait_seconds", K::count, 1, max_wait_limit_seconds, "30", "the longest ?wait= a poll may ask for, in seconds",
     [](Config& c) -> SettingField { return &c.service.max_wait_seconds; }, true},
    {"service", "max_waiters", K::count, 0, 10'000'000, "0", "waiting polls held at once; 0: half the descriptor limit",
     [](Config& c) -> SettingField { return &c.service.max_waiters; }, true},
    {"service", "log_level", K::log_level, 0, 0, "info", "least severe level logged: debug, info, warn or error",
     [](Config& c) -> SettingField { return &c.service.log_level; }, true},
    {"service", "worker_name", K::name, 0, 0, "", "this worker's name in /healthz, /metrics and logs; empty: host:pid",
     [](Config& c) -> SettingField { return &c.service.worker_name; }},
    {"store", "backend", K::backend, 0, 0, "sqlite", "sqlite (one worker) or postgresql (several workers, one database)",
     [](Config& c) -> SettingField { return &c.store.backend; }},
    {"store", "dir", K::absolute_path, 0, 0, "/var/lib/zookeeper", "sqlite: where the job database lives",
     [](Config& c) -> SettingField { return &c.store.dir; }},
    {"store", "commit_interval_ms", K::count, 0, 1000, "0", "extra wait to gather a commit batch; 0: none",
     [](Config& c) -> SettingField { return &c.store.commit_interval_ms; }},
    {"store", "url", K::text, 0, 0, "", "postgresql: libpq connection string or URI; ZOOKEEPER_STORE_URL overrides it",
     [](Config& c) -> SettingField { return &c.store.url; }},
    {"store", "read_connections", K::count, 1, 64, "4", "postgresql: connections for reads (polls of jobs held elsewhere, /jobs, sweeps)",
     [](Config& c) -> SettingField { return &c.store.read_connections; }},
    {"store", "statement_timeout_ms", K::count, 100, 600'000, "5000", "longest wait for one statement (SQLite: for another connection's write lock); a request waits for the store at most this + 500 ms",
     [](Config& c) -> SettingField { return &c.store.statement_timeout_ms; }},
    {"store", "connect_timeout_s", K::count, 1, 300, "5", "postgresql: longest wait for a connection",
     [](Config& c) -> SettingField { return &c.store.connect_timeout_s; }},
    {"store", "reconnect_interval_ms", K::count, 100, 60'000, "1000", "pause between reconnects while the store is unavailable (503s meanwhile)",
     [](Config& c) -> SettingField { return &c.store.reconnect_interval_ms; }},
    {"store", "rescue_after_ms", K::count, 100, 3'600'000, "2000", "postgresql: how late a survey may be before any worker completes it",
     [](Config& c) -> SettingField { return &c.store.rescue_after_ms; }},
    {"store", "sweep_interval_ms", K::count, 100, 60'000, "500", "postgresql: how often each worker sweeps for late and expired surveys",
     [](Config& c) -> SettingField { return &c.store.sweep_interval_ms; }},
};

std::optional<std::string> number(std::string_view value, const Setting& s, double& out)
{
    double v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty())
        return "'" + std::string(value) + "' is not a number";
    if (!(v >= s.min && v <= s.max)) {
        std::ostringstream m;
        m << "'" << value << "' is out of range (" << s.min << " to " << s.max << ")";
        return m.str();
    }
    out = v;
    return std::nullopt;
}

std::optional<std::string> count(std::string_view value, const Setting& s, std::size_t& out)
{
    const auto min = static_cast<std::size_t>(s.min), max = static_cast<std::size_t>(s.max);
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty())
        return "'" + std::string(value) + "' is not a whole number";
    if (v < min || v > max)
        return "'" + std::string(value) + "' is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")";
    out = v;
    return std::nullopt;
}

// Shown in metric labels and log lines unquoted: nothing that needs escaping.
bool worker_name(std::string_view v)
{
    constexpr std::size_t max_length = 64;
    if (v.size() > max_length) return false;
    for (unsigned char c : v)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != '-' && c != ':') return false;
    return true;
}

std::optional<std::string> text(std::string_view value, const Setting& s, std::string& out)
{
    if (s.kind == K::log_level && !log::parse_level(value))
        return std::string(s.key) + " must be debug, info, warn or error, not '" + std::string(value) + "'";
    if (s.kind == K::absolute_path && (value.empty() || value[0] != '/'))
        return "[" + std::string(s.section) + "] " + std::string(s.key) + " must be an absolute path";
    if (s.kind == K::name && !worker_name(value))
        return std::string(s.key) + " may hold only up to 64 letters, digits and . _ - :, not '" + std::string(value) + "'";
    if (s.kind == K::backend && value != "sqlite" && value != "postgresql")
        return std::string(s.key) + " must be sqlite or postgresql, not '" + std::string(value) + "'";
    out = value;
    return std::nullopt;
}

}  // namespace

std::span<const Setting> settings() { return table; }

const Setting* find_setting(std::string_view section, std::string_view key)
{
    for (const Setting& s : table)
        if (s.section == section && s.key == key) return &s;
    return nullptr;
}

std::optional<std::string> apply_setting(const Setting& setting, std::string_view value, Config& config)
{
    // A row whose field does not fit its kind throws bad_variant_access;
    // settings_test applies every row, so no such row ships.
    const SettingField field = setting.field(config);
    switch (setting.kind) {
    case K::number: return number(value, setting, *std::get<double*>(field));
    case K::count: return count(value, setting, *std::get<std::size_t*>(field));
    case K::log_level:
    case K::absolute_path:
    case K::backend:
    case K::text:
    case K::name: break;
    }
    return text(value, setting, *std::get<std::string*>(field));
}

std::vector<const Setting*> changed_settings(const Config& before, const Config& after)
{
    Config a = before, b = after;  // field() takes a mutable Config
    std::vector<const Setting*> changed;
    for (const Setting& s : table) {
        const SettingField fb = s.field(b);
        const bool differs = std::visit([&](auto* x) { return *x != *std::get<decltype(x)>(fb); }, s.field(a));
        if (differs) changed.push_back(&s);
    }
    return changed;
}

Config default_config()
{
    Config c;
    // Cannot fail: settings_test parses every default through the same path.
    for (const Setting& s : table) apply_setting(s, s.default_text, c);
    return c;
}

}  // namespace zk
