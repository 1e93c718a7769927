// Availability: the up/down state behind one mutex, and the lines that tell
// an operator about it, rate-limited here so that no caller has to.

#include "storage/availability.h"

#include <cstdio>

#include "util/log.h"

namespace zk::storage {

namespace {

// Seconds with one decimal, for for_s= and down_s=.
std::string seconds(std::chrono::steady_clock::duration d)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", std::chrono::duration<double>(d).count());
    return buf;
}

}  // namespace

Availability::Availability(std::string store, std::chrono::milliseconds remind_every, Now now)
    : store_(std::move(store)),
      remind_every_(remind_every),
      now_(now ? std::move(now) : Now([] { return std::chrono::steady_clock::now(); }))
{
}

// Going down logs at once; staying down logs a reminder when one is due and
// otherwise only at debug level.
void Availability::failed(std::string_view why)
{
    enum class Say { went_down, reminder, quiet } say = Say::quiet;
    std::string down_for;
    {
        std::lock_guard lock(mutex_);
        const TimePoint now = now_();
        reason_.assign(why);
        if (up_.load(std::memory_order_relaxed)) {
            up_.store(false, std::memory_order_release);
            down_since_ = reminded_at_ = now;
            say = Say::went_down;
        } else if (now - reminded_at_ >= remind_every_) {
            reminded_at_ = now;
            down_for = seconds(now - down_since_);
            say = Say::reminder;
        }
    }
    if (say == Say::went_down) log::warn("store_unavailable").kv("store", store_).kv("error", why);
    else if (say == Say::reminder)
        log::warn("store_still_unavailable").kv("store", store_).kv("for_s", down_for).kv("error", why);
    else if (log::enabled(log::Level::debug)) log::debug("store_failure").kv("store", store_).kv("error", why);
}

void Availability::succeeded()
{
    if (up()) return;  // the common case: no lock
    std::string down_for;
    {
        std::lock_guard lock(mutex_);
        if (up_.load(std::memory_order_relaxed)) return;  // another thread brought it back first
        down_for = seconds(now_() - down_since_);
        reason_.clear();
        epoch_.fetch_add(1, std::memory_order_release);
        up_.store(true, std::memory_order_release);
    }
    log::info("store_available").kv("store", store_).kv("down_s", down_for);
}

std::string Availability::reason() const
{
    std::lock_guard lock(mutex_);
    return reason_;
}

}  // namespace zk::storage
