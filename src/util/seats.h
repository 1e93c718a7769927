// A fixed number of seats shared by a larger group of threads. Only a thread
// with a seat may sleep waiting for work; one without a seat may take work
// that is ready, and otherwise stands by until a seat is free. A thread that
// is about to block gives its seat up, and if no thread of the group is left
// running, a standby thread is woken to take over. So at most `seats` threads
// sleep waiting for work (each would cost the producer a wake-up per item),
// while threads blocked in a commit or on a slow peer never leave the work
// without a taker.
// Lock order: the mutex here is a leaf. Callers of util::will_block() (which
// ends in Seat::block) hold no lock of their own: the store lets go of its
// mutex first.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace zk::util {

class Seats {
public:
    explicit Seats(std::size_t seats) : free_(seats) {}

    // From now on no thread stands by: the group is told to stop.
    void open();

private:
    friend class Seat;
    std::mutex mutex_;
    std::condition_variable freed_;
    std::size_t free_;
    std::size_t running_ = 0;  // threads neither blocked nor standing by
    std::size_t standing_by_ = 0;
    bool open_ = false;
};

// One thread's place in the group, for the thread's life; used by it alone.
class Seat {
public:
    explicit Seat(Seats& seats);
    ~Seat();
    Seat(const Seat&) = delete;
    Seat& operator=(const Seat&) = delete;

    // Takes a free seat if there is none held; true if one is held (or the
    // group is open).
    bool try_take();
    // Stands by until a seat is free (or the group is open), then takes it.
    void take();
    // Before blocking: gives the seat up; wakes a standby thread if no
    // thread of the group is left running.
    void block();
    // After blocking: counts as running again. Cheap when not blocked.
    void resume();
    bool held() const { return held_; }

private:
    Seats& seats_;
    bool held_ = false;
    bool blocked_ = false;
};

}  // namespace zk::util
