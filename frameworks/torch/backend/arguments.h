// The backend's argument checks, shared by process_group.cc and
// process_group_p2p.cc: a refused call raises RefusedCall (RuntimeError in
// Python) before anything reaches Silk.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "frameworks/torch/backend/tensor_buffer.h"
#include "frameworks/torch/backend/types.h"

namespace silk::pytorch {

// A call refused for its arguments: raised at once, like c10d's own checks
// (RuntimeError); ProcessGroupSilk::Refusable also tells the peers.
class RefusedCall : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void Fail(absl::string_view operation, absl::string_view message) {
  throw RefusedCall(absl::StrCat("silk ", operation, ": ", message));
}

inline void Check(bool condition, const char* operation, absl::string_view message) {
  if (!condition) Fail(operation, message);
}

template <typename T>
T ValueOrFail(absl::StatusOr<T> value, const char* operation) {
  if (!value.ok()) Fail(operation, value.status().message());
  return *std::move(value);
}

inline TensorBuffer Buffer(std::vector<at::Tensor> tensors, TensorBuffer::Access access, const char* operation,
                           const char* what) {
  return ValueOrFail(TensorBuffer::Make(std::move(tensors), access, what), operation);
}

// c10d's "unset" (-1) and "none" (0) timeouts both mean the group's timeout,
// which Silk calls zero.
inline absl::Duration OpTimeout(std::chrono::milliseconds timeout) {
  return timeout.count() <= 0 ? absl::ZeroDuration() : absl::Milliseconds(timeout.count());
}

inline void CheckSingleTensor(const std::vector<at::Tensor>& tensors, const char* operation) {
  Check(tensors.size() == 1, operation,
        absl::StrCat("takes exactly one tensor per process (got ", tensors.size(), ")"));
}

inline void CheckSameType(const at::Tensor& a, const at::Tensor& b, const char* operation) {
  Check(a.scalar_type() == b.scalar_type(), operation,
        absl::StrCat("input is torch.", TorchTypeName(b.scalar_type()), " but output is torch.",
                     TorchTypeName(a.scalar_type())));
}

}  // namespace silk::pytorch
