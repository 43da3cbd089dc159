// Argument checks done on the calling thread, before anything is sent. Each
// returns InvalidArgument with a message naming the operation and the values.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/core/types.h"

namespace silk {

absl::Status ValidateType(DataType type);
absl::Status ValidateReduceOp(ReduceOp op);
// A buffer of `bytes` must not be null unless it is empty.
absl::Status ValidateBuffer(const void* buffer, size_t bytes, const char* name);
// Input and output are either the same buffer or do not overlap at all.
absl::Status ValidateNoPartialOverlap(const void* input, size_t input_bytes, const void* output, size_t output_bytes);
// `block` either is exactly `in_place_at` (the in-place layout) or does not overlap `buffer` at all.
absl::Status ValidateBlockPlacement(const void* block, size_t block_bytes, const void* buffer, size_t buffer_bytes,
                                    const void* in_place_at, const char* what);
absl::Status ValidateRoot(int root, int size, const char* what);
// count * parts * element size in bytes; InvalidArgument when that overflows.
absl::StatusOr<size_t> BufferBytes(size_t count, size_t parts, DataType type, const char* what);

}  // namespace silk
