#include "training/optimizer.h"

#include <cstdio>
#include <cstdlib>

namespace silk::training {

void SgdMomentum::Step(absl::Span<float> params, absl::Span<const float> grads, size_t offset) {
  if (grads.size() != params.size() || offset > velocity_.size() || params.size() > velocity_.size() - offset) {
    std::fprintf(stderr, "SgdMomentum::Step: %zu parameters and %zu gradients at offset %zu of an arena of %zu\n",
                 params.size(), grads.size(), offset, velocity_.size());
    std::abort();  // a caller's bug: stepping the wrong range would corrupt the model silently
  }
  // Locals, so that the compiler knows no store below changes them (and vectorizes).
  const float lr = lr_, momentum = momentum_, weight_decay = weight_decay_;
  const size_t n = params.size();
  float* p = params.data();
  const float* g = grads.data();
  float* v = velocity_.data() + offset;
  for (size_t i = 0; i < n; ++i) {
    v[i] = momentum * v[i] + (g[i] + weight_decay * p[i]);
    p[i] -= lr * v[i];
  }
}

}  // namespace silk::training
