// One worker whose memory is the truth (SQLite, or a test's memory store):
// every job is restored into memory at start and answered from there; the
// store is memory's durable log, written through and never read again.
#pragma once

#include "domain/ledger.h"
#include "storage/job_store.h"

namespace zk {

class LocalLedger final : public Ledger {
public:
    explicit LocalLedger(storage::JobStore& store) : store_(store) {}

    void restore(const std::function<void(Job&&)>& hold) override;
    void start(LedgerEvents&) override {}
    void stop() override {}
    bool vouches(const Job&, Millis) const override { return true; }
    std::uint64_t epoch() const override { return 0; }
    std::uint64_t stamp(const Fetched&) const override { return 0; }
    Fetched fetch(const JobId&) override { return {}; }
    Fetched fetch_key(const IdempotencyKey&) override { return {}; }
    std::optional<std::vector<Job>> list(const JobFilter& filter, const JobTable& held) const override;
    bool expired(const Job& job) override;
    // Every finish happens here, so a held job's waiters are always woken by the pool.
    void watched(const JobId&, Millis) override {}
    void unwatched(const JobId&, std::size_t) override {}
    void recheck() override {}

private:
    storage::JobStore& store_;
};

}  // namespace zk
