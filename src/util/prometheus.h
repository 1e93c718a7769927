// Writes the Prometheus text exposition format (version 0.0.4): a family
// header (# HELP, # TYPE), then its samples. Labels are passed preformatted
// (`route="animals",status="200"`) because every label value here comes from
// a fixed set, never from a client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/histogram.h"

namespace zk {

class PrometheusText {
public:
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::string_view labels, double value);
    void sample(std::string_view name, std::string_view labels, std::uint64_t value);
    void histogram(std::string_view name, std::string_view labels, const Histogram::Snapshot& h);
    const std::string& text() const { return out_; }

private:
    void begin(std::string_view name, std::string_view labels);
    std::string out_;
};

}  // namespace zk
