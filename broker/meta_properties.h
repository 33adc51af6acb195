// `<data-dir>/meta.properties`: the cluster id, generated once when a data directory is
// first used by a broker, and the node id that created it. Kafka keeps the same file
// (KRaft's meta.properties), in the same Java-properties syntax:
//
//   # written by sluice; do not edit
//   version=1
//   cluster.id=MwAtpFnoQ7uVY2Zla1MKSg
//   node.id=0
//
// The cluster id goes to clients in Metadata (v2+), which some use to notice that they
// were pointed at a different cluster. A node id that differs from the file's is logged
// (Kafka refuses to start; a single node has nothing to get confused, so Sluice goes on).
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/result.h"

namespace sluice {

struct meta_properties {
  std::string cluster_id;
  std::int32_t node_id = 0;
};

// Reads the file, or creates it with a fresh random cluster id (written atomically).
result<meta_properties> load_or_create_meta_properties(const std::string& data_dir,
                                                       std::int32_t node_id);

}  // namespace sluice
