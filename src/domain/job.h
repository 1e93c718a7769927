// One survey job as the domain sees it: a value, copied out to readers so no
// reference into the job table ever escapes its lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "domain/clock.h"
#include "domain/job_id.h"

namespace zk {

// Numeric values are persisted (storage::RecordState); do not reorder.
enum class JobState : std::uint8_t { queued = 0, running = 1, done = 2, cancelled = 3 };

const char* to_string(JobState state);

struct Job {
    JobId id;
    std::string animal;
    JobState state = JobState::queued;
    std::int32_t duration_ms = 0;  // planned; fixed at creation
    Millis created_ms = 0;
    // Fixed at creation (created + duration) and stored with the job, so a
    // restart finishes the survey when it always would have.
    Millis deadline_ms = 0;
    Millis started_ms = 0;   // when it began: its creation was stored; 0 while queued
    Millis finished_ms = 0;  // 0 until done or cancelled
    std::string result;      // the sentence, once done
    // The Idempotency-Key it was created with, and its client scope; both
    // empty without one (domain/idempotency_index.h).
    std::string idem_scope;
    std::string idem_key;

    // This worker's hold on the job, never stored (domain/job_pool.h):
    bool owned = false;  // its completion is this worker's (created or restored here)
    // A write in flight will bring this state (running: the creation; done or
    // cancelled: a finish), and its sequence number in the store. One at a
    // time: another change of the job waits for it to settle.
    std::optional<JobState> writing;
    std::uint64_t writing_seq = 0;
    // Shared store: the ledger epoch this copy was read or written in. A copy
    // of an older epoch may have missed a cancel (domain/shared_ledger.h).
    std::uint64_t seen_in = 0;

    bool finished() const { return state == JobState::done || state == JobState::cancelled; }
    // Fraction of the time from creation to deadline passed at `now`, 0..1.
    double progress(Millis now) const;
    // Milliseconds until the deadline; 0 once finished.
    Millis remaining_ms(Millis now) const;
};

}  // namespace zk
