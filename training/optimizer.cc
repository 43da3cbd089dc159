#include "training/optimizer.h"

namespace silk::training {

void SgdMomentum::Step(absl::Span<float> params, absl::Span<const float> grads) {
  const size_t n = params.size();
  float* v = velocity_.data();
  for (size_t i = 0; i < n; ++i) {
    v[i] = momentum_ * v[i] + (grads[i] + weight_decay_ * params[i]);
    params[i] -= lr_ * v[i];
  }
}

}  // namespace silk::training
