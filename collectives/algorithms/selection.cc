#include "collectives/algorithms/selection.h"

#include <optional>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace silk::algorithms {
namespace {

struct Choices {
  Algorithm bandwidth;  // large messages; SILK_ALGO=ring
  Algorithm latency;    // small messages; SILK_ALGO=rhd or tree
  size_t latency_max_bytes;
};

std::optional<Choices> ChoicesFor(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllreduce:
    case CollectiveKind::kReduceScatter:
    case CollectiveKind::kAllgather:
      return Choices{Algorithm::kRing, Algorithm::kHalvingDoubling, kHalvingDoublingMaxBytes};
    case CollectiveKind::kBroadcast:
    case CollectiveKind::kReduce: return Choices{Algorithm::kRing, Algorithm::kTree, kTreeMaxBytes};
    case CollectiveKind::kAlltoall: return Choices{Algorithm::kPairwise, Algorithm::kPairwise, 0};
    case CollectiveKind::kBarrier: return Choices{Algorithm::kDissemination, Algorithm::kDissemination, 0};
    default: return std::nullopt;
  }
}

std::optional<Algorithm> Parse(const std::string& name) {
  for (Algorithm a : {Algorithm::kRing, Algorithm::kHalvingDoubling, Algorithm::kTree, Algorithm::kPairwise,
                      Algorithm::kDissemination, Algorithm::kHierarchical}) {
    if (name == AlgorithmName(a)) return a;
  }
  return std::nullopt;
}

std::string Allowed(const Choices& c, CollectiveKind kind) {
  std::vector<std::string> names = {AlgorithmName(c.bandwidth)};
  if (c.latency != c.bandwidth) names.push_back(AlgorithmName(c.latency));
  if (HasHierarchicalForm(kind)) names.push_back(AlgorithmName(Algorithm::kHierarchical));
  return absl::StrJoin(names, ", ");
}

}  // namespace

const char* AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kRing: return "ring";
    case Algorithm::kHalvingDoubling: return "rhd";
    case Algorithm::kTree: return "tree";
    case Algorithm::kPairwise: return "pairwise";
    case Algorithm::kDissemination: return "dissemination";
    case Algorithm::kHierarchical: return "hierarchical";
    case Algorithm::kSharedMemory: return "shared-memory";
  }
  return "unknown-algorithm";
}

bool HasHierarchicalForm(CollectiveKind kind) {
  return kind == CollectiveKind::kAllreduce || kind == CollectiveKind::kReduceScatter ||
         kind == CollectiveKind::kAllgather || kind == CollectiveKind::kBroadcast ||
         kind == CollectiveKind::kBarrier;
}

absl::StatusOr<Algorithm> ChooseAlgorithm(CollectiveKind kind, const std::string& requested,
                                          const std::string& configured, size_t bytes, int regions) {
  std::optional<Choices> choices = ChoicesFor(kind);
  if (!choices) {
    return absl::InvalidArgumentError(absl::StrFormat("%s has no algorithms", CollectiveKindName(kind)));
  }
  if (!requested.empty()) {
    std::optional<Algorithm> a = Parse(requested);
    bool hierarchical = a == Algorithm::kHierarchical && HasHierarchicalForm(kind);
    if (!a || (*a != choices->bandwidth && *a != choices->latency && !hierarchical)) {
      return absl::InvalidArgumentError(absl::StrFormat("unknown %s algorithm \"%s\" (known: %s)",
                                                        CollectiveKindName(kind), requested, Allowed(*choices, kind)));
    }
    return *a;
  }
  const bool spans_regions = regions > 1 && HasHierarchicalForm(kind);
  if (!configured.empty()) {
    if (configured == "ring") return choices->bandwidth;
    if (configured == "rhd" || configured == "tree") return choices->latency;
    if (configured == "hierarchical") {
      if (HasHierarchicalForm(kind)) return Algorithm::kHierarchical;
    } else {
      return absl::InvalidArgumentError(absl::StrFormat(
          "SILK_ALGO=\"%s\" is not an algorithm family (known: ring, rhd, tree, hierarchical)", configured));
    }
  }
  if (spans_regions) return Algorithm::kHierarchical;
  return bytes < choices->latency_max_bytes ? choices->latency : choices->bandwidth;
}

}  // namespace silk::algorithms
