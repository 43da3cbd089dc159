// Which algorithm runs a call: the per-call name when given, else the job-wide
// SILK_ALGO family, else a choice by message size. The choice travels in the
// operation's descriptor (OpDescriptor::flags), so ranks that chose
// differently fail with a mismatch instead of exchanging misread bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/types.h"

namespace silk::algorithms {

enum class Algorithm : uint8_t {
  kRing = 1,             // chunked, pipelined ring (or chain, for rooted operations)
  kHalvingDoubling = 2,  // Rabenseifner: recursive halving, then recursive doubling
  kTree = 3,             // binomial tree (broadcast, reduce)
  kPairwise = 4,         // every pair exchanges directly (all-to-all)
  kDissemination = 5,    // log2(n) rounds of 0-byte messages (barrier)
  kHierarchical = 6,     // region-aware: inside regions, then once across the WAN (hierarchical.h)
  kSharedMemory = 7,     // one node's shared-memory slots, run by the caller (shared_slots.h); chosen, never named
};

const char* AlgorithmName(Algorithm algorithm);

// Below these sizes (bytes a rank sends or receives in total) the log-depth
// algorithm wins: latency, not bandwidth, bounds the time.
inline constexpr size_t kHalvingDoublingMaxBytes = 256 << 10;
inline constexpr size_t kTreeMaxBytes = 64 << 10;

// `requested` is the call's option (must fit `kind`), `configured` is SILK_ALGO
// (a family name, ignored where it does not apply), `bytes` the message size.
// When the ranks span several `regions`, operations that have a hierarchical
// form use it by default at every size: it crosses the WAN once per byte, where
// a flat ring crosses it twice and pays its latency on many steps.
absl::StatusOr<Algorithm> ChooseAlgorithm(CollectiveKind kind, const std::string& requested,
                                          const std::string& configured, size_t bytes, int regions = 1);

// Whether `kind` has a hierarchical form (all-gather: equal counts only).
bool HasHierarchicalForm(CollectiveKind kind);

}  // namespace silk::algorithms
