// Popping due timers from the deadline heap.

#include "domain/deadline_queue.h"

namespace zk {

void DeadlineQueue::pop_due(Millis now, std::vector<Timer>& out)
{
    while (!heap_.empty() && heap_.top().at <= now) {
        out.push_back(heap_.top());
        heap_.pop();
    }
}

}  // namespace zk
