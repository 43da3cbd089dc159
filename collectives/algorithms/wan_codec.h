// The compressed WAN hop of the hierarchical all-reduce (wan_compression).
// Each rank quantises its block of its region's partial sums once, keeps the
// decoded values as its own partial (so it never adds its exact shard to the
// other regions' decoded ones), and sends each overlapping rank of another
// region the whole quantiser groups that cover their overlap; the receiver
// decodes those groups and keeps the overlap. Every rank so folds the same
// decoded values in the same region order: bit-identical results.
//
// Groups are counted from the start of the sender's block, so the sender and
// every receiver compute the same spans from the same layout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "collectives/algorithms/partition.h"
#include "collectives/compression/error_feedback.h"
#include "collectives/compression/quantizer.h"

namespace silk::algorithms {

// Values per scale on the WAN (int8/int4): 256 puts the scales at 1/64 of
// int4's bytes (S/8 + S/256 per direction) and 1/32 of int8's.
inline constexpr size_t kWanCompressionGroup = 256;

class WanCodec {
 public:
  WanCodec(Compression compression, ErrorFeedback* feedback)
      : quantizer_(compression, kWanCompressionGroup), feedback_(feedback) {}

  // Bytes of the code of `n` values.
  size_t EncodedBytes(size_t n) const { return quantizer_.EncodedBytes(n); }
  // Quantises `n` float32 values in place (left decoded) into `out`, adding
  // and updating the carried error at `residual` (null: none).
  void Encode(float* block, float* residual, size_t n, uint8_t* out) const {
    quantizer_.Quantize(block, residual, n, out);
  }

  // Where in the code of `sender` (a block, chunk-relative) lie the groups
  // that cover `overlap` (inside it).
  struct Span {
    size_t offset = 0, bytes = 0;
  };
  Span Covering(Range sender, Range overlap) const;
  // Decodes `overlap` from the span Covering(sender, overlap) into dst[0, overlap.count).
  void DecodeOverlap(const uint8_t* span, Range sender, Range overlap, float* dst) const;

  ErrorFeedback* feedback() const { return feedback_; }

 private:
  BlockQuantizer quantizer_;
  ErrorFeedback* feedback_;
};

}  // namespace silk::algorithms
