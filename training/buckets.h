// Bucket assignment: parameters are grouped, in the order backward produces
// their gradients (reverse registration order), into buckets of about
// `bucket_bytes`, the first one smaller so that communication starts early.
// Each bucket is one contiguous range of the flat arena, so a bucket's
// all-reduce runs in place on the gradients themselves (no copy).
#pragma once

#include <cstddef>
#include <vector>

namespace silk::training {

struct Bucket {
  size_t offset = 0;        // first element in the arena
  size_t count = 0;         // elements
  std::vector<int> params;  // registration indices, in backward order
};

struct BucketLayout {
  std::vector<Bucket> buckets;       // in backward order: bucket 0 completes first
  std::vector<int> bucket_of_param;  // by registration index
  std::vector<size_t> param_offset;  // arena offset of each parameter, by registration index
  size_t total = 0;                  // elements in the arena
};

// `param_counts` in registration (forward) order. A parameter is never split; a
// bucket closes once it holds at least its byte budget (the first bucket's is
// `first_bucket_bytes`, later ones `bucket_bytes`). Empty parameters are allowed.
BucketLayout AssignBuckets(const std::vector<size_t>& param_counts, size_t first_bucket_bytes, size_t bucket_bytes);

}  // namespace silk::training
