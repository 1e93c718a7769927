// The parked set's state machine: arming → parked → taken (exactly once).

#include "transport/parking.h"

namespace zk::transport {

std::optional<std::uint64_t> Parking::add(Parked parked)
{
    std::lock_guard lock(mutex_);
    if (closed_) return std::nullopt;
    const std::uint64_t id = next_id_++;
    timers_.emplace(parked.deadline, id);
    slots_.emplace(id, Slot{std::move(parked), State::arming, std::nullopt});
    return id;
}

// Must be called with mutex_ held.
Taken Parking::remove_locked(std::unordered_map<std::uint64_t, Slot>::iterator it, Wake why)
{
    Taken t{it->first, std::move(it->second.parked), why};
    timers_.erase({t.parked.deadline, t.id});
    slots_.erase(it);
    return t;
}

// Must be called with mutex_ held. The first claim wins.
std::optional<Taken> Parking::claim_locked(std::uint64_t id, Wake why)
{
    const auto it = slots_.find(id);
    if (it == slots_.end()) return std::nullopt;
    if (it->second.state == State::arming) {
        if (!it->second.claim) it->second.claim = why;
        return std::nullopt;
    }
    return remove_locked(it, why);
}

std::optional<Taken> Parking::activate(std::uint64_t id, std::optional<std::uint64_t> subscription)
{
    std::lock_guard lock(mutex_);
    const auto it = slots_.find(id);
    if (it == slots_.end()) return std::nullopt;  // not ours to finish (never happens: only we remove arming slots)
    it->second.parked.subscription = subscription;
    if (it->second.claim) return remove_locked(it, *it->second.claim);
    if (closed_) return remove_locked(it, Wake::shutdown);
    it->second.state = State::parked;
    return std::nullopt;
}

std::optional<Taken> Parking::take(std::uint64_t id, Wake why)
{
    std::lock_guard lock(mutex_);
    return claim_locked(id, why);
}

void Parking::wake(std::uint64_t id)
{
    std::lock_guard lock(mutex_);
    auto t = claim_locked(id, Wake::event);
    if (!t) return;
    ready_.push_back(std::move(*t));
    if (ring_) ring_();
}

std::vector<Taken> Parking::ready()
{
    std::lock_guard lock(mutex_);
    return std::exchange(ready_, {});
}

std::vector<Taken> Parking::due(SteadyTime now)
{
    std::vector<Taken> out;
    std::lock_guard lock(mutex_);
    for (auto t = timers_.begin(); t != timers_.end() && t->first <= now;) {
        const auto it = slots_.find(t->second);
        ++t;  // remove_locked erases the entry t pointed to
        // An arming request is left for its arming thread, which re-arms the timer.
        if (it != slots_.end() && it->second.state == State::parked) out.push_back(remove_locked(it, Wake::timeout));
    }
    return out;
}

std::optional<SteadyTime> Parking::next_deadline() const
{
    std::lock_guard lock(mutex_);
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->first;
}

std::vector<Taken> Parking::close()
{
    std::lock_guard lock(mutex_);
    closed_ = true;
    std::vector<Taken> out = std::exchange(ready_, {});
    for (auto it = slots_.begin(); it != slots_.end();) {
        auto here = it++;
        if (here->second.state == State::parked) out.push_back(remove_locked(here, Wake::shutdown));
        else if (!here->second.claim) here->second.claim = Wake::shutdown;
    }
    return out;
}

std::size_t Parking::size() const
{
    std::lock_guard lock(mutex_);
    return slots_.size();
}

}  // namespace zk::transport
