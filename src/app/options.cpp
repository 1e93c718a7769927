// Hand-rolled option parsing: seven options do not justify a dependency.

#include "app/options.h"

#include <string_view>

#include "util/log.h"

namespace zk::app {

const char* usage_text()
{
    return "usage: zookeeper-fcgi [--config FILE] [--state-dir DIR] [--log-level LEVEL]\n"
           "                      [--backend sqlite|postgresql] [--worker-name NAME]\n"
           "       zookeeper-fcgi --check-config FILE | --help | --version\n"
           "\n"
           "A FastCGI worker for the zookeeper survey service. It serves the FastCGI\n"
           "listening socket on file descriptor 0; start it with spawn-fcgi.\n"
           "\n"
           "  --config FILE        configuration (default /etc/zookeeper/zookeeper.conf)\n"
           "  --state-dir DIR      where jobs are stored (overrides [store] dir)\n"
           "  --log-level LEVEL    debug, info, warn or error (overrides [service] log_level)\n"
           "  --backend NAME       sqlite or postgresql (overrides [store] backend)\n"
           "  --worker-name NAME   this worker's name (overrides [service] worker_name)\n"
           "  --check-config FILE  parse FILE, report the first error, exit 0 or 2\n"
           "  --help, --version\n"
           "\n"
           "Environment: ZOOKEEPER_STORE_URL overrides [store] url (libpq's PG* variables\n"
           "apply as well).\n"
           "Signals: SIGTERM/SIGINT drain and exit; SIGHUP reloads the configuration.\n"
           "Exit status: 0 clean stop, 1 runtime failure, 2 bad usage, config or store.\n";
}

std::variant<Options, UsageError> parse_options(int argc, const char* const argv[])
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&](std::string& out) -> bool {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (arg == "--help" || arg == "-h") o.mode = Mode::help;
        else if (arg == "--version") o.mode = Mode::version;
        else if (arg == "--config" && value(v)) o.config_path = v;
        else if (arg == "--check-config" && value(v)) o.mode = Mode::check_config, o.config_path = v;
        else if (arg == "--state-dir" && value(v)) o.state_dir = v;
        else if (arg == "--backend" && value(v)) o.backend = v;
        else if (arg == "--worker-name" && value(v)) o.worker_name = v;
        else if (arg == "--log-level" && value(v)) {
            if (!log::parse_level(v)) return UsageError{"--log-level must be debug, info, warn or error"};
            o.log_level = v;
        } else if (arg.starts_with("--config") || arg.starts_with("--check-config") || arg.starts_with("--state-dir") ||
                   arg.starts_with("--log-level") || arg.starts_with("--backend") || arg.starts_with("--worker-name"))
            return UsageError{std::string(arg) + " needs a value"};
        else return UsageError{"unknown option " + std::string(arg)};
    }
    return o;
}

}  // namespace zk::app
