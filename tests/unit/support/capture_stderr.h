// Captures what the code under test writes to file descriptor 2 (the logger
// writes there with write(2), bypassing std::cerr), by pointing fd 2 at an
// unlinked temporary file for the life of the object.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace zk::test {

class CaptureStderr {
public:
    CaptureStderr() : file_(std::tmpfile()), saved_(::dup(STDERR_FILENO))
    {
        if (!file_ || saved_ < 0) throw std::runtime_error("cannot capture stderr");
        std::fflush(stderr);
        ::dup2(::fileno(file_), STDERR_FILENO);
    }
    ~CaptureStderr()
    {
        restore();
        std::fclose(file_);
    }
    CaptureStderr(const CaptureStderr&) = delete;
    CaptureStderr& operator=(const CaptureStderr&) = delete;

    // Everything written so far (fd 2 stays captured).
    std::string text() const
    {
        std::string out;
        char buf[4096];
        ssize_t n;
        for (off_t at = 0; (n = ::pread(::fileno(file_), buf, sizeof buf, at)) > 0; at += n)
            out.append(buf, static_cast<std::size_t>(n));
        return out;
    }

    void restore()
    {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }

private:
    std::FILE* file_;
    int saved_;
};

}  // namespace zk::test
