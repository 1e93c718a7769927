// Rendering with rapidjson::Writer straight into a buffer: no DOM is built.

#include "api/json.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "util/rfc3339.h"

namespace zk::api {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void put_time(Writer& w, const char* key, Millis ms)
{
    w.Key(key);
    if (ms == 0) w.Null();
    else put(w, rfc3339(ms));
}

void put_link(Writer& w, const char* rel, const std::string& href, const char* method)
{
    w.Key(rel);
    w.StartObject();
    w.Key("href");
    put(w, href);
    w.Key("method");
    w.String(method);
    w.EndObject();
}

void put_links(Writer& w, const Job& job, const std::string& id)
{
    w.Key("links");
    w.StartObject();
    put_link(w, "self", "/jobs/" + id, "GET");
    put_link(w, "query", "/query/" + id, "GET");
    if (!job.finished()) put_link(w, "cancel", "/query/" + id, "DELETE");
    w.EndObject();
}

}  // namespace

std::string json_string(std::string_view s)
{
    rapidjson::StringBuffer buf;
    Writer w(buf);
    put(w, s);
    return {buf.GetString(), buf.GetSize()};
}

std::string json_array(const std::vector<std::string>& items)
{
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartArray();
    for (const auto& item : items) put(w, item);
    w.EndArray();
    return {buf.GetString(), buf.GetSize()};
}

std::string job_json(const Job& job, Millis now)
{
    const std::string id = job.id.str();
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("id");
    put(w, id);
    w.Key("animal");
    put(w, job.animal);
    w.Key("state");
    w.String(to_string(job.state));
    put_time(w, "created", job.created_ms);
    put_time(w, "started", job.started_ms);
    put_time(w, "deadline", job.deadline_ms);
    put_time(w, "finished", job.finished_ms);
    w.Key("duration_seconds");
    w.Double(job.duration_ms / 1000.0);
    w.Key("progress");
    w.Double(std::round(job.progress(now) * 1000.0) / 1000.0);
    w.Key("seconds_left");
    w.Double(static_cast<double>(job.remaining_ms(now)) / 1000.0);
    w.Key("result");
    if (job.state == JobState::done) put(w, job.result);
    else w.Null();
    put_links(w, job, id);
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

}  // namespace zk::api
