// Lossy wire codes for float32: what the compressed all-reduce sends across
// the WAN (AllreduceOptions::wan_compression) and what DiLoCo's
// pseudo-gradients cross regions in (training/compression.h).
//
//   bf16  each value rounded to bfloat16 (nearest, ties to even): 2 bytes.
//   int8  blockwise absmax: each group of `group` values is sent as its float32
//   int4  scale (absmax / qmax, qmax 127 or 7) followed by the codes
//         round(x / scale) clamped to [-qmax, qmax] (ties to even); int4 packs
//         two codes per byte, the first in the low nibble. A value decodes to
//         code * scale: the error is at most half a step (scale / 2) of its
//         group, a little more where the scale is subnormal.
//   topk  sparse: of each group only its k = ceil(n / 32) values of largest
//         magnitude (ties: the earlier), as int8 codes against the group's
//         scale (absmax / 127), each with its index in the group (one byte:
//         groups of at most 256); the rest decode to 0. About 1/51 of float32's
//         bytes in groups of 256. Meant for use with error feedback: what a
//         group drops is carried to the next call, where it competes again.
//
// Groups are records of fixed size (a short last group keeps its own, shorter
// record), so any run of whole groups is one contiguous span of the code:
// GroupOffset() gives where group g starts.
//
// Defined behaviour at the edges: a group of zeros has scale 0 and decodes to
// zeros; subnormal values are coded like any others (the scale may be
// subnormal); a group holding NaN or +-Inf is sent with a NaN scale and decodes
// to NaN in every element (int8/int4), while bf16 keeps Inf and NaN per value.
// Encoding happens once, on the value's owner; decoding is a single IEEE
// multiply (or a widening), so every rank that decodes the same bytes gets the
// same floats, and Quantize leaves in its input exactly what Decode gives.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace silk {

// How values cross the slow link. The numbering is part of the wire format
// (the all-reduce's descriptor carries it) and of the C API's mapping.
enum class Compression : uint8_t { kNone = 0, kBf16 = 1, kInt8 = 2, kInt4 = 3, kTopK = 4 };

// "none", "bf16", "int8", "int4", "topk".
absl::StatusOr<Compression> ParseCompression(absl::string_view name);
const char* CompressionName(Compression compression);

class BlockQuantizer {
 public:
  static constexpr size_t kDefaultGroup = 128;
  static constexpr size_t kMaxGroup = 4096;

  // topk: one value kept in each kTopKStride (rounded up) of a group.
  static constexpr size_t kTopKStride = 32;
  static constexpr size_t kMaxTopKGroup = 256;

  // `group`: values per scale (int8/int4/topk), even, 2..kMaxGroup (topk: ..kMaxTopKGroup).
  explicit BlockQuantizer(Compression compression, size_t group = kDefaultGroup);

  Compression compression() const { return compression_; }
  size_t group() const { return group_; }
  // Encoded size of `count` values; with kNone, the float32 bytes themselves.
  size_t EncodedBytes(size_t count) const;
  // Where group g's record starts in the code of any count > g * group().
  size_t GroupOffset(size_t g) const { return EncodedBytes(g * group_); }
  // Compressed bits per value, scales included (e.g. 4.25 for int4 in groups of 128).
  double BitsPerValue() const;

  void Encode(const float* values, size_t count, uint8_t* out) const;
  void Decode(const uint8_t* in, size_t count, float* out) const;
  // Decodes the code of `count` values (starting at a group boundary) but
  // writes only values [skip, skip + take) to out[0, take).
  void DecodeRange(const uint8_t* in, size_t count, size_t skip, size_t take, float* out) const;

  // Encode with error feedback: codes values[i] + residual[i] (residual may be
  // null: zero), then leaves in values[i] the decoded value and in residual[i]
  // what was lost (the next call's carry; 0 where the group was not finite).
  void Quantize(float* values, float* residual, size_t count, uint8_t* out) const;

 private:
  size_t RecordBytes(size_t n) const;  // the record of one group of n values
  void QuantizeGroup(float* x, float* residual, size_t n, uint8_t* out) const;
  void QuantizeTopKGroup(float* x, float* residual, size_t n, uint8_t* out) const;
  void DecodeGroup(const uint8_t* in, size_t n, float* y) const;

  Compression compression_;
  size_t group_;
  int qmax_;
};

}  // namespace silk
