// Unguessable bytes from the kernel's CSPRNG (getrandom), served from a
// per-thread buffer so that one system call pays for hundreds of job ids.
// Job ids are capabilities (whoever holds one may cancel the survey), so
// their random part must not come from a predictable generator.
#pragma once

#include <cstddef>

namespace zk {

// Fills out[0, n); n at most random_refill_bytes. Throws std::system_error
// only if the kernel refuses (getrandom never blocks once the pool is seeded).
void random_bytes(unsigned char* out, std::size_t n);

inline constexpr std::size_t random_refill_bytes = 4096;

}  // namespace zk
