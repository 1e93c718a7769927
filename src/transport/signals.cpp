// sigwait-based signal handling.

#include "transport/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace zk::transport {

namespace {

sigset_t handled_set()
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    return set;
}

}  // namespace

void block_signals()
{
    const sigset_t set = handled_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

SignalEvent wait_for_signal()
{
    const sigset_t set = handled_set();
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) return SignalEvent::reload;
        return SignalEvent::terminate;
    }
}

void request_terminate()
{
    kill(getpid(), SIGTERM);
}

}  // namespace zk::transport
