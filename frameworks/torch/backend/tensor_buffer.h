// The host memory a collective reads or writes for a list of tensors: the one
// place in the backend that knows where tensors live.
//
// One contiguous CPU tensor is used in place. Anything else -- a
// non-contiguous tensor, or several tensors that a collective treats as one
// buffer (all-reduce coalesced, the list forms of all-gather, reduce-scatter
// and all-to-all) -- goes through a contiguous host staging tensor, filled
// from the tensors when the collective is issued (if it reads them) and
// written back into them when it completes (if it writes them).
//
// This is where GPU tensors will be handled: staging then means a device-to-
// host copy on the tensor's current stream before the collective and a host-
// to-device copy after it (or no staging, for a transport that reads device
// memory). Until then a tensor that is not on the CPU is an error here, and
// nothing else in the backend looks at devices.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"

namespace silk::pytorch {

class TensorBuffer {
 public:
  enum class Access { kRead, kWrite, kReadWrite };

  // `tensors` must be non-empty, dense CPU tensors of one type; `what` names
  // them in errors (e.g. "allreduce tensor").
  static absl::StatusOr<TensorBuffer> Make(std::vector<at::Tensor> tensors, Access access, const std::string& what);

  void* data() const { return host_.data_ptr(); }
  size_t numel() const { return static_cast<size_t>(host_.numel()); }
  size_t bytes() const { return host_.nbytes(); }
  at::ScalarType scalar_type() const { return host_.scalar_type(); }
  const std::vector<at::Tensor>& tensors() const { return tensors_; }

  // After the collective succeeded: copies staged results back into the
  // tensors (kWrite, kReadWrite). Throws what at::Tensor::copy_ throws.
  void WriteBack();

 private:
  TensorBuffer(std::vector<at::Tensor> tensors, at::Tensor host, Access access, bool staged)
      : tensors_(std::move(tensors)), host_(std::move(host)), access_(access), staged_(staged) {}

  std::vector<at::Tensor> tensors_;  // the caller's; kept alive until the collective completes
  at::Tensor host_;                  // what Silk reads and writes: tensors_[0] itself, or a staging tensor
  Access access_;
  bool staged_;
};

}  // namespace silk::pytorch
