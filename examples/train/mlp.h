// A multi-layer perceptron (ReLU hidden layers, softmax cross-entropy) with
// hand-written forward and backward passes through OpenBLAS, and a
// deterministic synthetic classification data set.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace silk::examples {

// Gaussian clusters: class c's samples are centre_c + noise. Sample i is the
// same on every rank and every run (a pure function of seed and i).
class SyntheticData {
 public:
  SyntheticData(int features, int classes, uint64_t seed, float noise);
  // Writes sample `index`'s features into x[0..features) and returns its label.
  int Sample(uint64_t index, float* x) const;
  int features() const { return features_; }
  int classes() const { return classes_; }

 private:
  int features_, classes_;
  uint64_t seed_;
  float noise_;
  std::vector<float> centres_;
};

class Mlp {
 public:
  // layer_sizes: input, hidden..., classes. Parameters are W0, b0, W1, b1, ...
  explicit Mlp(std::vector<int> layer_sizes);
  // Element counts of the parameters, in registration (forward) order.
  std::vector<size_t> ParamCounts() const;
  // He initialisation from `seed` into the parameters.
  void Init(uint64_t seed, const std::vector<float*>& params) const;

  // Forward on a batch (rows of x), returns the mean cross-entropy.
  float Forward(const std::vector<float*>& params, const float* x, const int* labels, int batch);
  // Backward of the last Forward: writes every gradient (mean over the batch)
  // and calls ready(i) as soon as parameter i's gradient is final (last layer first).
  void Backward(const std::vector<float*>& params, const std::vector<float*>& grads, const float* x, const int* labels,
                int batch, const std::function<void(int)>& ready);
  // Accuracy of the last Forward.
  double Accuracy(const int* labels, int batch) const;
  int num_params() const { return 2 * (static_cast<int>(sizes_.size()) - 1); }

 private:
  std::vector<int> sizes_;
  std::vector<std::vector<float>> acts_;  // acts_[l]: output of layer l (post-ReLU; logits->probs at the end)
  std::vector<float> delta_, delta_next_;
};

}  // namespace silk::examples
