// sluice-dump-log: the program around run_dump_log (dump_log.h), which tests call directly.
#include "tools/dump_log/dump_log.h"

#include <cstdio>

int main(int argc, char** argv) {
  return sluice::run_dump_log(argc, argv, stdout, stderr);
}
