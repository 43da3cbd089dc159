// Cutting `count` elements into `parts` balanced, contiguous ranges (the ring's
// segments), describing each rank's block of a buffer, and cutting a range
// into pipeline chunks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace silk::algorithms {

struct Range {
  size_t begin = 0;
  size_t count = 0;
  size_t end() const { return begin + count; }
};

// Part i of `count` cut into `parts`: the first count % parts parts get one more.
inline Range Part(size_t count, size_t parts, size_t i) {
  size_t base = count / parts, extra = count % parts;
  return Range{i * base + std::min(i, extra), base + (i < extra ? 1 : 0)};
}

// Chunk c of a range cut into pieces of `chunk` elements (the last may be short or empty).
inline Range Chunk(Range range, size_t chunk, size_t c) {
  size_t begin = std::min(range.count, c * chunk);
  size_t end = std::min(range.count, begin + chunk);
  return Range{range.begin + begin, end - begin};
}

inline size_t ChunksFor(size_t elements, size_t chunk) { return elements == 0 ? 0 : (elements + chunk - 1) / chunk; }

// Pipeline chunk in elements for a block of `elements`: about `chunk_bytes`,
// but at least one element, and coarse enough that a block never needs more
// than 2^16 chunks (message numbers are 32 bits wide).
inline size_t ChunkElements(size_t chunk_bytes, size_t element_size, size_t elements) {
  constexpr size_t kMaxChunks = size_t{1} << 16;
  return std::max({size_t{1}, chunk_bytes / element_size, (elements + kMaxChunks - 1) / kMaxChunks});
}

// One element range per rank, contiguous and in rank order.
using Blocks = std::vector<Range>;

// `count` elements cut as evenly as possible (all-reduce segments).
inline Blocks BalancedBlocks(size_t count, size_t parts) {
  Blocks blocks(parts);
  for (size_t i = 0; i < parts; ++i) blocks[i] = Part(count, parts, i);
  return blocks;
}

// `parts` blocks of `count` elements each (reduce-scatter, all-gather).
inline Blocks EqualBlocks(size_t count, size_t parts) {
  Blocks blocks(parts);
  for (size_t i = 0; i < parts; ++i) blocks[i] = Range{i * count, count};
  return blocks;
}

// Blocks of the given sizes back to back (all-gatherv).
inline Blocks BlocksFromCounts(const std::vector<size_t>& counts) {
  Blocks blocks(counts.size());
  size_t begin = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    blocks[i] = Range{begin, counts[i]};
    begin += counts[i];
  }
  return blocks;
}

// The range covering blocks [first, last).
inline Range Cover(const Blocks& blocks, size_t first, size_t last) {
  if (first >= last) return Range{blocks.empty() ? 0 : blocks[std::min(first, blocks.size() - 1)].begin, 0};
  return Range{blocks[first].begin, blocks[last - 1].end() - blocks[first].begin};
}

inline size_t LargestBlock(const Blocks& blocks) {
  size_t largest = 0;
  for (const Range& b : blocks) largest = std::max(largest, b.count);
  return largest;
}

}  // namespace silk::algorithms
