// A job's identity: a UUIDv7 (RFC 9562), so ids sort by creation time and the
// creation time can be read back from an id the service no longer holds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/clock.h"

namespace zk {

class JobId {
public:
    using Bytes = std::array<unsigned char, 16>;

    JobId() = default;
    explicit JobId(const Bytes& bytes) : bytes_(bytes) {}

    // A fresh v7 id: 48-bit ms timestamp, then 74 random bits (util/random).
    static JobId generate(Millis now_ms);
    // Accepts only the canonical 8-4-4-4-12 hex form (either case).
    static std::optional<JobId> parse(std::string_view text);

    std::string str() const;  // lowercase canonical form
    const Bytes& bytes() const { return bytes_; }
    // The timestamp of a v7 id; nullopt for other versions.
    std::optional<Millis> created_ms() const;
    // A well-mixed 64-bit digest: the seed of everything derived from the id.
    std::uint64_t digest() const;

    friend bool operator==(const JobId&, const JobId&) = default;
    friend auto operator<=>(const JobId&, const JobId&) = default;

private:
    Bytes bytes_{};
};

struct JobIdHash {
    std::size_t operator()(const JobId& id) const { return static_cast<std::size_t>(id.digest()); }
};

}  // namespace zk
