// Wiring and the signal loop. Shutdown order matters: the transport stops
// taking connections and drains what nginx has already sent (an unread request
// would be nginx's 502), so no request reaches a stopped pool; then the pool
// (which persists its last transitions), then the store (which commits them).

#include "app/service.h"

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "api/waiting.h"
#include "dispatch/dispatcher.h"
#include "config/settings.h"
#include "domain/cluster_clock.h"
#include "domain/local_ledger.h"
#include "domain/shared_ledger.h"
#include "storage/store_factory.h"
#include "transport/fcgi_server.h"
#include "transport/signals.h"
#include "util/log.h"

namespace zk::app {

namespace {

constexpr int listen_fd = 0;  // FCGI_LISTENSOCK_FILENO: where spawn-fcgi puts the socket
constexpr int exit_runtime = 1;
constexpr int exit_config = 2;
// After SIGTERM, requests in flight may wait this long on the store before
// their waits are cut short (503): the worker must be gone within 2 s.
constexpr auto shutdown_grace = std::chrono::milliseconds(1000);

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

std::optional<std::string> apply_overrides(Config& c, const Options& o);

// The config file with the command line's overrides, as start-up and every
// reload read it; the one-line reason when either is bad.
std::variant<Config, std::string> read_config(const Options& options)
{
    auto loaded = load_config(options.config_path);
    if (auto* e = std::get_if<ConfigError>(&loaded)) return e->str();
    Config& config = std::get<Config>(loaded);
    if (auto bad = apply_overrides(config, options)) return *bad;
    return std::move(config);
}

// What a reload changes: the pool's rules and limits, the waits' limit, the
// log level. A changed setting that needs a restart is named in the log.
struct Reloadable {
    JobPool& pool;
    api::WaitingPolls& waits;
    Config current;
};

void reload(Reloadable& parts, const Options& options)
{
    auto read = read_config(options);
    if (auto* bad = std::get_if<std::string>(&read)) {
        log::error("reload_refused").kv("error", *bad);
        return;
    }
    Config& config = std::get<Config>(read);
    for (const Setting* s : changed_settings(parts.current, config))
        if (!s->reloads)
            log::warn("reload_needs_restart").kv("setting", std::string(s->section) + "." + std::string(s->key));
    parts.pool.reconfigure(rules_from(config));
    parts.pool.set_max_waiters(shape_from(config).max_waiters);
    parts.waits.set_max_wait_seconds(static_cast<int>(config.service.max_wait_seconds));
    apply_log_level(config, options);
    log::info("reloaded").kv("config", options.config_path).kv("animals", static_cast<std::int64_t>(config.animals.size()));
    parts.current = std::move(config);
}

// The environment variable that overrides [store] url, so a password need
// not sit in the config file.
constexpr const char* store_url_env = "ZOOKEEPER_STORE_URL";

// Where the store's settings came from, for the one line a failed start prints.
std::string store_origin(const Config& config)
{
    if (std::getenv(store_url_env)) return store_url_env;
    for (const char* key : {"store.url", "store.backend"})
        if (auto it = config.lines.find(key); it != config.lines.end())
            return config.path + ":" + std::to_string(it->second);
    return config.path;
}

storage::StoreOptions store_options(const Config& config)
{
    storage::StoreOptions o;
    o.backend = config.store.backend == "postgresql" ? storage::Backend::postgresql : storage::Backend::sqlite;
    o.dir = config.store.dir;
    o.commit_interval = std::chrono::milliseconds(config.store.commit_interval_ms);
    const char* env = std::getenv(store_url_env);
    o.url = env ? env : config.store.url;
    o.read_connections = config.store.read_connections;
    o.statement_timeout = std::chrono::milliseconds(config.store.statement_timeout_ms);
    o.connect_timeout = std::chrono::seconds(config.store.connect_timeout_s);
    o.reconnect_interval = std::chrono::milliseconds(config.store.reconnect_interval_ms);
    return o;
}

// Where the truth lives: the one place that asks which store this is.
std::unique_ptr<Ledger> open_ledger(storage::JobStore& store, ClusterClock& clock, const Config& c)
{
    storage::SharedStore* shared = store.shared();
    if (!shared) return std::make_unique<LocalLedger>(store);
    SharedShape shape;
    shape.sweep.interval_ms = static_cast<Millis>(c.store.sweep_interval_ms);
    shape.sweep.rescue_after_ms = static_cast<Millis>(c.store.rescue_after_ms);
    return std::make_unique<SharedLedger>(*shared, clock, shape);
}

std::string default_worker_name()
{
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::string name;
    for (const char* c = host; *c; ++c)  // what worker_name allows
        if (std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '-' || *c == '_') name.push_back(*c);
    return (name.empty() ? "worker" : name) + ":" + std::to_string(::getpid());
}

// Ends the store's waits once the grace after SIGTERM has passed, unless
// everything stopped sooner: a database that does not answer must not hold
// the worker's exit.
class ShutdownGuard {
public:
    ShutdownGuard(storage::JobStore& store, std::chrono::milliseconds grace)
        : thread_([this, &store, grace] {
              std::unique_lock lock(mutex_);
              if (!cv_.wait_for(lock, grace, [this] { return done_; })) store.interrupt();
          })
    {
    }
    ~ShutdownGuard()
    {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;  // guarded by mutex_
    std::thread thread_;  // last: started once the rest exists
};

int serve(const Config& config, const Options& options)
{
    std::unique_ptr<storage::JobStore> store;
    try {
        store = storage::open_store(store_options(config));
    } catch (const storage::StoreError& e) {
        std::cerr << "zookeeper-fcgi: " << store_origin(config) << ": " << e.what() << "\n";
        return exit_config;
    }
    SystemClock system_clock;
    ClusterClock clock(system_clock);  // offset 0 unless a shared store's sweep sets one
    auto ledger = open_ledger(*store, clock, config);
    JobPool pool(clock, *store, *ledger, shape_from(config), rules_from(config));
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
    log::info("started").kv("config", options.config_path).kv("backend", store->backend())
        .kv("worker", config.service.worker_name).kv("state_dir", config.store.dir)
        .kv("acceptors", static_cast<std::int64_t>(config.service.acceptor_threads))
        .kv("awake", static_cast<std::int64_t>(config.service.awake_acceptors))
        .kv("max_waiters", static_cast<std::int64_t>(shape_from(config).max_waiters))
        .kv("restored", static_cast<std::int64_t>(pool.stats().held));
    Reloadable parts{pool, waits, config};
    while (transport::wait_for_signal() == transport::SignalEvent::reload) reload(parts, options);
    log::info("stopping");
    {
        ShutdownGuard guard(*store, shutdown_grace);
        server.stop();
        server.join();
        pool.stop();
        store->close();
    }
    log::info("stopped");
    return 0;
}

// The config with the command line's overrides applied through the same
// checks as the file's; the reason when one is bad.
std::optional<std::string> apply_overrides(Config& c, const Options& o)
{
    const std::pair<const char*, const std::optional<std::string>*> overrides[] = {
        {"dir", &o.state_dir}, {"backend", &o.backend}};
    for (const auto& [key, value] : overrides)
        if (*value)
            if (auto bad = apply_setting(*find_setting("store", key), **value, c)) return "--" + std::string(key) + ": " + *bad;
    if (o.worker_name)
        if (auto bad = apply_setting(*find_setting("service", "worker_name"), *o.worker_name, c))
            return "--worker-name: " + *bad;
    if (c.service.worker_name.empty()) c.service.worker_name = default_worker_name();
    return std::nullopt;
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
    s.timers.threads = c.service.pool_threads;
    s.timers.queue_capacity = c.service.queue_capacity;
    s.worker = c.service.worker_name;
    s.max_waiters = c.service.max_waiters ? c.service.max_waiters : default_max_waiters();
    s.store_wait_ms = storage::round_trip_timeout(std::chrono::milliseconds(c.store.statement_timeout_ms)).count();
    s.retry_ms = static_cast<Millis>(c.store.reconnect_interval_ms);
    return s;
}

int run_service(const Options& options)
{
    auto read = read_config(options);
    if (auto* bad = std::get_if<std::string>(&read)) {
        std::cerr << "zookeeper-fcgi: " << *bad << "\n";
        return exit_config;
    }
    Config& config = std::get<Config>(read);
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
