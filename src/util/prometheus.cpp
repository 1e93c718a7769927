// Exposition-format rendering.

#include "util/prometheus.h"

#include <cmath>
#include <charconv>

namespace zk {

namespace {

std::string number(double v)
{
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that round-trips
    return ec == std::errc{} ? std::string(buf, end) : "NaN";
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help)
{
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PrometheusText::begin(std::string_view name, std::string_view labels)
{
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ");
}

void PrometheusText::sample(std::string_view name, std::string_view labels, double value)
{
    begin(name, labels);
    out_.append(number(value)).append("\n");
}

void PrometheusText::sample(std::string_view name, std::string_view labels, std::uint64_t value)
{
    begin(name, labels);
    out_.append(std::to_string(value)).append("\n");
}

void PrometheusText::histogram(std::string_view name, std::string_view labels, const Histogram::Snapshot& h)
{
    const std::string bucket = std::string(name) + "_bucket";
    const std::string sep = labels.empty() ? "" : ",";
    for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
        const std::string le = i < h.bounds.size() ? number(h.bounds[i]) : "+Inf";
        sample(bucket, std::string(labels) + sep + "le=\"" + le + "\"", h.cumulative[i]);
    }
    sample(std::string(name) + "_sum", labels, h.sum);
    sample(std::string(name) + "_count", labels, h.cumulative.back());
}

}  // namespace zk
