// The command line and config file of the `sluice` binary.
//
// Every flag is also accepted in a `--config FILE` (one `name = value` per line, the
// flag's name without dashes); the command line wins over the file. Parsing never
// exits: it returns the options, or a one-line error naming the bad flag, so main() can
// print it and exit 2.
#pragma once

#include <string>
#include <variant>

#include "engine/base/log.h"
#include "engine/storage/log_config.h"

namespace sluice {

struct broker_options {
  std::string data_dir = "./sluice-data";
  log_level level = log_level::info;
  log_config log;
  std::size_t open_partitions_max = 0;  // 0: derived from RLIMIT_NOFILE
};

// What parsing produced: options to run with, help text to print (exit 0), or an error
// line to print (exit 2).
struct parse_help {
  std::string text;
};
struct parse_error {
  std::string message;
};
using parse_outcome = std::variant<broker_options, parse_help, parse_error>;

parse_outcome parse_broker_options(int argc, const char* const* argv);

}  // namespace sluice
