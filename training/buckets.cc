#include "training/buckets.h"

namespace silk::training {

BucketLayout AssignBuckets(const std::vector<size_t>& param_counts, size_t first_bucket_bytes, size_t bucket_bytes) {
  BucketLayout layout;
  const int n = static_cast<int>(param_counts.size());
  layout.bucket_of_param.assign(n, -1);
  layout.param_offset.assign(n, 0);
  Bucket current;
  size_t offset = 0;
  auto budget = [&] { return (layout.buckets.empty() ? first_bucket_bytes : bucket_bytes) / sizeof(float); };
  for (int i = n - 1; i >= 0; --i) {  // backward order
    if (current.params.empty()) current.offset = offset;
    layout.param_offset[i] = offset;
    layout.bucket_of_param[i] = static_cast<int>(layout.buckets.size());
    current.params.push_back(i);
    current.count += param_counts[i];
    offset += param_counts[i];
    if (current.count >= budget() || i == 0) {
      layout.buckets.push_back(std::move(current));
      current = Bucket();
    }
  }
  layout.total = offset;
  return layout;
}

}  // namespace silk::training
