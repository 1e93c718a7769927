// Structured logging to stderr: one logfmt line per event
// (ts=… level=… event=… key=value …). Lines are written whole with write(2),
// never split across writes, so lines from different threads never
// interleave.
//
// Batches: a thread that logs a line per request (the transport's acceptor
// threads) holds a log::Batch while it serves; its lines are then gathered
// and written together, one write(2) for up to batch_bytes, instead of one
// per line. They go out at the latest when the batch would overflow, when a
// warn or error line is logged (with everything gathered before it, in
// order), when a gathered line is max_delay old and the thread logs again or
// waits, when the thread calls flush() (the transport does before it waits
// for work or blocks), and when the Batch ends. Threads without a Batch
// write each line at once. What a crash loses: the lines a busy thread
// gathered in its last max_delay at most; nginx's access log has those
// requests too, under the same request ids. Lines of different threads can
// reach the log out of time order by up to max_delay (their ts= says when);
// each thread's stay in order.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zk::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

std::optional<Level> parse_level(std::string_view name);
void set_level(Level level);
bool enabled(Level level);

// Builds one line; the destructor writes it (or adds it to the thread's
// batch) if the level is enabled.
class Line {
public:
    Line(Level level, std::string_view event);
    ~Line();
    Line(const Line&) = delete;
    Line& operator=(const Line&) = delete;

    Line& kv(std::string_view key, std::string_view value);
    Line& kv(std::string_view key, std::int64_t value);

private:
    Level level_;
    bool on_;
    std::int64_t ms_ = 0;  // the line's time (unix ms)
    // The thread's buffer when this is the thread's only open line (no
    // allocation per line), else text_: a line built while another is open
    // (a value computed by code that logs) must not land inside it.
    std::string* out_ = nullptr;
    std::size_t start_ = 0;  // where this line begins in *out_
    std::string text_;
};

inline Line debug(std::string_view event) { return Line(Level::debug, event); }
inline Line info(std::string_view event) { return Line(Level::info, event); }
inline Line warn(std::string_view event) { return Line(Level::warn, event); }
inline Line error(std::string_view event) { return Line(Level::error, event); }

constexpr std::size_t batch_bytes = 4096;  // PIPE_BUF: a write to a pipe this size is atomic
constexpr std::chrono::milliseconds max_delay{50};

// Gathers the calling thread's lines while it lives (see the top of this
// file). Not nested: a second Batch on the same thread changes nothing.
class Batch {
public:
    explicit Batch(std::chrono::milliseconds delay = max_delay);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

private:
    bool owner_;
};

// Writes the calling thread's gathered lines now; nothing if there are none.
void flush();

// How long the calling thread may wait before its oldest gathered line is
// due: nullopt if it has none (wait as long as you like), zero if one is due.
std::optional<std::chrono::milliseconds> flush_due();

}  // namespace zk::log
