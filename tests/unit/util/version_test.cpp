// util/version: the Makefile bakes the VERSION file into version.cpp.

#include "util/version.h"

#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "support/repo_path.h"

TEST_CASE("version: the VERSION file's first line")
{
    std::ifstream in(zk::test::repo_path("VERSION"));
    std::string line;
    REQUIRE(std::getline(in, line));
    CHECK(std::string(zk::version) == line);
}
