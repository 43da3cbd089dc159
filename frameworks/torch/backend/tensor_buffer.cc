#include "frameworks/torch/backend/tensor_buffer.h"

#include "absl/strings/str_cat.h"
#include "frameworks/torch/backend/types.h"

namespace silk::pytorch {

absl::StatusOr<TensorBuffer> TensorBuffer::Make(std::vector<at::Tensor> tensors, Access access,
                                                const std::string& what) {
  if (tensors.empty()) return absl::InvalidArgumentError(absl::StrCat("no ", what, " given"));
  const at::ScalarType type = tensors[0].scalar_type();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    const std::string name = tensors.size() == 1 ? what : absl::StrCat(what, " ", i);
    if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(name, " is undefined"));
    if (!t.device().is_cpu()) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is on ", t.device().str(),
                                                     "; the silk backend takes CPU tensors (device staging is "
                                                     "not implemented yet)"));
    }
    if (t.layout() != at::kStrided) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is not a dense (strided) tensor"));
    }
    if (t.scalar_type() != type) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is torch.", TorchTypeName(t.scalar_type()),
                                                     " but the first is torch.", TorchTypeName(type),
                                                     "; all must have one type"));
    }
    total += t.numel();
  }
  if (tensors.size() == 1 && tensors[0].is_contiguous()) {
    at::Tensor host = tensors[0];
    return TensorBuffer(std::move(tensors), std::move(host), access, /*staged=*/false);
  }
  // Collectives move data, not autograd history (and may write into leaves
  // that require grad, as c10d's backends do).
  at::NoGradGuard no_grad;
  at::Tensor host = at::empty({total}, tensors[0].options().requires_grad(false));
  if (access != Access::kWrite) {
    int64_t offset = 0;
    for (const at::Tensor& t : tensors) {
      host.narrow(0, offset, t.numel()).view(t.sizes()).copy_(t);
      offset += t.numel();
    }
  }
  return TensorBuffer(std::move(tensors), std::move(host), access, /*staged=*/true);
}

void TensorBuffer::WriteBack() {
  if (!staged_ || access_ == Access::kRead) return;
  at::NoGradGuard no_grad;  // grad mode is per thread, and on in Silk's engine thread
  int64_t offset = 0;
  for (at::Tensor& t : tensors_) {
    t.copy_(host_.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

}  // namespace silk::pytorch
