// The persisted form of one job: plain fields only, so storage knows nothing
// of the domain's types. The domain converts to and from its Job value.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace zk::storage {

// Matches zk::JobState's numeric values; stored as an integer column.
enum class RecordState : std::uint8_t { queued = 0, running = 1, done = 2, cancelled = 3 };

struct JobRecord {
    std::array<unsigned char, 16> id{};  // raw UUID bytes (UUIDv7, time-ordered)
    std::string animal;
    RecordState state = RecordState::queued;
    std::int64_t created_ms = 0;   // wall clock, ms since the Unix epoch
    std::int64_t started_ms = 0;   // 0 while queued
    std::int64_t deadline_ms = 0;  // 0 while queued
    std::int64_t finished_ms = 0;  // 0 until done or cancelled
    std::int32_t duration_ms = 0;  // planned survey length
    std::string result;            // the sentence, once done
    // The creation's Idempotency-Key and the client scope it belongs to
    // (api/idempotency_key.h); both empty when the creation sent none. A
    // store keeps (scope, key) unique among the jobs it holds.
    std::string idem_scope;
    std::string idem_key;
};

}  // namespace zk::storage
