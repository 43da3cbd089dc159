#include "collectives/compression/error_feedback.h"

#include "absl/strings/str_format.h"

namespace silk {

void ErrorFeedback::Reset() {
  bound_ = false;
  residual_.clear();
  residual_.shrink_to_fit();
}

absl::Status ErrorFeedback::Bind(uint64_t count, Compression compression, int rank, int size) {
  if (!bound_) {
    bound_ = true;
    count_ = count;
    compression_ = compression;
    rank_ = rank;
    size_ = size;
    return absl::OkStatus();
  }
  if (count == count_ && compression == compression_ && rank == rank_ && size == size_) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "error_feedback was used for count=%d, wan_compression=%s on rank %d of %d; this call has count=%d, "
      "wan_compression=%s on rank %d of %d (keep one ErrorFeedback per buffer, or Reset() it)",
      count_, CompressionName(compression_), rank_, size_, count, CompressionName(compression), rank, size));
}

float* ErrorFeedback::Share(size_t elements) {
  if (residual_.size() != elements) residual_.assign(elements, 0.0f);
  return residual_.data();
}

}  // namespace silk
