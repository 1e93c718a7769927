// Per-thread buffer of getrandom() output; each byte is handed out once.

#include "util/random.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace zk {

namespace {

struct Pool {
    std::array<unsigned char, random_refill_bytes> bytes{};
    std::size_t used = random_refill_bytes;  // empty until the first call

    void refill()
    {
        std::size_t got = 0;
        while (got < bytes.size()) {
            const ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw std::system_error(errno, std::generic_category(), "getrandom");
            got += static_cast<std::size_t>(n);
        }
        used = 0;
    }
};

}  // namespace

void random_bytes(unsigned char* out, std::size_t n)
{
    if (n > random_refill_bytes) throw std::invalid_argument("random_bytes: request too large");
    thread_local Pool pool;
    if (pool.bytes.size() - pool.used < n) pool.refill();
    std::memcpy(out, pool.bytes.data() + pool.used, n);
    // Wiped as handed out: a later memory dump cannot reveal ids already issued.
    std::memset(pool.bytes.data() + pool.used, 0, n);
    pool.used += n;
}

}  // namespace zk
