// The zookeeper.conf parser: one pass, line by line, first error wins.

#include "config/config.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace zk {

namespace {

constexpr double max_workload_seconds = 86'400;   // a day: anything longer is a typo
constexpr std::size_t max_threads = 256;
constexpr std::size_t max_word_length = 64;
constexpr std::size_t max_wait_limit_seconds = 3600;  // nginx's read timeout must exceed it

std::string_view trim(std::string_view s)
{
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

// Animals appear in URL paths, so they are limited to RFC 3986 unreserved characters.
bool url_safe(std::string_view s)
{
    for (unsigned char c : s)
        if (!std::isalnum(c) && c != '-' && c != '_' && c != '.' && c != '~') return false;
    return s != "." && s != "..";
}

bool printable_word(std::string_view s)
{
    for (unsigned char c : s)
        if (c <= ' ' || c == 0x7f || c == '"' || c == '\\') return false;
    return true;
}

class Parser {
public:
    explicit Parser(const std::string& file) { config_.path = file; }
    ConfigResult run(std::string_view text);

private:
    using Error = std::optional<ConfigError>;
    Error fail(std::string problem) const { return ConfigError{config_.path, line_, std::move(problem)}; }
    Error line(std::string_view text);
    Error section(std::string_view name);
    Error word(std::string_view text);
    Error setting(std::string_view key, std::string_view value);
    Error workload(std::string_view key, std::string_view value);
    Error service(std::string_view key, std::string_view value);
    Error store(std::string_view key, std::string_view value);
    Error number(std::string_view value, double min, double max, double& out) const;
    Error count(std::string_view value, std::size_t min, std::size_t max, std::size_t& out) const;
    Error finish();
    std::vector<std::string>* words(const std::string& section);

    Config config_;
    int line_ = 0;
    std::string section_;
    std::map<std::string, int> section_lines_;            // section → header line
    std::map<std::string, std::map<std::string, int>> seen_;  // section → word/key → line
};

ConfigResult Parser::run(std::string_view text)
{
    while (!text.empty()) {
        ++line_;
        const auto nl = text.find('\n');
        const auto raw = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (auto e = line(raw)) return *e;
    }
    if (auto e = finish()) return *e;
    return config_;
}

Parser::Error Parser::line(std::string_view raw)
{
    if (raw.find('\0') != std::string_view::npos) return fail("NUL byte in line");
    const auto text = trim(raw);
    if (text.empty() || text[0] == '#' || text[0] == ';') return std::nullopt;
    if (text.front() == '[') {
        if (text.back() != ']') return fail("section header must end with ']'");
        return section(trim(text.substr(1, text.size() - 2)));
    }
    if (section_.empty()) return fail("line outside any section");
    const auto eq = text.find('=');
    if (words(section_)) {
        if (eq != std::string_view::npos) return fail("[" + section_ + "] takes one word per line, not key = value");
        return word(text);
    }
    if (eq == std::string_view::npos) return fail("expected key = value in [" + section_ + "]");
    return setting(trim(text.substr(0, eq)), trim(text.substr(eq + 1)));
}

std::vector<std::string>* Parser::words(const std::string& name)
{
    if (name == "animals") return &config_.animals;
    if (name == "verbs") return &config_.verbs;
    if (name == "adjectives") return &config_.adjectives;
    if (name == "adverbs") return &config_.adverbs;
    return nullptr;
}

Parser::Error Parser::section(std::string_view name)
{
    const std::string s(name);
    if (!words(s) && s != "workload" && s != "service" && s != "store")
        return fail("unknown section [" + s + "]");
    if (auto it = section_lines_.find(s); it != section_lines_.end())
        return fail("section [" + s + "] repeated (first on line " + std::to_string(it->second) + ")");
    section_lines_[s] = line_;
    section_ = s;
    return std::nullopt;
}

Parser::Error Parser::word(std::string_view text)
{
    const std::string w(text);
    const std::string kind = section_.substr(0, section_.size() - 1);  // "animals" → "animal"
    if (w.size() > max_word_length) return fail(kind + " longer than " + std::to_string(max_word_length) + " characters");
    if (section_ == "animals" && !url_safe(w))
        return fail("animal '" + w + "' must use only letters, digits, '-', '_', '.', '~'");
    if (!printable_word(w)) return fail(kind + " '" + w + "' must be one word without spaces, quotes or control characters");
    auto& seen = seen_[section_];
    if (auto it = seen.find(w); it != seen.end())
        return fail("duplicate " + kind + " '" + w + "' (first on line " + std::to_string(it->second) + ")");
    seen[w] = line_;
    words(section_)->push_back(w);
    return std::nullopt;
}

Parser::Error Parser::setting(std::string_view key, std::string_view value)
{
    const std::string k(key);
    auto& seen = seen_[section_];
    if (auto it = seen.find(k); it != seen.end())
        return fail("'" + k + "' set twice in [" + section_ + "] (first on line " + std::to_string(it->second) + ")");
    seen[k] = line_;
    if (section_ == "workload") return workload(key, value);
    if (section_ == "service") return service(key, value);
    return store(key, value);
}

Parser::Error Parser::workload(std::string_view key, std::string_view value)
{
    auto& w = config_.workload;
    if (key == "min_seconds") return number(value, 0.001, max_workload_seconds, w.min_seconds);
    if (key == "max_seconds") return number(value, 0.001, max_workload_seconds, w.max_seconds);
    return fail("unknown key '" + std::string(key) + "' in [workload] (expected min_seconds, max_seconds)");
}

Parser::Error Parser::service(std::string_view key, std::string_view value)
{
    auto& s = config_.service;
    if (key == "acceptor_threads") return count(value, 1, max_threads, s.acceptor_threads);
    if (key == "awake_acceptors") return count(value, 1, max_threads, s.awake_acceptors);
    if (key == "pool_threads") return count(value, 1, max_threads, s.pool_threads);
    if (key == "queue_capacity") return count(value, 1, 10'000'000, s.queue_capacity);
    if (key == "max_jobs") return count(value, 1, 100'000'000, s.max_jobs);
    if (key == "result_ttl") return number(value, 0.001, 365.0 * 86'400, s.result_ttl);
    if (key == "max_wait_seconds") return count(value, 1, max_wait_limit_seconds, s.max_wait_seconds);
    if (key == "max_waiters") return count(value, 0, 10'000'000, s.max_waiters);
    if (key == "log_level") {
        if (value != "debug" && value != "info" && value != "warn" && value != "error")
            return fail("log_level must be debug, info, warn or error, not '" + std::string(value) + "'");
        s.log_level = value;
        return std::nullopt;
    }
    return fail("unknown key '" + std::string(key) +
                "' in [service] (expected acceptor_threads, awake_acceptors, pool_threads, queue_capacity, max_jobs, result_ttl, max_wait_seconds, max_waiters, log_level)");
}

Parser::Error Parser::store(std::string_view key, std::string_view value)
{
    auto& s = config_.store;
    if (key == "dir") {
        if (value.empty() || value[0] != '/') return fail("[store] dir must be an absolute path");
        s.dir = value;
        return std::nullopt;
    }
    if (key == "commit_interval_ms") return count(value, 0, 1000, s.commit_interval_ms);
    return fail("unknown key '" + std::string(key) + "' in [store] (expected dir, commit_interval_ms)");
}

Parser::Error Parser::number(std::string_view value, double min, double max, double& out) const
{
    double v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty())
        return fail("'" + std::string(value) + "' is not a number");
    if (!(v >= min && v <= max)) {
        std::ostringstream m;
        m << "'" << value << "' is out of range (" << min << " to " << max << ")";
        return fail(m.str());
    }
    out = v;
    return std::nullopt;
}

Parser::Error Parser::count(std::string_view value, std::size_t min, std::size_t max, std::size_t& out) const
{
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty())
        return fail("'" + std::string(value) + "' is not a whole number");
    if (v < min || v > max)
        return fail("'" + std::string(value) + "' is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
    out = v;
    return std::nullopt;
}

Parser::Error Parser::finish()
{
    for (const char* name : {"animals", "verbs", "adjectives", "adverbs"}) {
        auto it = section_lines_.find(name);
        if (it == section_lines_.end()) return fail(std::string("missing section [") + name + "]");
        if (words(name)->empty()) {
            line_ = it->second;
            return fail(std::string("section [") + name + "] is empty");
        }
    }
    if (config_.workload.min_seconds > config_.workload.max_seconds) {
        line_ = section_lines_["workload"];
        return fail("[workload] min_seconds is greater than max_seconds");
    }
    if (config_.service.awake_acceptors > config_.service.acceptor_threads) {
        line_ = section_lines_["service"];
        return fail("[service] awake_acceptors is greater than acceptor_threads");
    }
    return std::nullopt;
}

}  // namespace

std::string ConfigError::str() const
{
    return file + ":" + std::to_string(line) + ": " + problem;
}

ConfigResult parse_config(std::string_view text, const std::string& file)
{
    return Parser(file).run(text);
}

ConfigResult load_config(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return ConfigError{path, 0, "cannot read the file"};
    // read() turns a failing read (EISDIR: opening a directory succeeds) into
    // badbit on `in`; `buf << in.rdbuf()` reported it on `buf` only, and a
    // directory then parsed as an empty file ("missing section [animals]").
    std::string text;
    char chunk[8192];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) text.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (in.bad()) return ConfigError{path, 0, "cannot read the file"};
    return parse_config(text, path);
}

}  // namespace zk
