// The collective suite's cases: one call of one operation with one type,
// reduction, placement, count, algorithm and root, run on one rank and checked
// there against suite_reference.h. Shared by the in-process suite
// (suite_test.cc) and the multi-process check program (suite_check.cc).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "collectives/collectives.h"
#include "tests/collectives/suite_reference.h"

namespace silk::testing {

enum class Op { kAllreduce, kReduceScatter, kReduce, kAllgather, kAllgatherv, kBroadcast, kAlltoall };

inline const char* OpName(Op op) {
  switch (op) {
    case Op::kAllreduce: return "Allreduce";
    case Op::kReduceScatter: return "ReduceScatter";
    case Op::kReduce: return "Reduce";
    case Op::kAllgather: return "Allgather";
    case Op::kAllgatherv: return "Allgatherv";
    case Op::kBroadcast: return "Broadcast";
    case Op::kAlltoall: return "Alltoall";
  }
  return "?";
}

inline bool Reduces(Op op) { return op == Op::kAllreduce || op == Op::kReduceScatter || op == Op::kReduce; }

inline std::vector<std::string> AlgorithmsOf(Op op) {
  switch (op) {
    case Op::kReduce:
    case Op::kBroadcast: return {"ring", "tree"};
    case Op::kAlltoall: return {"pairwise"};
    default: return {"ring", "rhd"};
  }
}

inline constexpr DataType kTypes[] = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16,
                                      DataType::kInt8,    DataType::kUint8,   DataType::kInt32,   DataType::kInt64};
inline constexpr ReduceOp kReductions[] = {ReduceOp::kSum, ReduceOp::kProd, ReduceOp::kMin, ReduceOp::kMax,
                                           ReduceOp::kAvg};

struct Case {
  Op op;
  DataType type;
  ReduceOp reduction;  // kSum for operations that do not reduce (it picks the input values)
  bool in_place;
  size_t count;
  std::string algorithm;
  int root;
  uint64_t seed;
  std::string Describe() const {
    return absl::StrFormat("%s %s %s %s count=%d algorithm=%s root=%d", OpName(op), DataTypeName(type),
                           ReduceOpName(reduction), in_place ? "in-place" : "out-of-place", count, algorithm, root);
  }
};

// A buffer that starts `misalign` bytes past an allocation, so no alignment is ever assumed.
class Buffer {
 public:
  Buffer(size_t bytes, size_t misalign) : storage_(bytes + 16, '\x5A'), data_(storage_.data() + misalign) {}
  char* data() { return data_; }

 private:
  std::vector<char> storage_;
  char* data_;
};

// allgatherv's counts: varied, one rank contributes nothing.
inline std::vector<size_t> VaryingCounts(size_t count, int n) {
  std::vector<size_t> counts(n);
  for (int q = 0; q < n; ++q) counts[q] = q == n / 2 ? 0 : count + q % 3;
  return counts;
}

// Runs one case on this rank and checks its output; `hash` receives what
// every rank must agree on (0 where ranks hold different results).
inline absl::Status RunCase(Communicator& comm, const Case& c, uint64_t* hash) {
  const int n = comm.size(), rank = comm.rank();
  const DataType t = c.type;
  const size_t elem = DataTypeSize(t);
  auto input_of = [&](int q, size_t j) { return InputElement(t, c.reduction, c.seed, q, j); };
  auto fail = [&](const std::string& what) {
    return absl::InternalError(absl::StrFormat("rank %d, %s: %s", rank, c.Describe(), what));
  };

  // Elements of this rank's input and output, and where its input sits inside the output in place.
  size_t in_count = c.count, out_count = c.count, in_place_offset = 0;
  std::vector<size_t> counts;
  switch (c.op) {
    case Op::kReduceScatter:
      in_count = c.count * n;
      in_place_offset = rank * c.count;
      break;
    case Op::kAllgather:
      out_count = c.count * n;
      in_place_offset = rank * c.count;
      break;
    case Op::kAllgatherv:
      counts = VaryingCounts(c.count, n);
      in_count = counts[rank];
      out_count = 0;
      for (int q = 0; q < n; ++q) {
        if (q < rank) in_place_offset += counts[q];
        out_count += counts[q];
      }
      break;
    case Op::kAlltoall: in_count = out_count = c.count * n; break;
    default: break;
  }
  // In place, the input lives inside the (larger) output buffer, or the reverse for reduce-scatter.
  const bool input_is_larger = c.op == Op::kReduceScatter;
  Buffer first((input_is_larger ? in_count : out_count) * elem, c.count % 2 + 1);
  Buffer second((input_is_larger ? out_count : in_count) * elem, c.count % 3 + 2);
  char* input;
  char* output;
  if (c.in_place) {
    input = input_is_larger ? first.data() : first.data() + in_place_offset * elem;
    output = input_is_larger ? first.data() + in_place_offset * elem : first.data();
  } else {
    input = input_is_larger ? first.data() : second.data();
    output = input_is_larger ? second.data() : first.data();
  }
  for (size_t j = 0; j < in_count; ++j) StoreBits(t, input, j, input_of(rank, j));
  const bool on_root = rank == c.root;
  const uint64_t input_hash = Fnv1a(input, in_count * elem);

  absl::Status status;
  switch (c.op) {
    case Op::kAllreduce: status = Allreduce(comm, {input, output, c.count, t, c.reduction, {}, c.algorithm}); break;
    case Op::kReduceScatter:
      status = ReduceScatter(comm, {input, output, c.count, t, c.reduction, {}, c.algorithm});
      break;
    case Op::kReduce: status = Reduce(comm, {input, output, c.count, t, c.reduction, c.root, {}, c.algorithm}); break;
    case Op::kAllgather: status = Allgather(comm, {input, output, c.count, t, {}, c.algorithm}); break;
    case Op::kAllgatherv: status = Allgatherv(comm, {input, output, counts, t, {}, c.algorithm}); break;
    case Op::kBroadcast:
      // Only the root's input is read: the others pass none.
      status = Broadcast(comm, {on_root ? input : nullptr, output, c.count, t, c.root, {}, c.algorithm});
      break;
    case Op::kAlltoall: status = Alltoall(comm, {input, output, c.count, t, {}, c.algorithm}); break;
  }
  if (!status.ok()) return status;
  if (!c.in_place && Fnv1a(input, in_count * elem) != input_hash) return fail("the input was modified");

  std::vector<uint64_t> inputs(n);
  std::string why;
  // A short output is printed whole on a failure: which elements went wrong,
  // and whether a wrong one holds another element's value, tells a misplaced
  // message from a miscomputed one.
  auto describe_small_output = [&]() -> std::string {
    if (out_count > 32) return "";
    std::string all;
    for (size_t i = 0; i < out_count; ++i) {
      absl::StrAppendFormat(&all, "%s0x%x", i == 0 ? "" : " ", LoadBits(t, output, i));
    }
    return absl::StrFormat(" (the whole output, raw: %s)", all);
  };
  auto check_reduced = [&](size_t out_index, size_t in_index) -> absl::Status {
    for (int q = 0; q < n; ++q) inputs[q] = input_of(q, in_index);
    if (!CheckReduction(t, c.reduction, inputs.data(), n, LoadBits(t, output, out_index), &why)) {
      return fail(absl::StrFormat("element %d: %s%s", out_index, why, describe_small_output()));
    }
    return absl::OkStatus();
  };
  auto check_copied = [&](size_t out_index, int q, size_t in_index) -> absl::Status {
    const uint64_t got = LoadBits(t, output, out_index), want = input_of(q, in_index);
    if (got != want) {
      return fail(absl::StrFormat("element %d is 0x%x, expected 0x%x (rank %d's element %d)%s", out_index, got, want,
                                  q, in_index, describe_small_output()));
    }
    return absl::OkStatus();
  };
  *hash = 0;
  switch (c.op) {
    case Op::kAllreduce:
      for (size_t i = 0; i < c.count; ++i) {
        if (absl::Status s = check_reduced(i, i); !s.ok()) return s;
      }
      *hash = Fnv1a(output, out_count * elem);
      break;
    case Op::kReduceScatter:
      for (size_t i = 0; i < c.count; ++i) {
        if (absl::Status s = check_reduced(i, rank * c.count + i); !s.ok()) return s;
      }
      break;
    case Op::kReduce:
      if (!on_root) break;
      for (size_t i = 0; i < c.count; ++i) {
        if (absl::Status s = check_reduced(i, i); !s.ok()) return s;
      }
      break;
    case Op::kAllgather:
    case Op::kAllgatherv: {
      size_t at = 0;
      for (int q = 0; q < n; ++q) {
        const size_t contributed = c.op == Op::kAllgather ? c.count : counts[q];
        for (size_t i = 0; i < contributed; ++i, ++at) {
          if (absl::Status s = check_copied(at, q, i); !s.ok()) return s;
        }
      }
      *hash = Fnv1a(output, out_count * elem);
      break;
    }
    case Op::kBroadcast:
      for (size_t i = 0; i < c.count; ++i) {
        if (absl::Status s = check_copied(i, c.root, i); !s.ok()) return s;
      }
      *hash = Fnv1a(output, out_count * elem);
      break;
    case Op::kAlltoall:
      for (int q = 0; q < n; ++q) {
        for (size_t i = 0; i < c.count; ++i) {
          if (absl::Status s = check_copied(q * c.count + i, q, rank * c.count + i); !s.ok()) return s;
        }
      }
      break;
  }
  return absl::OkStatus();
}

// Every type x reduction (for reducing operations) x placement x count x algorithm of `op`.
inline std::vector<Case> CasesFor(Op op, int n, const std::vector<size_t>& counts) {
  std::vector<Case> cases;
  std::vector<ReduceOp> reductions(std::begin(kReductions), std::end(kReductions));
  if (!Reduces(op)) reductions = {ReduceOp::kSum};
  uint64_t seed = 1;
  for (const std::string& algorithm : AlgorithmsOf(op)) {
    for (DataType type : kTypes) {
      for (ReduceOp reduction : reductions) {
        for (bool in_place : {false, true}) {
          for (size_t count : counts) {
            const int root = static_cast<int>((seed * 5) % n);
            cases.push_back(Case{op, type, reduction, in_place, count, algorithm, root, seed++});
          }
        }
      }
    }
  }
  return cases;
}

}  // namespace silk::testing
