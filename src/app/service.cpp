// Wiring and the signal loop. Shutdown order matters: acceptors first (so no
// request can reach a stopped pool), then the pool (which persists its last
// transitions), then the store (which commits them).

#include "app/service.h"

#include <sys/resource.h>

#include <chrono>
#include <iostream>
#include <memory>

#include "api/api.h"
#include "api/waiting.h"
#include "dispatch/dispatcher.h"
#include "storage/store_factory.h"
#include "transport/fcgi_server.h"
#include "transport/signals.h"
#include "util/log.h"

namespace zk::app {

namespace {

constexpr int listen_fd = 0;  // FCGI_LISTENSOCK_FILENO: where spawn-fcgi puts the socket
constexpr int exit_runtime = 1;
constexpr int exit_config = 2;

// Each waiting poll holds one descriptor (nginx's connection); the other half
// is left for idle kept connections, the store and the rest.
constexpr std::size_t waiters_per_descriptor_divisor = 2;

std::size_t default_max_waiters()
{
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return PoolShape{}.max_waiters;
    return static_cast<std::size_t>(lim.rlim_cur) / waiters_per_descriptor_divisor;
}

Millis to_ms(double seconds) { return static_cast<Millis>(seconds * 1000.0 + 0.5); }

void apply_log_level(const Config& config, const Options& options)
{
    log::set_level(*log::parse_level(options.log_level.value_or(config.service.log_level)));
}

void reload(JobPool& pool, const Options& options)
{
    auto loaded = load_config(options.config_path);
    if (auto* e = std::get_if<ConfigError>(&loaded)) {
        log::error("reload_refused").kv("error", e->str());
        return;
    }
    const Config& config = std::get<Config>(loaded);
    pool.reconfigure(rules_from(config));
    apply_log_level(config, options);
    log::info("reloaded").kv("config", options.config_path).kv("animals", static_cast<std::int64_t>(config.animals.size()));
}

int serve(const Config& config, const Options& options)
{
    const std::string dir = options.state_dir.value_or(config.store.dir);
    std::unique_ptr<storage::JobStore> store;
    try {
        store = storage::open_store({storage::Backend::sqlite, dir, std::chrono::milliseconds(config.store.commit_interval_ms)});
    } catch (const storage::StoreError& e) {
        std::cerr << "zookeeper-fcgi: " << e.what() << "\n";
        return exit_config;
    }
    SystemClock clock;
    JobPool pool(clock, store.get(), shape_from(config), rules_from(config));
    pool.start();
    api::Metrics metrics;
    api::Api api(pool, clock, metrics);
    api::WaitingPolls waits(api, pool, static_cast<int>(config.service.max_wait_seconds));
    api.set_waiting(&waits);
    dispatch::Dispatcher dispatcher(api, metrics);
    transport::FcgiServer server(listen_fd, config.service.acceptor_threads, config.service.awake_acceptors,
                                 [&](const http::Request& r) { return dispatcher.dispatch(r); });
    server.on_fatal(transport::request_terminate);
    server.start();
    log::info("started").kv("config", options.config_path).kv("state_dir", dir)
        .kv("acceptors", static_cast<std::int64_t>(config.service.acceptor_threads))
        .kv("awake", static_cast<std::int64_t>(config.service.awake_acceptors))
        .kv("max_waiters", static_cast<std::int64_t>(shape_from(config).max_waiters))
        .kv("restored", static_cast<std::int64_t>(pool.stats().held));
    while (transport::wait_for_signal() == transport::SignalEvent::reload) reload(pool, options);
    log::info("stopping");
    server.stop();
    server.join();
    pool.stop();
    store->close();
    log::info("stopped");
    return store->healthy() ? 0 : exit_runtime;
}

}  // namespace

Rules rules_from(const Config& c)
{
    Rules r;
    r.vocabulary = std::make_shared<const Vocabulary>(c.animals, c.adjectives, c.verbs, c.adverbs);
    r.workload = {to_ms(c.workload.min_seconds), to_ms(c.workload.max_seconds)};
    r.max_jobs = c.service.max_jobs;
    r.result_ttl_ms = to_ms(c.service.result_ttl);
    return r;
}

PoolShape shape_from(const Config& c)
{
    PoolShape s;
    s.threads = c.service.pool_threads;
    s.queue_capacity = c.service.queue_capacity;
    s.max_waiters = c.service.max_waiters ? c.service.max_waiters : default_max_waiters();
    return s;
}

int run_service(const Options& options)
{
    auto loaded = load_config(options.config_path);
    if (auto* e = std::get_if<ConfigError>(&loaded)) {
        std::cerr << "zookeeper-fcgi: " << e->str() << "\n";
        return exit_config;
    }
    const Config& config = std::get<Config>(loaded);
    apply_log_level(config, options);
    if (!transport::is_listening_socket(listen_fd)) {
        std::cerr << "zookeeper-fcgi: file descriptor 0 is not a listening socket; start me with spawn-fcgi\n";
        return exit_config;
    }
    // Before any thread exists, so every thread inherits the mask.
    transport::block_signals();
    try {
        return serve(config, options);
    } catch (const storage::StoreError& e) {  // e.g. a damaged row found while restoring
        std::cerr << "zookeeper-fcgi: " << e.what() << "\n";
        return exit_config;
    } catch (const std::exception& e) {
        log::error("fatal").kv("what", e.what());
        return exit_runtime;
    }
}

}  // namespace zk::app
