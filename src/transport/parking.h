// The parked set: FastCGI requests that wait for an event (a waiting poll)
// while holding no thread and no libfcgi request, only what answering needs
// (fd, FastCGI request id, keep-connection flag, X-Request-Id, deadline).
// Bookkeeping only, no sockets, so it is unit-tested; the transport does the
// I/O. Every parked request is finished exactly once: the first claim (an
// event, its timer, a hang-up, shutdown) removes it, later ones find nothing.
// A request is "arming" while the transport subscribes it: a claim then is
// recorded and handed back by activate(), so no wake-up is lost.
//
// Threads: any. One mutex, a leaf; `ring` runs under it (an eventfd write).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/park.h"

namespace zk::transport {

using SteadyTime = std::chrono::steady_clock::time_point;

// Why a parked request is finished.
enum class Wake { event, timeout, hangup, shutdown };

struct Parked {
    int fd = -1;
    std::uint16_t fcgi_id = 0;  // the FastCGI requestId to answer on
    bool keep = false;          // nginx keeps the connection after the answer
    std::string request_id;     // echoed as X-Request-Id
    SteadyTime deadline{};
    std::shared_ptr<http::Park> park;
    // The answer as it was when the request parked, sent at shutdown:
    // answer() may read a database, and shutdown must not wait for one.
    std::string answer_at_park;
    std::optional<std::uint64_t> subscription;  // set by activate()
};

struct Taken {
    std::uint64_t id = 0;
    Parked parked;
    Wake why = Wake::event;
};

class Parking {
public:
    // `ring` is called when ready() has gained an entry.
    explicit Parking(std::function<void()> ring) : ring_(std::move(ring)) {}

    // A new arming request; nullopt once closed.
    std::optional<std::uint64_t> add(Parked parked);
    // Ends arming. nullopt: parked until claimed. Otherwise a claim came
    // while arming (or close() ran) and the caller finishes the request.
    std::optional<Taken> activate(std::uint64_t id, std::optional<std::uint64_t> subscription);
    // A claim by the caller's own thread (hang-up): the request, if it won.
    std::optional<Taken> take(std::uint64_t id, Wake why);
    // A claim from any thread (the job finished): queued for ready().
    void wake(std::uint64_t id);
    std::vector<Taken> ready();
    // Parked requests whose deadline is at or before `now`.
    std::vector<Taken> due(SteadyTime now);
    std::optional<SteadyTime> next_deadline() const;
    // Refuses new requests and hands back every parked and ready one.
    std::vector<Taken> close();
    std::size_t size() const;

private:
    enum class State { arming, parked };
    struct Slot {
        Parked parked;
        State state = State::arming;
        std::optional<Wake> claim;  // a claim that came while arming
    };
    std::optional<Taken> claim_locked(std::uint64_t id, Wake why);
    Taken remove_locked(std::unordered_map<std::uint64_t, Slot>::iterator it, Wake why);

    const std::function<void()> ring_;
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, Slot> slots_;         // guarded by mutex_
    // By deadline *and* id: equal deadlines must not collide.
    std::set<std::pair<SteadyTime, std::uint64_t>> timers_;  // guarded by mutex_
    std::vector<Taken> ready_;                                // guarded by mutex_
    std::uint64_t next_id_ = 1;                               // guarded by mutex_
    bool closed_ = false;                                     // guarded by mutex_
};

}  // namespace zk::transport
