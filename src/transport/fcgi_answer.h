// The FastCGI records of one answer, written by us rather than libfcgi: a
// parked request has given its FCGX_Request (and its ~8 KB of stream
// buffers) back, so its answer is encoded here: FCGI_STDOUT records with the
// serialised HTTP answer, an empty FCGI_STDOUT, then FCGI_END_REQUEST with
// FCGI_REQUEST_COMPLETE (FastCGI 1.0, sections 5.3 and 5.5). A stopping
// worker's answers are encoded here too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zk::transport {

// The largest content a record holds (its length field is 16 bits).
constexpr std::size_t max_record_content = 65535;

// What the connection does after the answer. nginx keeps a FastCGI
// connection for another request only when FCGI_END_REQUEST ends what it
// read (ngx_http_fastcgi_module's input filters), so `closed` adds one empty
// FCGI_STDOUT after the end, and nginx closes the connection instead of
// choosing it again. Closing it from our side alone races with nginx's next
// write there, which becomes a reset and, for a POST, nginx's 502.
enum class ConnectionAfter { kept, closed };

std::string encode_answer(std::uint16_t request_id, std::string_view stdout_data,
                          ConnectionAfter then = ConnectionAfter::kept);

// Writes all of `data` to a blocking socket; false on any error.
bool send_all(int fd, std::string_view data);

}  // namespace zk::transport
