// sluice-dump-log: prints and checks the files of a segment (.log, .index, .timeindex),
// like Kafka's kafka-dump-log (kafka.tools.DumpLogSegments).
//
//   sluice-dump-log [--files F1,F2 | F...] [--print-data-log] [--deep-iteration]
//                   [--verify] [--index-sanity-check]
//
// Dump (the default): for each file, "Dumping <path>", then
//   .log        one line per batch, with Kafka's field names; with --deep-iteration (or
//               --print-data-log, which implies it) one "| offset: ..." line per record;
//               with --print-data-log also "key: ... payload: ..." (UTF-8 text when it is
//               printable, else 0x-prefixed hex). A torn or unreadable tail is reported as
//               "Found N invalid bytes ..." and ends the file; a bad CRC shows as
//               "isvalid: false" and the dump goes on.
//   .index      "offset: N position: N" per entry;  .timeindex  "timestamp: N offset: N".
//               The all-zero tail of a preallocated, untrimmed index is reported as one
//               "unused: ..." line, not printed as entries.
// --index-sanity-check: an index file is checked on its own (strictly increasing entries,
//   positions inside the sibling .log when there is one) instead of printed:
//   "<path> passed sanity check.".
// --verify: nothing is dumped; every file is checked (segment_verifier.h states the rules),
//   a .log together with its sibling .index and .timeindex when they exist, an index file
//   against its sibling .log. Success prints "verified N batches, M records, K index
//   entries in <path>". The first problem of a file prints one line to `err`:
//   "sluice-dump-log: <path>: <problem> at byte <position> (offset <N>)" -- the position is
//   in <path> -- and the remaining files are still checked.
//
// Exit status: 0 all good (a dump exits 0 even when it shows damage, as Kafka's does);
// 1 a file failed a check or could not be read; 2 a usage error (unknown option, no files,
// a file that does not exist or is not a segment file), reported as one line on `err`.
//
// The tool never writes to the files it reads: they are opened O_RDONLY and mapped
// PROT_READ (see segment_files.h), never through the engine's segment or index classes.
#pragma once

#include <cstdio>

namespace sluice {

// Runs the tool on the command line argv[0..argc) (argv[0] is the program name), writing
// the dump to `out` and problems to `err`. Returns the exit status. Never throws.
int run_dump_log(int argc, char** argv, std::FILE* out, std::FILE* err);

}  // namespace sluice
