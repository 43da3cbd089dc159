// Lossy codes for DiLoCo's pseudo-gradients, which cross the WAN only every H
// steps and tolerate coarse quantization (Streaming DiLoCo sends 4 bits):
// blockwise absmax quantization of float32 to int8 or int4 codes.
//
// Each group of kGroup values is sent as its float32 scale (absmax / qmax)
// followed by the codes, round(x / scale) clamped to [-qmax, qmax], rounding
// half to even; int4 packs two codes per byte, the first in the low nibble.
// Encoding and decoding are deterministic (plain IEEE arithmetic, no
// contraction into FMA under ISO C++), so every rank that encodes the same
// values produces the same bytes, and every rank that decodes them the same
// floats. The caller keeps the rounding error and adds it to the next values
// it encodes (error feedback), so nothing is lost for good.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace silk::training {

enum class Compression { kNone, kInt8, kInt4 };
absl::StatusOr<Compression> ParseCompression(absl::string_view name);  // "none", "int8", "int4"
const char* CompressionName(Compression compression);

class BlockQuantizer {
 public:
  static constexpr size_t kGroup = 128;

  explicit BlockQuantizer(Compression compression);

  // Encoded size of `count` values; with kNone, the float32 bytes themselves.
  size_t EncodedBytes(size_t count) const;
  // Compressed bits per value, scales included (e.g. 4.25 for int4): for reports.
  double BitsPerValue() const;

  void Encode(const float* values, size_t count, uint8_t* out) const;
  void Decode(const uint8_t* in, size_t count, float* out) const;

 private:
  Compression compression_;
  int qmax_;
};

}  // namespace silk::training
