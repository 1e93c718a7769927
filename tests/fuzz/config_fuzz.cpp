// libFuzzer target: zk::parse_config on arbitrary text.
//
// Properties beyond "no crash, no sanitizer report":
//   - an error names the file and a line inside the text (0..lines+1);
//   - an accepted config meets the invariants the worker relies on (four
//     non-empty word lists of short URL-safe animals, min <= max, limits in
//     range);
//   - round trip: an accepted config written back as INI parses to the same
//     values, so nothing the parser accepts depends on how it was spelled.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace {

const std::string file = "fuzz.conf";

void require(bool ok, const char* what)
{
    if (ok) return;
    std::fprintf(stderr, "config_fuzz: property violated: %s\n", what);
    std::abort();
}

std::string number(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string render(const zk::Config& c)
{
    std::string t;
    auto words = [&](const char* name, const std::vector<std::string>& list) {
        t.append("[").append(name).append("]\n");
        for (const auto& w : list) t.append(w).append("\n");
    };
    words("animals", c.animals);
    words("verbs", c.verbs);
    words("adjectives", c.adjectives);
    words("adverbs", c.adverbs);
    t.append("[workload]\nmin_seconds = ").append(number(c.workload.min_seconds));
    t.append("\nmax_seconds = ").append(number(c.workload.max_seconds));
    const auto& s = c.service;
    t.append("\n[service]\nacceptor_threads = ").append(std::to_string(s.acceptor_threads));
    t.append("\nawake_acceptors = ").append(std::to_string(s.awake_acceptors));
    t.append("\npool_threads = ").append(std::to_string(s.pool_threads));
    t.append("\nqueue_capacity = ").append(std::to_string(s.queue_capacity));
    t.append("\nmax_jobs = ").append(std::to_string(s.max_jobs));
    t.append("\nresult_ttl = ").append(number(s.result_ttl));
    t.append("\nlog_level = ").append(s.log_level);
    t.append("\n[store]\ndir = ").append(c.store.dir);
    t.append("\ncommit_interval_ms = ").append(std::to_string(c.store.commit_interval_ms)).append("\n");
    return t;
}

bool same(const zk::Config& a, const zk::Config& b)
{
    return a.animals == b.animals && a.verbs == b.verbs && a.adjectives == b.adjectives && a.adverbs == b.adverbs &&
           a.workload.min_seconds == b.workload.min_seconds && a.workload.max_seconds == b.workload.max_seconds &&
           a.service.acceptor_threads == b.service.acceptor_threads &&
           a.service.awake_acceptors == b.service.awake_acceptors &&
           a.service.pool_threads == b.service.pool_threads && a.service.queue_capacity == b.service.queue_capacity &&
           a.service.max_jobs == b.service.max_jobs && a.service.result_ttl == b.service.result_ttl &&
           a.service.log_level == b.service.log_level && a.store.dir == b.store.dir &&
           a.store.commit_interval_ms == b.store.commit_interval_ms;
}

bool url_safe(const std::string& w)
{
    for (unsigned char ch : w)
        if (!(std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')) return false;
    return !w.empty() && w != "." && w != "..";
}

void check_invariants(const zk::Config& c)
{
    for (const auto* list : {&c.animals, &c.verbs, &c.adjectives, &c.adverbs}) {
        require(!list->empty(), "an accepted config has an empty word list");
        for (const auto& w : *list) require(!w.empty() && w.size() <= 64, "an accepted word is empty or too long");
    }
    for (const auto& a : c.animals) require(url_safe(a), "an accepted animal is not URL-safe");
    require(c.workload.min_seconds > 0 && c.workload.min_seconds <= c.workload.max_seconds,
            "accepted workload bounds are out of order");
    require(c.service.acceptor_threads >= 1 && c.service.pool_threads >= 1, "an accepted thread count is 0");
    require(c.service.awake_acceptors <= c.service.acceptor_threads, "accepted more awake acceptors than acceptors");
    require(c.service.queue_capacity >= 1 && c.service.max_jobs >= 1, "an accepted limit is 0");
    require(c.service.result_ttl > 0, "an accepted result_ttl is not positive");
    require(!c.store.dir.empty() && c.store.dir[0] == '/', "an accepted store dir is not absolute");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = zk::parse_config(text, file);
    if (auto* e = std::get_if<zk::ConfigError>(&parsed)) {
        std::size_t lines = 0;
        for (char ch : text) lines += ch == '\n';
        require(e->file == file, "an error names another file");
        require(e->line >= 0 && static_cast<std::size_t>(e->line) <= lines + 1, "an error names a line outside the text");
        require(!e->problem.empty(), "an error without a problem");
        require(e->str().rfind(file + ":", 0) == 0, "an error message does not start with FILE:");
        return 0;
    }
    const auto& config = std::get<zk::Config>(parsed);
    check_invariants(config);
    auto again = zk::parse_config(render(config), file);
    require(std::holds_alternative<zk::Config>(again), "an accepted config, written back, is refused");
    require(same(config, std::get<zk::Config>(again)), "an accepted config, written back, parses differently");
    return 0;
}
