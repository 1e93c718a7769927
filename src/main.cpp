// zookeeper-fcgi: the FastCGI worker of the zookeeper survey service.
// Parses the command line and hands over to the mode it names.

#include <iostream>
#include <variant>

#include "app/options.h"
#include "app/service.h"
#include "config/config.h"
#include "util/version.h"

int main(int argc, char** argv)
{
    using namespace zk;
    auto parsed = app::parse_options(argc, argv);
    if (auto* e = std::get_if<app::UsageError>(&parsed)) {
        std::cerr << "zookeeper-fcgi: " << e->message << "\n" << app::usage_text();
        return 2;
    }
    const auto& options = std::get<app::Options>(parsed);
    switch (options.mode) {
    case app::Mode::help: std::cout << app::usage_text(); return 0;
    case app::Mode::version: std::cout << "zookeeper-fcgi " << zk::version << "\n"; return 0;
    case app::Mode::check_config: {
        auto loaded = load_config(options.config_path);
        if (auto* e = std::get_if<ConfigError>(&loaded)) {
            std::cerr << "zookeeper-fcgi: " << e->str() << "\n";
            return 2;
        }
        std::cout << options.config_path << ": ok\n";
        return 0;
    }
    case app::Mode::serve: break;
    }
    return app::run_service(options);
}
