// How blocks of one region's ranks are handed to the ranks of another region
// (used by the hierarchical all-gather and reduce-scatter): the rank at
// position p of region r' is paired with position p mod m of a region of m
// ranks. With equal region sizes this is a one-to-one counterpart.
#pragma once

#include <algorithm>
#include <vector>

#include "collectives/algorithms/partition.h"
#include "runtime/topology.h"

namespace silk::algorithms {

// Whether `ranks` all share one node.
inline bool OnOneNode(const Topology& topology, const std::vector<int>& ranks) {
  return std::all_of(ranks.begin(), ranks.end(),
                     [&](int r) { return topology.node_of(r) == topology.node_of(ranks.front()); });
}

// Global ranks of other regions whose blocks `position` of `region` receives, in
// region order then position order.
inline std::vector<int> ForeignRanksAssignedTo(const Topology& topology, int region, int position) {
  const int m = static_cast<int>(topology.region_members(region).size());
  std::vector<int> ranks;
  for (int r = 0; r < topology.num_regions(); ++r) {
    if (r == region) continue;
    const std::vector<int>& members = topology.region_members(r);
    for (int p = 0; p < static_cast<int>(members.size()); ++p) {
      if (p % m == position) ranks.push_back(members[p]);
    }
  }
  return ranks;
}

// The rank of `region` that receives the block of global rank `rank` (from another region).
inline int ReceiverOf(const Topology& topology, int rank, int region) {
  const std::vector<int>& own = topology.region_members(topology.region_of(rank));
  const int position = static_cast<int>(std::find(own.begin(), own.end(), rank) - own.begin());
  const std::vector<int>& there = topology.region_members(region);
  return there[position % there.size()];
}

// Inside `region`, member j's blocks packed contiguously: its own block, then the
// foreign blocks it receives (in ForeignRanksAssignedTo order), `count` each.
struct PackedLayout {
  std::vector<std::vector<int>> held;  // per member: the global ranks whose blocks it holds
  Blocks blocks;                       // per member: its range in the packed buffer
  size_t total = 0;                    // elements in the packed buffer
};

inline PackedLayout PackForRegion(const Topology& topology, int region, size_t count) {
  const std::vector<int>& local = topology.region_members(region);
  PackedLayout layout;
  layout.held.resize(local.size());
  layout.blocks.resize(local.size());
  for (size_t j = 0; j < local.size(); ++j) {
    layout.held[j] = {local[j]};
    for (int q : ForeignRanksAssignedTo(topology, region, static_cast<int>(j))) layout.held[j].push_back(q);
    layout.blocks[j] = Range{layout.total, layout.held[j].size() * count};
    layout.total += layout.blocks[j].count;
  }
  return layout;
}

inline int PositionIn(const std::vector<int>& members, int rank) {
  return static_cast<int>(std::find(members.begin(), members.end(), rank) - members.begin());
}

}  // namespace silk::algorithms
