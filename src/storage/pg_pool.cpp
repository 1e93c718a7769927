// Lending connections, bounded waits, and failing fast while the database is down.

#include "storage/pg_pool.h"

#include "util/blocking.h"

namespace zk::storage::pg {

Pool::Pool(std::string conninfo, std::size_t size, std::chrono::milliseconds wait,
           std::chrono::milliseconds retry_after, Prepare prepare)
    : conninfo_(std::move(conninfo)), wait_(wait), retry_after_(retry_after), prepare_(std::move(prepare))
{
    slots_.resize(size < 1 ? 1 : size);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        slots_[i].conn = std::make_unique<Connection>(conninfo_);
        free_.push_back(i);
    }
}

bool Pool::reachable() const
{
    std::lock_guard lock(mutex_);
    return Clock::now() >= down_until_ || down_reason_.empty();
}

std::optional<std::size_t> Pool::borrow(std::string& error)
{
    std::unique_lock lock(mutex_);
    const auto until = Clock::now() + wait_;
    if (free_.empty()) {
        lock.unlock();
        util::will_block();  // the hook takes its owner's lock, never under ours
        lock.lock();
    }
    while (free_.empty()) {
        if (returned_.wait_until(lock, until) == std::cv_status::timeout && free_.empty()) {
            error = "no database connection free within " + std::to_string(wait_.count()) + " ms";
            return std::nullopt;
        }
    }
    const std::size_t slot = free_.back();
    free_.pop_back();
    return slot;
}

void Pool::give_back(std::size_t slot)
{
    {
        std::lock_guard lock(mutex_);
        free_.push_back(slot);
    }
    returned_.notify_one();
}

// Connects a slot that is not connected, unless the database failed a
// connect recently: then fails at once with that reason.
bool Pool::ensure_connected(Connection& c, std::string& error)
{
    if (c.connected()) return true;
    {
        std::lock_guard lock(mutex_);
        if (!down_reason_.empty() && Clock::now() < down_until_) {
            error = down_reason_;
            return false;
        }
    }
    util::will_block();
    std::string why;
    const bool connected = c.connect(why);
    const bool ok = connected && prepare_(c, why);
    std::lock_guard lock(mutex_);
    if (ok) {
        down_reason_.clear();
        return true;
    }
    c.drop();
    // Only a failed connect means the database is down; a statement that
    // failed (a timeout behind a lock) fails this request alone.
    if (!connected) {
        down_reason_ = why;
        down_until_ = Clock::now() + retry_after_;
    }
    error = why;
    return false;
}

bool Pool::with(const std::function<bool(Connection&)>& use, std::string& error)
{
    const auto slot = borrow(error);
    if (!slot) return false;
    Connection& c = *slots_[*slot].conn;  // ours until given back
    bool ok = ensure_connected(c, error);
    if (ok) {
        util::will_block();
        ok = use(c);
        if (!c.connected()) {  // lost mid-statement: the next borrower reconnects
            if (error.empty()) error = c.last_error();
            c.drop();
        }
    }
    give_back(*slot);
    return ok;
}

}  // namespace zk::storage::pg
