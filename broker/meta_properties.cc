#include "broker/meta_properties.h"

#include <charconv>
#include <sstream>

#include "broker/kafka_uuid.h"
#include "engine/base/log.h"
#include "engine/io/file.h"

namespace sluice {

result<meta_properties> load_or_create_meta_properties(const std::string& data_dir,
                                                       std::int32_t node_id) {
  const std::string path = data_dir + "/meta.properties";
  if (path_exists(path)) {
    auto text = read_small_file(path, 64 * 1024);
    if (!text) return text.failure();
    meta_properties found;
    found.node_id = -1;
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("cluster.id=", 0) == 0) found.cluster_id = line.substr(11);
      if (line.rfind("node.id=", 0) == 0) {
        std::string_view v(line.c_str() + 8);
        std::from_chars(v.data(), v.data() + v.size(), found.node_id);
      }
    }
    if (!uuid_from_kafka_string(found.cluster_id)) {
      SLUICE_LOG(error, "broker", "{} has no valid cluster.id line; fix or remove the file", path);
      return error(errc::corrupt_batch, "meta.properties has no valid cluster.id");
    }
    if (found.node_id != node_id) {
      SLUICE_LOG(warn, "broker", "{} was written by node {}; this broker runs as node {}", path,
                 found.node_id, node_id);
    }
    found.node_id = node_id;
    return found;
  }
  meta_properties created{uuid_to_kafka_string(random_uuid()), node_id};
  std::string text =
      "# written by sluice; do not edit\nversion=1\ncluster.id=" + created.cluster_id +
      "\nnode.id=" + std::to_string(node_id) + "\n";
  SLUICE_TRY(write_file_atomically(
      path, std::span(reinterpret_cast<const std::byte*>(text.data()), text.size())));
  SLUICE_LOG(info, "broker", "new data directory: cluster id {}", created.cluster_id);
  return created;
}

}  // namespace sluice
