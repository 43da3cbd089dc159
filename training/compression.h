// Lossy codes for DiLoCo's pseudo-gradients, which cross the WAN only every H
// steps and tolerate coarse quantization (Streaming DiLoCo sends 4 bits): the
// collective layer's blockwise quantizer (collectives/compression/quantizer.h,
// which the compressed all-reduce uses too), in groups of 128 values.
//
// Each group of kGroup values is sent as its float32 scale (absmax / qmax)
// followed by the codes, round(x / scale) clamped to [-qmax, qmax], rounding
// half to even; int4 packs two codes per byte, the first in the low nibble;
// bf16 rounds each value. Encoding and decoding are deterministic, so every
// rank that encodes the same values produces the same bytes, and every rank
// that decodes them the same floats. The caller keeps the rounding error and
// adds it to the next values it encodes (error feedback), so nothing is lost
// for good.
#pragma once

#include <cstddef>

#include "collectives/compression/quantizer.h"

namespace silk::training {

using silk::Compression;
using silk::CompressionName;
using silk::ParseCompression;  // "none", "bf16", "int8", "int4", "topk"

class BlockQuantizer : public silk::BlockQuantizer {
 public:
  static constexpr size_t kGroup = 128;
  explicit BlockQuantizer(Compression compression) : silk::BlockQuantizer(compression, kGroup) {}
};

}  // namespace silk::training
