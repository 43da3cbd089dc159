#include "collectives/validation.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_format.h"

namespace silk {
namespace {

bool Overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0) return false;
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

}  // namespace

absl::Status ValidateType(DataType type) {
  if (!IsValidDataType(static_cast<int>(type))) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown data type %d", static_cast<int>(type)));
  }
  return absl::OkStatus();
}

absl::Status ValidateReduceOp(ReduceOp op) {
  if (!IsValidReduceOp(static_cast<int>(op))) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown reduction %d", static_cast<int>(op)));
  }
  return absl::OkStatus();
}

absl::Status ValidateBuffer(const void* buffer, size_t bytes, const char* name) {
  if (buffer == nullptr && bytes > 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s buffer is null but holds %d bytes", name, bytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateNoPartialOverlap(const void* input, size_t input_bytes, const void* output, size_t output_bytes) {
  if (input == output) return absl::OkStatus();
  if (Overlap(input, input_bytes, output, output_bytes)) {
    return absl::InvalidArgumentError(
        "input and output buffers overlap without being the same buffer (use the same pointer for in place)");
  }
  return absl::OkStatus();
}

absl::Status ValidateBlockPlacement(const void* block, size_t block_bytes, const void* buffer, size_t buffer_bytes,
                                    const void* in_place_at, const char* what) {
  if (block == in_place_at || !Overlap(block, block_bytes, buffer, buffer_bytes)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s overlaps the other buffer at %p but is not this rank's block of it (%p, for in place): "
                      "pass that pointer, or buffers that do not overlap",
                      what, block, in_place_at));
}

absl::Status ValidateRoot(int root, int size, const char* what) {
  if (root < 0 || root >= size) {
    return absl::InvalidArgumentError(absl::StrFormat("%s root %d is outside the world of %d ranks", what, root, size));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> BufferBytes(size_t count, size_t parts, DataType type, const char* what) {
  const size_t elem = DataTypeSize(type);
  const size_t limit = std::numeric_limits<size_t>::max();
  if (elem == 0 || parts == 0 || count > limit / elem / parts) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d x %d elements of %s do not fit in memory", what, parts, count, DataTypeName(type)));
  }
  return count * parts * elem;
}

}  // namespace silk
