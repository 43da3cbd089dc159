// SGD with momentum (PyTorch's definition) over a flat parameter arena:
//   v = momentum * v + (g + weight_decay * p);  p = p - lr * v
#pragma once

#include <cstddef>
#include <vector>

#include "absl/types/span.h"

namespace silk::training {

class SgdMomentum {
 public:
  SgdMomentum(size_t count, float lr, float momentum, float weight_decay = 0.0f)
      : lr_(lr), momentum_(momentum), weight_decay_(weight_decay), velocity_(count, 0.0f) {}

  // `params` and `grads` are elements [offset, offset + size) of the arena, so
  // that a range can be stepped as soon as its gradients are final (see
  // GradientSync::Finish). Mismatched or out-of-range spans abort.
  void Step(absl::Span<float> params, absl::Span<const float> grads, size_t offset = 0);
  void set_lr(float lr) { lr_ = lr; }
  // The momentum buffer: part of the training state an elastic job hands a restarted rank.
  absl::Span<float> velocity() { return absl::MakeSpan(velocity_); }

 private:
  float lr_, momentum_, weight_decay_;
  std::vector<float> velocity_;
};

}  // namespace silk::training
