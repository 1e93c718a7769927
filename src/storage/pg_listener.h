// The cancel feed's listening end: one connection of its own that LISTENs on
// the channel every cancel notifies (postgres_schema.h), on a thread of its
// own, delivering each notification as its transaction commits. A heartbeat
// round trip every `heartbeat` proves the connection while nothing arrives
// (a frozen or partitioned server sends nothing, not even an error). While it
// cannot connect it tries again every reconnect_interval; each new session is
// announced (resumed) before its first notification, because what was
// notified meanwhile was missed. Behind a transaction-pooling pgbouncer LISTEN
// does not work: the store's url must reach PostgreSQL or a session pool.
// Threads: its own, started by start(), joined by stop(); mutex_ is a leaf.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "storage/pg_connection.h"

namespace zk::storage::pg {

struct ListenerTiming {
    std::chrono::milliseconds connect;             // deadline of a new connection
    std::chrono::milliseconds statement;           // of LISTEN and of a heartbeat
    std::chrono::milliseconds heartbeat;           // silence after which a heartbeat proves the connection
    std::chrono::milliseconds reconnect_interval;  // between attempts while it cannot connect
};

class Listener {
public:
    using Notified = std::function<void(std::string_view payload)>;
    using Resumed = std::function<void()>;

    Listener(std::string conninfo, std::string channel, ListenerTiming timing);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Starts the thread (once); the callbacks run on it and must not block.
    void start(Notified notified, Resumed resumed);
    // Ends the thread's wait at once (its own Interrupt) and joins it. Idempotent.
    void stop();
    // True while a session is listening.
    bool listening() const { return listening_.load(std::memory_order_acquire); }

private:
    void run();
    bool open_session();
    void pause(std::chrono::milliseconds how_long);

    const std::string channel_;
    const ListenerTiming timing_;
    Interrupt stop_;   // fired by stop(): ends a wait on the socket at once
    Connection conn_;  // the listener thread's alone
    Notified notified_;
    Resumed resumed_;
    std::atomic<bool> listening_{false};

    std::mutex mutex_;  // a leaf: guards stopping_ for the pauses
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace zk::storage::pg
