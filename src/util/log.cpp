// The logfmt writer. Values that could break the line (spaces, quotes,
// control characters) are quoted and escaped: request paths are user input.
//
// Cost: the per-request line is built in a per-thread buffer (no allocation
// once it has grown), its timestamp from a per-thread copy of the current
// second's text (gmtime_r once a second, not per line), numbers with
// to_chars; in a batch (log.h) the buffer also gathers the lines for one
// write(2). Measured with callgrind behind bench/profile.sh: docs/performance.md.

#include "util/log.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <limits>

#include "util/rfc3339.h"

namespace zk::log {

namespace {

std::atomic<int> min_level{static_cast<int>(Level::info)};
constexpr std::size_t max_value_length = 256;  // user text is cut, not echoed whole

// One thread's logging state. `buf` holds the gathered lines of a batch
// (none without one), then the line being built, from `open_start` on.
struct ThreadLog {
    std::string buf;
    std::size_t open_start = 0;
    bool line_open = false;
    bool batching = false;
    std::int64_t delay_ms = 0;
    std::int64_t oldest_ms = 0;  // the first gathered line's time
    std::int64_t second = std::numeric_limits<std::int64_t>::min();
    std::string stamp;  // rfc3339 of `second`, without its "mmmZ"

    ~ThreadLog() { write_gathered(); }  // a thread's exit writes what it gathered

    // Writes buf[0, open_start) (whole lines) and keeps any open line.
    void write_gathered()
    {
        const std::size_t n = line_open ? open_start : buf.size();
        if (n == 0) return;
        write_bytes(buf.data(), n);
        buf.erase(0, n);
        open_start = 0;
    }

    static void write_bytes(const char* data, std::size_t size)
    {
        // Best effort: a log line that cannot be written is not worth failing a request.
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, data, size);
    }
};

thread_local ThreadLog this_thread;

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

// Bytes that make a value need quotes: controls, space, '"', '=', '\\', DEL.
constexpr std::array<bool, 256> quoted = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c <= ' '; ++c) t[static_cast<std::size_t>(c)] = true;
    for (unsigned char c : {'"', '=', '\\', '\x7f'}) t[c] = true;
    return t;
}();

bool needs_quotes(std::string_view v)
{
    if (v.empty()) return true;
    for (unsigned char c : v)
        if (quoted[c]) return true;
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

// rfc3339(unix_ms), from the thread's copy of the current second's text.
void append_timestamp(std::string& out, ThreadLog& t, std::int64_t unix_ms)
{
    const std::int64_t ms = ((unix_ms % 1000) + 1000) % 1000;  // floored, as rfc3339 does
    const std::int64_t second = (unix_ms - ms) / 1000;
    if (second != t.second) {
        t.stamp = rfc3339(second * 1000);
        t.stamp.resize(t.stamp.size() - 4);  // "...SS." stays
        t.second = second;
    }
    out.append(t.stamp);
    const char digits[4] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                            static_cast<char>('0' + ms % 10), 'Z'};
    out.append(digits, sizeof digits);
}

std::int64_t now_ms()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
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

Line::Line(Level level, std::string_view event) : level_(level), on_(enabled(level))
{
    if (!on_) return;
    ms_ = now_ms();
    ThreadLog& t = this_thread;
    if (!t.line_open) {
        t.line_open = true;
        t.open_start = t.buf.size();
        out_ = &t.buf;
    } else {
        out_ = &text_;
    }
    std::string& out = *out_;
    out.append("ts=");
    append_timestamp(out, t, ms_);
    out.append(" level=").append(name(level)).append(" event=");
    append_value(out, event);
}

Line& Line::kv(std::string_view key, std::string_view value)
{
    if (on_) {
        out_->append(" ").append(key).append("=");
        append_value(*out_, value);
    }
    return *this;
}

Line& Line::kv(std::string_view key, std::int64_t value)
{
    if (on_) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
        out_->append(" ").append(key).append("=").append(digits, end);
    }
    return *this;
}

Line::~Line()
{
    if (!on_) return;
    out_->push_back('\n');
    ThreadLog& t = this_thread;
    if (out_ == &text_) {  // built inside another open line: the gathered lines, then this one
        iovec parts[2] = {{t.buf.data(), t.open_start}, {text_.data(), text_.size()}};
        [[maybe_unused]] auto n = ::writev(STDERR_FILENO, parts, 2);
        t.buf.erase(0, t.open_start);
        t.open_start = 0;
        return;
    }
    t.line_open = false;
    if (!t.batching) {
        t.write_gathered();
        return;
    }
    if (t.open_start == 0) t.oldest_ms = ms_;
    if (t.buf.size() > batch_bytes && t.open_start > 0) {  // this one would overflow the batch
        ThreadLog::write_bytes(t.buf.data(), t.open_start);
        t.buf.erase(0, t.open_start);
        t.oldest_ms = ms_;
    }
    t.open_start = 0;
    // A clock stepped back by more than the delay also writes: better early than late.
    const std::int64_t age = ms_ - t.oldest_ms;
    if (level_ >= Level::warn || t.buf.size() >= batch_bytes || age >= t.delay_ms || age < -t.delay_ms)
        t.write_gathered();
}

Batch::Batch(std::chrono::milliseconds delay) : owner_(!this_thread.batching)
{
    if (!owner_) return;
    this_thread.batching = true;
    this_thread.delay_ms = delay.count();
}

Batch::~Batch()
{
    if (!owner_) return;
    this_thread.write_gathered();
    this_thread.batching = false;
}

void flush() { this_thread.write_gathered(); }

std::optional<std::chrono::milliseconds> flush_due()
{
    const ThreadLog& t = this_thread;
    if ((t.line_open ? t.open_start : t.buf.size()) == 0) return std::nullopt;
    const std::int64_t left = t.delay_ms - (now_ms() - t.oldest_ms);
    return std::chrono::milliseconds(std::clamp<std::int64_t>(left, 0, t.delay_ms));
}

}  // namespace zk::log
