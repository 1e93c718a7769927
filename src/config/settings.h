// The table of every `key = value` setting of zookeeper.conf: its section,
// key, default, allowed range and one-line meaning. The parser reads values
// through it, the defaults come from it and nowhere else, and a man page or
// the shipped file can be checked against it.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace zk {

enum class SettingKind {
    count,          // a whole number in [min, max]
    number,         // a decimal number in [min, max]
    log_level,      // debug, info, warn or error (util/log's names)
    absolute_path,  // starts with '/'
    backend,        // sqlite or postgresql
    text,           // any text, empty included
    name,           // empty, or up to 64 of letters, digits and . _ - :
};

// Where a parsed value goes in a Config.
using SettingField = std::variant<std::size_t*, double*, std::string*>;

struct Setting {
    std::string_view section;
    std::string_view key;
    SettingKind kind;
    double min, max;               // inclusive; counts and numbers only
    std::string_view default_text; // as zookeeper.conf spells it
    std::string_view meaning;      // one line, for docs and --help-like listings
    SettingField (*field)(Config& config);
    // A reload (SIGHUP) applies it; any other changed setting is logged by
    // name as needing a restart.
    bool reloads = false;
};

// Every setting, grouped by section in the order zookeeper.conf lists them.
std::span<const Setting> settings();

// The setting named `key` in `section`, or nullptr.
const Setting* find_setting(std::string_view section, std::string_view key);

// Parses `value` for `setting` into `config`; what is wrong with it, or
// nullopt when it was stored.
std::optional<std::string> apply_setting(const Setting& setting, std::string_view value, Config& config);

// A Config with every setting at its default and no words.
Config default_config();

// The settings whose values differ between two configs.
std::vector<const Setting*> changed_settings(const Config& before, const Config& after);

}  // namespace zk
