#include "training/compression.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_format.h"

namespace silk::training {
namespace {

// The code of `x` in a group of this scale; 0 when the group is all zeros.
int Code(float x, float scale, int qmax) {
  if (scale == 0.0f) return 0;
  const float q = std::nearbyint(x / scale);  // the default rounding mode: half to even
  if (!(q >= -qmax)) return -qmax;            // also NaN, which a finite scale cannot produce
  return q > qmax ? qmax : static_cast<int>(q);
}

}  // namespace

absl::StatusOr<Compression> ParseCompression(absl::string_view name) {
  if (name == "none") return Compression::kNone;
  if (name == "int8") return Compression::kInt8;
  if (name == "int4") return Compression::kInt4;
  return absl::InvalidArgumentError(absl::StrFormat("unknown compression '%s' (none, int8, int4)", name));
}

const char* CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone: return "none";
    case Compression::kInt8: return "int8";
    case Compression::kInt4: return "int4";
  }
  return "?";
}

BlockQuantizer::BlockQuantizer(Compression compression)
    : compression_(compression), qmax_(compression == Compression::kInt8 ? 127 : 7) {}

size_t BlockQuantizer::EncodedBytes(size_t count) const {
  if (compression_ == Compression::kNone) return count * sizeof(float);
  const size_t groups = (count + kGroup - 1) / kGroup;
  // int4: whole bytes per group (kGroup is even; a short last group may pad a nibble).
  const size_t codes = compression_ == Compression::kInt8 ? count : (count / kGroup) * (kGroup / 2) + (count % kGroup + 1) / 2;
  return groups * sizeof(float) + codes;
}

double BlockQuantizer::BitsPerValue() const {
  if (compression_ == Compression::kNone) return 32;
  return (compression_ == Compression::kInt8 ? 8.0 : 4.0) + 32.0 / kGroup;
}

void BlockQuantizer::Encode(const float* values, size_t count, uint8_t* out) const {
  if (compression_ == Compression::kNone) {
    if (count > 0) std::memcpy(out, values, count * sizeof(float));
    return;
  }
  for (size_t begin = 0; begin < count; begin += kGroup) {
    const size_t n = std::min(kGroup, count - begin);
    const float* x = values + begin;
    float absmax = 0.0f;
    for (size_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(x[i]));
    const float scale = absmax / static_cast<float>(qmax_);
    std::memcpy(out, &scale, sizeof(scale));
    out += sizeof(scale);
    if (compression_ == Compression::kInt8) {
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(static_cast<int8_t>(Code(x[i], scale, qmax_)));
      out += n;
      continue;
    }
    for (size_t i = 0; i < n; i += 2) {
      const int lo = Code(x[i], scale, qmax_);
      const int hi = i + 1 < n ? Code(x[i + 1], scale, qmax_) : 0;
      *out++ = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
    }
  }
}

void BlockQuantizer::Decode(const uint8_t* in, size_t count, float* out) const {
  if (compression_ == Compression::kNone) {
    if (count > 0) std::memcpy(out, in, count * sizeof(float));
    return;
  }
  for (size_t begin = 0; begin < count; begin += kGroup) {
    const size_t n = std::min(kGroup, count - begin);
    float scale;
    std::memcpy(&scale, in, sizeof(scale));
    in += sizeof(scale);
    float* y = out + begin;
    if (compression_ == Compression::kInt8) {
      for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int8_t>(in[i])) * scale;
      in += n;
      continue;
    }
    for (size_t i = 0; i < n; i += 2) {
      const uint8_t byte = *in++;
      const int lo = static_cast<int8_t>(static_cast<uint8_t>(byte << 4)) >> 4;  // sign-extend the low nibble
      y[i] = static_cast<float>(lo) * scale;
      if (i + 1 < n) y[i + 1] = static_cast<float>(static_cast<int8_t>(byte) >> 4) * scale;
    }
  }
}

}  // namespace silk::training
