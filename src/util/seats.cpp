// Seats: one mutex; taken only when a thread blocks, resumes or stands by,
// never on the path of a request that does not block.

#include "util/seats.h"

namespace zk::util {

void Seats::open()
{
    {
        std::lock_guard lock(mutex_);
        open_ = true;
    }
    freed_.notify_all();
}

Seat::Seat(Seats& seats) : seats_(seats)
{
    std::lock_guard lock(seats_.mutex_);
    ++seats_.running_;
}

Seat::~Seat()
{
    bool wake = false;
    {
        std::lock_guard lock(seats_.mutex_);
        if (held_) ++seats_.free_;
        if (!blocked_) --seats_.running_;
        wake = seats_.running_ == 0 && seats_.standing_by_ > 0;
    }
    if (wake) seats_.freed_.notify_one();
}

bool Seat::try_take()
{
    if (held_) return true;
    std::lock_guard lock(seats_.mutex_);
    if (seats_.open_) return true;
    if (seats_.free_ == 0) return false;
    --seats_.free_;
    held_ = true;
    return true;
}

void Seat::take()
{
    if (held_) return;
    std::unique_lock lock(seats_.mutex_);
    --seats_.running_;
    ++seats_.standing_by_;
    seats_.freed_.wait(lock, [this] { return seats_.open_ || seats_.free_ > 0; });
    --seats_.standing_by_;
    ++seats_.running_;
    if (seats_.open_) return;
    --seats_.free_;
    held_ = true;
}

void Seat::block()
{
    if (blocked_) return;
    bool wake = false;
    {
        std::lock_guard lock(seats_.mutex_);
        blocked_ = true;
        --seats_.running_;
        if (held_) {
            held_ = false;
            ++seats_.free_;
        }
        wake = seats_.running_ == 0 && seats_.standing_by_ > 0;
    }
    if (wake) seats_.freed_.notify_one();
}

void Seat::resume()
{
    if (!blocked_) return;
    std::lock_guard lock(seats_.mutex_);
    blocked_ = false;
    ++seats_.running_;
}

}  // namespace zk::util
