#include "examples/train/mlp.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace silk::examples {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A standard normal from two 53-bit uniforms (Box-Muller).
float Gaussian(uint64_t a, uint64_t b) {
  double u1 = ((SplitMix(a) >> 11) + 1.0) / 9007199254740993.0;
  double u2 = (SplitMix(b) >> 11) / 9007199254740992.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace

SyntheticData::SyntheticData(int features, int classes, uint64_t seed, float noise)
    : features_(features), classes_(classes), seed_(seed), noise_(noise), centres_(size_t(features) * classes) {
  for (size_t i = 0; i < centres_.size(); ++i) centres_[i] = 0.5f * Gaussian(seed * 7919 + 2 * i, seed * 7919 + 2 * i + 1);
}

int SyntheticData::Sample(uint64_t index, float* x) const {
  const uint64_t h = SplitMix(seed_ ^ SplitMix(index));
  const int label = static_cast<int>(h % classes_);
  const float* c = centres_.data() + size_t(label) * features_;
  // Unit variance per feature (centres have variance 0.25), as He initialisation assumes.
  const float scale = 1.0f / std::sqrt(0.25f + noise_ * noise_);
  for (int j = 0; j < features_; ++j) {
    x[j] = scale * (c[j] + noise_ * Gaussian(h + 2 * j + 1, h ^ (0x5bd1e995ULL * (j + 1))));
  }
  return label;
}

Mlp::Mlp(std::vector<int> layer_sizes) : sizes_(std::move(layer_sizes)) {}

std::vector<size_t> Mlp::ParamCounts() const {
  std::vector<size_t> counts;
  for (size_t l = 0; l + 1 < sizes_.size(); ++l) {
    counts.push_back(size_t(sizes_[l]) * sizes_[l + 1]);  // W_l: [in x out], row-major
    counts.push_back(size_t(sizes_[l + 1]));              // b_l
  }
  return counts;
}

void Mlp::Init(uint64_t seed, const std::vector<float*>& params) const {
  for (size_t l = 0; l + 1 < sizes_.size(); ++l) {
    const size_t n = size_t(sizes_[l]) * sizes_[l + 1];
    // He initialisation; the output layer 10x smaller, so that training starts near log(classes).
    const float scale = std::sqrt(2.0f / sizes_[l]) * (l + 2 == sizes_.size() ? 0.1f : 1.0f);
    for (size_t i = 0; i < n; ++i) params[2 * l][i] = scale * Gaussian(seed * 104729 + l * 1000003 + 2 * i, seed + 2 * i + 1 + l);
    std::fill(params[2 * l + 1], params[2 * l + 1] + sizes_[l + 1], 0.0f);
  }
}

float Mlp::Forward(const std::vector<float*>& params, const float* x, const int* labels, int batch) {
  const int layers = static_cast<int>(sizes_.size()) - 1;
  acts_.resize(layers);
  const float* in = x;
  for (int l = 0; l < layers; ++l) {
    const int n_in = sizes_[l], n_out = sizes_[l + 1];
    std::vector<float>& out = acts_[l];
    out.resize(size_t(batch) * n_out);
    for (int r = 0; r < batch; ++r) std::copy(params[2 * l + 1], params[2 * l + 1] + n_out, out.data() + size_t(r) * n_out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, n_out, n_in, 1.0f, in, n_in, params[2 * l], n_out, 1.0f,
                out.data(), n_out);
    if (l + 1 < layers) {
      for (float& v : out) v = v > 0.0f ? v : 0.0f;
    }
    in = out.data();
  }
  // Softmax in place, cross-entropy.
  const int classes = sizes_.back();
  std::vector<float>& p = acts_.back();
  double loss = 0;
  for (int r = 0; r < batch; ++r) {
    float* row = p.data() + size_t(r) * classes;
    const float m = *std::max_element(row, row + classes);
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += (row[c] = std::exp(row[c] - m));
    for (int c = 0; c < classes; ++c) row[c] = static_cast<float>(row[c] / sum);
    loss -= std::log(std::max(row[labels[r]], 1e-30f));
  }
  return static_cast<float>(loss / batch);
}

double Mlp::Accuracy(const int* labels, int batch) const {
  const int classes = sizes_.back();
  int right = 0;
  for (int r = 0; r < batch; ++r) {
    const float* row = acts_.back().data() + size_t(r) * classes;
    right += (std::max_element(row, row + classes) - row) == labels[r];
  }
  return batch ? double(right) / batch : 0.0;
}

void Mlp::Backward(const std::vector<float*>& params, const std::vector<float*>& grads, const float* x, const int* labels,
                   int batch, const std::function<void(int)>& ready) {
  const int layers = static_cast<int>(sizes_.size()) - 1;
  const int classes = sizes_.back();
  // dL/dlogits = (p - onehot) / batch
  delta_.assign(acts_.back().begin(), acts_.back().end());
  for (int r = 0; r < batch; ++r) delta_[size_t(r) * classes + labels[r]] -= 1.0f;
  for (float& v : delta_) v /= batch;
  for (int l = layers - 1; l >= 0; --l) {
    const int n_in = sizes_[l], n_out = sizes_[l + 1];
    const float* in = l == 0 ? x : acts_[l - 1].data();
    // db = column sums of delta
    float* db = grads[2 * l + 1];
    std::fill(db, db + n_out, 0.0f);
    for (int r = 0; r < batch; ++r) {
      const float* d = delta_.data() + size_t(r) * n_out;
      for (int c = 0; c < n_out; ++c) db[c] += d[c];
    }
    ready(2 * l + 1);
    // dW = in^T delta: [n_in x n_out]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_in, n_out, batch, 1.0f, in, n_in, delta_.data(), n_out, 0.0f,
                grads[2 * l], n_out);
    ready(2 * l);
    if (l == 0) break;
    // delta_prev = (delta W^T) * relu'(in)
    delta_next_.resize(size_t(batch) * n_in);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n_in, n_out, 1.0f, delta_.data(), n_out, params[2 * l], n_out,
                0.0f, delta_next_.data(), n_in);
    for (size_t i = 0; i < delta_next_.size(); ++i) {
      if (in[i] <= 0.0f) delta_next_[i] = 0.0f;
    }
    delta_.swap(delta_next_);
  }
}

}  // namespace silk::examples
