#include <string>

#include "tools/admin/commands.h"

namespace sluice::admin {

int run_admin(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  auto parsed = parse_admin_command(argc, argv);
  if (auto* help = std::get_if<admin_help>(&parsed)) {
    out << help->text;
    return 0;
  }
  if (auto* usage = std::get_if<admin_usage_error>(&parsed)) {
    err << "sluice-admin: " << usage->message << " (see sluice-admin --help)\n";
    return 2;
  }
  const admin_command& command = std::get<admin_command>(parsed);
  admin_session session(command, out, err);
  using runner = int (*)(admin_session&);
  static const std::pair<const char*, runner> table[] = {
      {"topics list", topics_list},
      {"topics describe", topics_describe},
      {"topics create", topics_create},
      {"topics delete", topics_delete},
      {"topics alter-config", topics_alter_config},
      {"groups list", groups_list},
      {"groups describe", groups_describe},
      {"groups reset-offsets", groups_reset_offsets},
      {"groups delete", groups_delete},
  };
  for (const auto& [name, run] : table) {
    if (command.name() == name) {
      const int status = run(session);
      out.flush();
      return status;
    }
  }
  err << "sluice-admin: unknown command '" << command.name() << "'\n";
  return 2;
}

}  // namespace sluice::admin
