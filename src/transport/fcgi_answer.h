// The FastCGI records of one answer, written by us rather than libfcgi: a
// parked request has given its FCGX_Request (and its ~8 KB of stream
// buffers) back, so its answer is encoded here: FCGI_STDOUT records with the
// serialised HTTP answer, an empty FCGI_STDOUT, then FCGI_END_REQUEST with
// FCGI_REQUEST_COMPLETE (FastCGI 1.0, sections 5.3 and 5.5).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zk::transport {

// The largest content a record holds (its length field is 16 bits).
constexpr std::size_t max_record_content = 65535;

std::string encode_answer(std::uint16_t request_id, std::string_view stdout_data);

// Writes all of `data` to a blocking socket; false on any error.
bool send_all(int fd, std::string_view data);

}  // namespace zk::transport
