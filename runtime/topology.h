// Who is where: the ranks of a communicator grouped by region and by node.
// Regions and nodes are numbered in order of their lowest rank, and member
// lists are in rank order, so every rank derives the same topology.
#pragma once

#include <string>
#include <vector>

#include "runtime/communicator.h"

namespace silk {

class Topology {
 public:
  static Topology FromPlacements(const std::vector<RankPlacement>& placements);

  int size() const { return static_cast<int>(region_of_.size()); }
  int num_regions() const { return static_cast<int>(regions_.size()); }
  int region_of(int rank) const { return region_of_[rank]; }
  const std::vector<int>& region_members(int region) const { return regions_[region]; }
  const std::string& region_name(int region) const { return region_names_[region]; }

  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  int node_of(int rank) const { return node_of_[rank]; }
  const std::vector<int>& node_members(int node) const { return nodes_[node]; }

 private:
  std::vector<int> region_of_, node_of_;
  std::vector<std::vector<int>> regions_, nodes_;
  std::vector<std::string> region_names_;
};

}  // namespace silk
