// sluice-admin: topics and consumer groups of any Kafka-protocol broker, from the command
// line. See docs/operations.md, "sluice-admin", and `sluice-admin --help`.
#include <iostream>

#include "tools/admin/commands.h"

int main(int argc, char** argv) {
  return sluice::admin::run_admin(argc, argv, std::cout, std::cerr);
}
