// Structured logging to stderr: one logfmt line per event
// (ts=… level=… event=… key=value …), written with a single write(2) so
// lines from different threads never interleave.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zk::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

std::optional<Level> parse_level(std::string_view name);
void set_level(Level level);
bool enabled(Level level);

// Builds one line; the destructor writes it if the level is enabled.
class Line {
public:
    Line(Level level, std::string_view event);
    ~Line();
    Line(const Line&) = delete;
    Line& operator=(const Line&) = delete;

    Line& kv(std::string_view key, std::string_view value);
    Line& kv(std::string_view key, std::int64_t value);

private:
    bool on_;
    std::string text_;
};

inline Line debug(std::string_view event) { return Line(Level::debug, event); }
inline Line info(std::string_view event) { return Line(Level::info, event); }
inline Line warn(std::string_view event) { return Line(Level::warn, event); }
inline Line error(std::string_view event) { return Line(Level::error, event); }

}  // namespace zk::log
