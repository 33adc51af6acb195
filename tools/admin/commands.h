// The commands of sluice-admin. Each runs against an admin_session, prints its result
// to the session's output (a table, or one JSON document with --json), reports failures
// through the session, and returns the exit status (0, or 1 when anything failed).
#pragma once

#include <ostream>

#include "tools/admin/admin_session.h"

namespace sluice::admin {

int topics_list(admin_session& session);
int topics_describe(admin_session& session);
int topics_create(admin_session& session);
int topics_delete(admin_session& session);
int topics_alter_config(admin_session& session);

int groups_list(admin_session& session);
int groups_describe(admin_session& session);
int groups_reset_offsets(admin_session& session);
int groups_delete(admin_session& session);

// The whole tool: parses argv, runs the command, returns the exit status (2 for a usage
// error). main() is this with std::cout and std::cerr.
int run_admin(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace sluice::admin
