// The listener's loop: connect and LISTEN, then wait for notifications, with
// a heartbeat through silence; on any failure drop, pause, and start over.

#include "storage/pg_listener.h"

#include <vector>

#include "util/log.h"

namespace zk::storage::pg {

Listener::Listener(std::string conninfo, std::string channel, ListenerTiming timing)
    : channel_(std::move(channel)), timing_(timing), conn_(std::move(conninfo), &stop_)
{
}

Listener::~Listener() { stop(); }

void Listener::start(Notified notified, Resumed resumed)
{
    if (thread_.joinable()) return;
    notified_ = std::move(notified);
    resumed_ = std::move(resumed);
    thread_ = std::thread([this] { run(); });
}

void Listener::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_.fire();
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    conn_.drop();
}

void Listener::run()
{
    std::vector<std::string> payloads;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) break;
        }
        if (!conn_.connected()) {
            listening_ = false;
            if (!open_session()) {
                pause(timing_.reconnect_interval);
                continue;
            }
            listening_ = true;
            if (resumed_) resumed_();
        }
        payloads.clear();
        const bool alive = conn_.notifications(Clock::now() + timing_.heartbeat, payloads);
        if (notified_)
            for (const std::string& p : payloads) notified_(p);
        // Silence: a heartbeat tells a quiet server from one that is gone.
        if (alive && payloads.empty() && !conn_.exec("SELECT 1", Clock::now() + timing_.statement).ok()) conn_.drop();
        if (!conn_.connected()) {
            listening_ = false;
            if (log::enabled(log::Level::debug)) log::debug("cancel_feed_lost").kv("error", conn_.last_error());
        }
    }
    listening_ = false;
}

// A connection that LISTENs (a standby refuses LISTEN: the read-write
// primary is what the connection string must find).
bool Listener::open_session()
{
    std::string error;
    if (!conn_.connect(Clock::now() + timing_.connect, error)) return false;
    const std::string sql = "LISTEN " + channel_;
    if (!conn_.exec(sql.c_str(), Clock::now() + timing_.statement).ok()) {
        conn_.drop();
        return false;
    }
    return true;
}

void Listener::pause(std::chrono::milliseconds how_long)
{
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, how_long, [this] { return stopping_; });
}

}  // namespace zk::storage::pg
