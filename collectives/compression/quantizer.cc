#include "collectives/compression/quantizer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"
#include "collectives/compression/quantizer_simd.h"
#include "collectives/kernels/float16.h"
#include "collectives/kernels/reduce.h"

namespace silk {
namespace {

// Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to
// an integer, ties to even (the default rounding mode), in plain SSE2 where
// std::nearbyint would be a call per value.
constexpr float kRoundMagic = 12582912.0f;

// A programming error, as in the reduction kernels: abort with the reason.
void Require(bool ok, const char* what, size_t value) {
  if (ok) return;
  std::fprintf(stderr, "silk::BlockQuantizer: %s (%zu)\n", what, value);
  std::abort();
}

// A group's scale as its codes use it (int8, int4, topk). Only the owner
// encodes, so a reciprocal (one rounding more, clamped) is as deterministic as
// needed; a subnormal scale divides, for accuracy.
struct ScaleCoder {
  ScaleCoder(float scale, int qmax)
      : scale(scale), normal(scale >= FLT_MIN), inverse(normal ? 1.0f / scale : 0.0f), qmax(static_cast<float>(qmax)) {}
  // round(x / scale) clamped to [-qmax, qmax], ties to even.
  int8_t Code(float x) const {
    const float v = std::clamp(normal ? x * inverse : x / scale, -qmax, qmax);
    return static_cast<int8_t>((v + kRoundMagic) - kRoundMagic);
  }
  float scale;
  bool normal;
  float inverse, qmax;
};

// Values topk keeps of a group of n.
size_t TopKOf(size_t n) { return (n + BlockQuantizer::kTopKStride - 1) / BlockQuantizer::kTopKStride; }

// The AVX2 group loops (quantizer_simd.h): whole int8/int4 groups of a
// multiple of 64 values, where the kernels found AVX2 on this CPU and are not
// forced to scalar.
bool UseAvx2(size_t n) {
  return n % 64 == 0 && kernels::IsKernelPathAvailable(kernels::KernelPath::kAvx2) &&
         kernels::ActiveKernelPath() != kernels::KernelPath::kScalar;
}

}  // namespace

absl::StatusOr<Compression> ParseCompression(absl::string_view name) {
  if (name == "none") return Compression::kNone;
  if (name == "bf16") return Compression::kBf16;
  if (name == "int8") return Compression::kInt8;
  if (name == "int4") return Compression::kInt4;
  if (name == "topk") return Compression::kTopK;
  return absl::InvalidArgumentError(absl::StrFormat("unknown compression '%s' (none, bf16, int8, int4, topk)", name));
}

const char* CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone: return "none";
    case Compression::kBf16: return "bf16";
    case Compression::kInt8: return "int8";
    case Compression::kInt4: return "int4";
    case Compression::kTopK: return "topk";
  }
  return "?";
}

BlockQuantizer::BlockQuantizer(Compression compression, size_t group)
    : compression_(compression), group_(group), qmax_(compression == Compression::kInt4 ? 7 : 127) {
  Require(group >= 2 && group <= kMaxGroup && group % 2 == 0, "group must be even, 2..4096", group);
  Require(compression != Compression::kTopK || group <= kMaxTopKGroup, "topk groups hold at most 256 values", group);
}

size_t BlockQuantizer::RecordBytes(size_t n) const {
  switch (compression_) {
    case Compression::kNone: return n * sizeof(float);
    case Compression::kBf16: return n * 2;
    case Compression::kInt8: return sizeof(float) + n;
    case Compression::kInt4: return sizeof(float) + (n + 1) / 2;  // a short last group may pad a nibble
    case Compression::kTopK: return sizeof(float) + 2 * TopKOf(n);  // an index and a code per kept value
  }
  return 0;
}

size_t BlockQuantizer::EncodedBytes(size_t count) const {
  return (count / group_) * RecordBytes(group_) + (count % group_ > 0 ? RecordBytes(count % group_) : 0);
}

double BlockQuantizer::BitsPerValue() const {
  switch (compression_) {
    case Compression::kNone: return 32;
    case Compression::kBf16: return 16;
    case Compression::kInt8: return 8.0 + 32.0 / group_;
    case Compression::kInt4: return 4.0 + 32.0 / group_;
    case Compression::kTopK: return (32.0 + 16.0 * TopKOf(group_)) / group_;
  }
  return 0;
}

void BlockQuantizer::QuantizeGroup(float* x, float* residual, size_t n, uint8_t* out) const {
  if (compression_ == Compression::kTopK) {
    QuantizeTopKGroup(x, residual, n, out);
    return;
  }
  // int8/int4 add the residual in their first pass (below).
  if (residual != nullptr && (compression_ == Compression::kNone || compression_ == Compression::kBf16)) {
    for (size_t i = 0; i < n; ++i) x[i] += residual[i];
  }
  if (compression_ == Compression::kNone) {
    std::memcpy(out, x, n * sizeof(float));
    if (residual != nullptr) std::fill(residual, residual + n, 0.0f);
    return;
  }
  if (compression_ == Compression::kBf16) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t bits = FloatToBFloat16Bits(x[i]);
      std::memcpy(out + 2 * i, &bits, 2);
      const float decoded = BFloat16BitsToFloat(bits);
      // Nothing is carried from a value that is or became infinite.
      if (residual != nullptr) residual[i] = std::isfinite(x[i] - decoded) ? x[i] - decoded : 0.0f;
      x[i] = decoded;
    }
    return;
  }
  const bool simd = UseAvx2(n);
  float absmax = 0.0f;
  bool finite = true;
  if (simd) {
    // The same values as the loop below, for a group without NaN; with one,
    // the scale is NaN whatever absmax holds.
    const uint32_t bits = compression_internal::AddResidualAbsMaxBitsAvx2(x, residual, n);
    finite = bits <= 0x7f7fffffu;
    std::memcpy(&absmax, &bits, sizeof(absmax));
  } else {
    if (residual != nullptr) {
      for (size_t i = 0; i < n; ++i) x[i] += residual[i];
    }
    for (size_t i = 0; i < n; ++i) {
      const float a = std::fabs(x[i]);
      finite &= a <= FLT_MAX;  // false for NaN as for Inf
      absmax = std::max(absmax, a);
    }
  }
  const float scale = finite ? absmax / static_cast<float>(qmax_) : std::numeric_limits<float>::quiet_NaN();
  std::memcpy(out, &scale, sizeof(scale));
  out += sizeof(scale);
  int8_t codes[kMaxGroup];
  if (!finite || scale == 0.0f) {
    std::fill(codes, codes + n, int8_t{0});
    for (size_t i = 0; i < n; ++i) {
      const float decoded = 0.0f * scale;  // NaN for a group that was not finite
      if (residual != nullptr) residual[i] = finite ? x[i] : 0.0f;
      x[i] = decoded;
    }
  } else {
    const ScaleCoder coder(scale, qmax_);
    if (simd && coder.normal) {
      compression_internal::QuantizeCodesAvx2(x, residual, n, scale, coder.inverse, qmax_,
                                              compression_ == Compression::kInt4, out);
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      codes[i] = coder.Code(x[i]);
      const float decoded = static_cast<float>(codes[i]) * scale;
      if (residual != nullptr) residual[i] = x[i] - decoded;
      x[i] = decoded;
    }
  }
  if (compression_ == Compression::kInt8) {
    std::memcpy(out, codes, n);
    return;
  }
  for (size_t i = 0; i + 1 < n; i += 2) {
    out[i / 2] = static_cast<uint8_t>((codes[i] & 0x0f) | ((codes[i + 1] & 0x0f) << 4));
  }
  if (n % 2 == 1) out[n / 2] = static_cast<uint8_t>(codes[n - 1] & 0x0f);
}

void BlockQuantizer::QuantizeTopKGroup(float* x, float* residual, size_t n, uint8_t* out) const {
  // The k largest |x|, ranked by the bits of |x| (which order as |x| does,
  // NaN above Inf above every finite value), largest first; a later value
  // displaces a kept one only if strictly larger, so ties keep the earlier.
  constexpr size_t kMaxKept = kMaxTopKGroup / kTopKStride;
  const size_t k = std::min(TopKOf(n), kMaxKept);  // n <= kMaxTopKGroup (the constructor checks)
  uint32_t key[kMaxKept] = {};
  uint8_t index[kMaxKept] = {};
  uint32_t abs_bits[kMaxTopKGroup];
  // Each of the k strides holds a value at least as large as the smallest of
  // their maxima, so nothing below that can be among the k largest: only the
  // few values at or above it take the ranking below.
  uint32_t floor = ~0u, largest = 0;
  for (size_t begin = 0; begin < n; begin += kTopKStride) {
    const size_t end = std::min(n, begin + kTopKStride);
    if (residual != nullptr) {
      for (size_t i = begin; i < end; ++i) x[i] += residual[i];
    }
    uint32_t m = 0;
    for (size_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &x[i], sizeof(bits));
      abs_bits[i] = bits & 0x7fffffffu;
      m = std::max(m, abs_bits[i]);
    }
    floor = std::min(floor, m);
    largest = std::max(largest, m);
  }
  const bool finite = largest <= 0x7f7fffffu;
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = abs_bits[i];
    if (bits < floor || (kept == k && bits <= key[k - 1])) continue;
    size_t j = kept < k ? kept++ : k - 1;
    for (; j > 0 && key[j - 1] < bits; --j) {
      key[j] = key[j - 1];
      index[j] = index[j - 1];
    }
    key[j] = bits;
    index[j] = static_cast<uint8_t>(i);
  }
  float absmax;
  std::memcpy(&absmax, &key[0], sizeof(absmax));
  const float scale = finite ? absmax / static_cast<float>(qmax_) : std::numeric_limits<float>::quiet_NaN();
  // The record lists them in order (an insertion sort: k is at most 8).
  for (size_t a = 1; a < kept; ++a) {
    for (size_t b = a; b > 0 && index[b - 1] > index[b]; --b) std::swap(index[b - 1], index[b]);
  }
  float value[kMaxKept];
  for (size_t j = 0; j < kept; ++j) value[j] = x[index[j]];
  // Everything not kept decodes to 0 (NaN in a group that was not finite) and is carried whole.
  if (residual != nullptr && finite) std::memcpy(residual, x, n * sizeof(float));
  if (residual != nullptr && !finite) std::fill(residual, residual + n, 0.0f);
  std::fill(x, x + n, 0.0f * scale);
  std::memcpy(out, &scale, sizeof(scale));
  uint8_t* codes = out + sizeof(scale) + kept;
  std::memcpy(out + sizeof(scale), index, kept);
  const bool coded = finite && scale != 0.0f;
  const ScaleCoder coder(scale, qmax_);
  for (size_t j = 0; j < kept; ++j) {
    if (!coded) {
      codes[j] = 0;
      continue;
    }
    const int8_t code = coder.Code(value[j]);
    codes[j] = static_cast<uint8_t>(code);
    const float decoded = static_cast<float>(code) * scale;
    if (residual != nullptr) residual[index[j]] = value[j] - decoded;
    x[index[j]] = decoded;
  }
}

void BlockQuantizer::DecodeGroup(const uint8_t* in, size_t n, float* y) const {
  switch (compression_) {
    case Compression::kNone: std::memcpy(y, in, n * sizeof(float)); return;
    case Compression::kBf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, in + 2 * i, 2);
        y[i] = BFloat16BitsToFloat(bits);
      }
      return;
    default: break;
  }
  float scale;
  std::memcpy(&scale, in, sizeof(scale));
  in += sizeof(scale);
  if (compression_ == Compression::kTopK) {
    const size_t k = TopKOf(n);
    std::fill(y, y + n, 0.0f * scale);
    // An index past a short group's end can only come from a damaged code: it writes nothing.
    for (size_t j = 0; j < k; ++j) {
      if (in[j] < n) y[in[j]] = static_cast<float>(static_cast<int8_t>(in[k + j])) * scale;
    }
    return;
  }
  if (UseAvx2(n)) {
    compression_internal::DecodeCodesAvx2(in, n, scale, compression_ == Compression::kInt4, y);
    return;
  }
  if (compression_ == Compression::kInt8) {
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int8_t>(in[i])) * scale;
    return;
  }
  for (size_t i = 0; i + 1 < n; i += 2) {
    const uint8_t byte = in[i / 2];
    y[i] = static_cast<float>(static_cast<int8_t>(static_cast<uint8_t>(byte << 4)) >> 4) * scale;  // low nibble
    y[i + 1] = static_cast<float>(static_cast<int8_t>(byte) >> 4) * scale;
  }
  if (n % 2 == 1) y[n - 1] = static_cast<float>(static_cast<int8_t>(static_cast<uint8_t>(in[n / 2] << 4)) >> 4) * scale;
}

void BlockQuantizer::Quantize(float* values, float* residual, size_t count, uint8_t* out) const {
  for (size_t begin = 0; begin < count; begin += group_) {
    const size_t n = std::min(group_, count - begin);
    QuantizeGroup(values + begin, residual != nullptr ? residual + begin : nullptr, n, out);
    out += RecordBytes(n);
  }
}

void BlockQuantizer::Encode(const float* values, size_t count, uint8_t* out) const {
  float copy[kMaxGroup];
  for (size_t begin = 0; begin < count; begin += group_) {
    const size_t n = std::min(group_, count - begin);
    std::memcpy(copy, values + begin, n * sizeof(float));
    QuantizeGroup(copy, nullptr, n, out);
    out += RecordBytes(n);
  }
}

void BlockQuantizer::Decode(const uint8_t* in, size_t count, float* out) const {
  for (size_t begin = 0; begin < count; begin += group_) {
    const size_t n = std::min(group_, count - begin);
    DecodeGroup(in, n, out + begin);
    in += RecordBytes(n);
  }
}

void BlockQuantizer::DecodeRange(const uint8_t* in, size_t count, size_t skip, size_t take, float* out) const {
  Require(skip + take <= count, "DecodeRange past the end of the code", skip + take);
  float group[kMaxGroup];
  const size_t first = skip / group_;
  in += GroupOffset(first);
  for (size_t begin = first * group_; begin < skip + take; begin += group_) {
    const size_t n = std::min(group_, count - begin);
    const size_t from = std::max(begin, skip), to = std::min(begin + n, skip + take);
    if (from == begin && to == begin + n) {
      DecodeGroup(in, n, out + (begin - skip));  // a whole group: straight into place
    } else {
      DecodeGroup(in, n, group);
      std::memcpy(out + (from - skip), group + (from - begin), (to - from) * sizeof(float));
    }
    in += RecordBytes(n);
  }
}

}  // namespace silk
