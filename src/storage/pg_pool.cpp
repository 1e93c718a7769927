// Lending connections under deadlines, one retry when an idle connection had
// died, and what each connect and use tells Availability.

#include "storage/pg_pool.h"

#include <exception>

#include "util/blocking.h"

namespace zk::storage::pg {

namespace {

// Failures after which the connection is not worth keeping (Connection has
// dropped it already; the pool makes sure).
bool breaks(Failure f)
{
    return f == Failure::lost || f == Failure::timeout || f == Failure::interrupted || f == Failure::read_only;
}

// A failure that says the database does not answer (an interrupt is our own
// shutdown; a refused statement was an answer).
bool unanswered(Failure f) { return f == Failure::lost || f == Failure::timeout || f == Failure::read_only; }

}  // namespace

// Gives the slot back however `with` ends, an exception included. A
// connection caught half way through a use by an exception is dropped: what
// it was doing is unknown.
class Pool::Lease {
public:
    Lease(Pool& pool, std::size_t slot) : pool_(pool), slot_(slot), exceptions_(std::uncaught_exceptions()) {}
    ~Lease()
    {
        if (std::uncaught_exceptions() > exceptions_) pool_.slots_[slot_].conn->drop();
        pool_.give_back(slot_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Slot& slot() { return pool_.slots_[slot_]; }

private:
    Pool& pool_;
    const std::size_t slot_;
    const int exceptions_;
};

Pool::Pool(std::string conninfo, std::size_t size, PoolTimeouts timeouts, Prepare prepare, const Interrupt* interrupt,
           Availability& availability)
    : conninfo_(std::move(conninfo)), timeouts_(timeouts), prepare_(std::move(prepare)), availability_(availability)
{
    slots_.resize(size < 1 ? 1 : size);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        slots_[i].conn = std::make_unique<Connection>(conninfo_, interrupt);
        free_.push_back(i);
    }
}

bool Pool::with(const std::function<bool(Connection&, Deadline)>& use, std::string& error)
{
    if (down(error)) return false;
    const auto slot = borrow(error);
    if (!slot) return false;
    Lease lease(*this, *slot);
    Slot& s = lease.slot();
    if (down(error)) return false;  // it went down while we waited for the slot
    if (s.conn->connected() && s.epoch != availability_.epoch()) s.conn->drop();  // made before the last outage
    const bool reused = s.conn->connected();
    if (!reused && !connect(s, error)) return false;
    const bool ok = run(s, use, !reused, error);
    if (ok || !reused || s.conn->last_failure() != Failure::lost) return ok;
    // The server had ended this idle session (pg_terminate_backend, a
    // restart): once more on a new connection, whose outcome then counts.
    error.clear();
    return connect(s, error) && run(s, use, true, error);
}

// Nothing is tried while the database is known to be down.
bool Pool::down(std::string& error) const
{
    if (availability_.up()) return false;
    const std::string why = availability_.reason();
    error = "database unavailable: " + (why.empty() ? std::string("no round trip succeeded yet") : why);
    return true;
}

std::optional<std::size_t> Pool::borrow(std::string& error)
{
    std::unique_lock lock(mutex_);
    const auto until = Clock::now() + timeouts_.borrow;
    if (free_.empty()) {
        lock.unlock();
        util::will_block();  // the hook takes its owner's lock, never under ours
        lock.lock();
    }
    while (free_.empty()) {
        if (returned_.wait_until(lock, until) == std::cv_status::timeout && free_.empty()) {
            error = "no database connection free within " + std::to_string(timeouts_.borrow.count()) + " ms";
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

// A new connection on the slot, prepared, within the connect deadline. A
// connect that fails for want of the database marks it down.
bool Pool::connect(Slot& s, std::string& error)
{
    util::will_block();
    const Deadline deadline = Clock::now() + timeouts_.connect;
    s.epoch = availability_.epoch();
    Connection& c = *s.conn;
    if (c.connect(deadline, error) && prepare_(c, deadline, error)) return true;
    const Failure f = c.last_failure();
    c.drop();  // a connection without its prepared statements is of no use
    if (unanswered(f)) availability_.failed(error);
    return false;
}

// One use, and what it found: an answer means the database is up; a lost
// connection on a fresh one, or any timeout (the server's own statement
// timeout would have answered first), means it is not.
bool Pool::run(Slot& s, const std::function<bool(Connection&, Deadline)>& use, bool fresh, std::string& error)
{
    util::will_block();
    Connection& c = *s.conn;
    const bool ok = use(c, Clock::now() + timeouts_.statement);
    const Failure f = c.last_failure();
    if (f == Failure::none || f == Failure::statement) availability_.succeeded();
    else if (f == Failure::timeout || (f == Failure::lost && fresh)) availability_.failed(c.last_error());
    if (breaks(f)) c.drop();
    if (!ok && error.empty()) error = c.last_error();
    return ok;
}

}  // namespace zk::storage::pg
