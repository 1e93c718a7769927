// Parses a response body for the API tests; a body that is not JSON fails
// the test where it was read.
#pragma once

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>

namespace zk::test {

inline rapidjson::Document parse_json(const std::string& text)
{
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

}  // namespace zk::test
