// The worker's life: load the config, open the store, start the job pool and
// the FastCGI acceptors, serve until SIGTERM (reloading on SIGHUP), then
// drain in order: acceptors, job pool, store.
#pragma once

#include "app/options.h"
#include "config/config.h"
#include "domain/job_pool.h"

namespace zk::app {

// Exit status of run_service(): 0 clean stop, 1 runtime failure, 2 bad config or store.
int run_service(const Options& options);

// The parts of a config the job pool takes (exposed for tests).
Rules rules_from(const Config& config);
PoolShape shape_from(const Config& config);

}  // namespace zk::app
