#include "runtime/topology.h"

#include "absl/container/flat_hash_map.h"

namespace silk {

Topology Topology::FromPlacements(const std::vector<RankPlacement>& placements) {
  Topology t;
  absl::flat_hash_map<std::string, int> region_index, node_index;
  for (const RankPlacement& p : placements) {
    auto [region, new_region] = region_index.try_emplace(p.region, static_cast<int>(t.regions_.size()));
    if (new_region) {
      t.regions_.emplace_back();
      t.region_names_.push_back(p.region);
    }
    t.regions_[region->second].push_back(p.rank);
    t.region_of_.push_back(region->second);
    auto [node, new_node] = node_index.try_emplace(p.node, static_cast<int>(t.nodes_.size()));
    if (new_node) t.nodes_.emplace_back();
    t.nodes_[node->second].push_back(p.rank);
    t.node_of_.push_back(node->second);
  }
  return t;
}

}  // namespace silk
