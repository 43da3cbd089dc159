#include "collectives/algorithms/wan_codec.h"

#include <algorithm>

namespace silk::algorithms {

WanCodec::Span WanCodec::Covering(Range sender, Range overlap) const {
  const size_t g = quantizer_.group();
  const size_t first = (overlap.begin - sender.begin) / g;
  const size_t end_elem = std::min(sender.count, (overlap.end() - sender.begin + g - 1) / g * g);
  const size_t begin_byte = quantizer_.GroupOffset(first);
  return Span{begin_byte, quantizer_.EncodedBytes(end_elem) - begin_byte};
}

void WanCodec::DecodeOverlap(const uint8_t* span, Range sender, Range overlap, float* dst) const {
  const size_t g = quantizer_.group();
  const size_t first_elem = (overlap.begin - sender.begin) / g * g;
  const size_t end_elem = std::min(sender.count, (overlap.end() - sender.begin + g - 1) / g * g);
  // The span starts at a group boundary: decode it as a code of its own.
  quantizer_.DecodeRange(span, end_elem - first_elem, overlap.begin - sender.begin - first_elem, overlap.count, dst);
}

}  // namespace silk::algorithms
