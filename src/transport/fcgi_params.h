// The request the worker reads out of libfcgi's params: the few that nginx
// sets for it (nginx/zookeeper-locations.conf) among the twenty-odd it sends.
// libfcgi's FCGX_GetParam scans the whole array with strncmp for each name
// asked for (five lookups, one of a usually absent name: about 3,200
// instructions a request under callgrind); this takes them in one pass, with
// FCGX_GetParam's meaning: the first "NAME=value" entry of a name wins, and a
// param that is absent differs from one that is empty.
#pragma once

#include "http/message.h"

namespace zk::transport {

// envp: libfcgi's FCGX_Request::envp, "NAME=value" strings ending in nullptr.
http::Request request_from_params(const char* const* envp);

}  // namespace zk::transport
