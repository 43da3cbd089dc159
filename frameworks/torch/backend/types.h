// How PyTorch's element types and reductions map onto Silk's.
//
//   torch.float32/float64/float16/bfloat16  -> float32/float64/float16/bfloat16
//   torch.int8/uint8/int32/int64            -> int8/uint8/int32/int64
//   torch.bool                              -> uint8 holding 0/1, where SUM is
//       logical or (max) and PRODUCT logical and (min), as in c10d's NCCL
//       backend; MIN and MAX are and/or too; AVG is an error.
// Collectives that only move data (broadcast, all-gather, all-to-all) accept
// every other type too, as bytes.
#pragma once

#include <cstddef>
#include <string>

#include <c10/core/ScalarType.h>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include "absl/status/statusor.h"
#include "runtime/core/types.h"

namespace silk::pytorch {

// The Silk type for reducing tensors of `type`; InvalidArgument names the
// type and lists the supported ones.
absl::StatusOr<DataType> ReductionType(at::ScalarType type);

// The Silk reduction for `op` on tensors of `type` (see the table above).
absl::StatusOr<ReduceOp> ToSilkReduceOp(const ::c10d::ReduceOp& op, at::ScalarType type);

// How a collective that only moves data sees `numel` elements of `type`: in
// Silk's own type when there is one (so ranks that disagree on the type are
// caught as a mismatch), else as numel * element-size bytes.
struct MovedElements {
  DataType type;
  size_t count;
};
MovedElements MovementType(at::ScalarType type, size_t numel);

// "float32", "int16", ... (PyTorch's names, as users write them).
std::string TorchTypeName(at::ScalarType type);

}  // namespace silk::pytorch
