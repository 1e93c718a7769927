// Signals as events, not handlers: the signals we act on are blocked in every
// thread and the main thread collects them with sigwait(), so no code runs in
// signal context at all. Call block_signals() before starting any thread.
#pragma once

namespace zk::transport {

enum class SignalEvent { terminate, reload };

// Blocks SIGTERM, SIGINT and SIGHUP for this thread and those it starts;
// ignores SIGPIPE (a client that hangs up must not kill the worker).
void block_signals();

// Waits for the next blocked signal we act on.
SignalEvent wait_for_signal();

// Asks the main thread to terminate, from any thread.
void request_terminate();

}  // namespace zk::transport
