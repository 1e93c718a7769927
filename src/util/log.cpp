// The logfmt writer. Values that could break the line (spaces, quotes,
// control characters) are quoted and escaped: request paths are user input.

#include "util/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>

#include "util/rfc3339.h"

namespace zk::log {

namespace {

std::atomic<int> min_level{static_cast<int>(Level::info)};
constexpr std::size_t max_value_length = 256;  // user text is cut, not echoed whole

const char* name(Level level)
{
    switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    }
    return "info";
}

bool needs_quotes(std::string_view v)
{
    if (v.empty()) return true;
    for (unsigned char c : v)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
    return false;
}

void append_value(std::string& out, std::string_view v)
{
    const bool cut = v.size() > max_value_length;
    if (cut) v = v.substr(0, max_value_length);
    if (!needs_quotes(v) && !cut) {
        out.append(v);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c < ' ' || c == 0x7f) {
            out.append("\\x").push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (cut) out.append("...");
    out.push_back('"');
}

}  // namespace

std::optional<Level> parse_level(std::string_view n)
{
    for (Level l : {Level::debug, Level::info, Level::warn, Level::error})
        if (n == name(l)) return l;
    return std::nullopt;
}

void set_level(Level level) { min_level = static_cast<int>(level); }
bool enabled(Level level) { return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed); }

Line::Line(Level level, std::string_view event) : on_(enabled(level))
{
    if (!on_) return;
    using namespace std::chrono;
    const auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    text_.reserve(160);
    text_.append("ts=").append(rfc3339(now)).append(" level=").append(name(level)).append(" event=");
    append_value(text_, event);
}

Line& Line::kv(std::string_view key, std::string_view value)
{
    if (on_) {
        text_.append(" ").append(key).append("=");
        append_value(text_, value);
    }
    return *this;
}

Line& Line::kv(std::string_view key, std::int64_t value)
{
    if (on_) text_.append(" ").append(key).append("=").append(std::to_string(value));
    return *this;
}

Line::~Line()
{
    if (!on_) return;
    text_.push_back('\n');
    // Best effort: a log line that cannot be written is not worth failing a request.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, text_.data(), text_.size());
}

}  // namespace zk::log
