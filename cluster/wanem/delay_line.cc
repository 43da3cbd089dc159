#include "cluster/wanem/delay_line.h"

#include <algorithm>
#include <cstring>

namespace silk::cluster::wanem {

static constexpr size_t npos = ~size_t{0};

DelayLine::DelayLine(size_t initial_capacity_bytes, size_t max_capacity_bytes)
    : capacity_(std::max<size_t>(64, initial_capacity_bytes & ~size_t{7})),
      max_capacity_(std::max(capacity_, max_capacity_bytes)) {
  ring_.reset(new uint8_t[capacity_]);
}

size_t DelayLine::PlaceFor(size_t record_size) const {
  if (packets_ == 0) return record_size <= capacity_ ? 0 : npos;
  if (tail_ > head_) {  // free space: [tail_, capacity_) then [0, head_)
    if (capacity_ - tail_ >= record_size) return tail_;
    return head_ >= record_size ? 0 : npos;
  }
  return head_ - tail_ >= record_size ? tail_ : npos;  // free space: [tail_, head_)
}

bool DelayLine::Push(int64_t deliver_at_ns, absl::Span<const uint8_t> packet, uint32_t segments) {
  size_t record_size = RecordSize(packet.size());
  size_t offset = PlaceFor(record_size);
  if (offset == npos) {
    if (capacity_ >= max_capacity_ || record_size > max_capacity_) return false;
    Grow(record_size);
    offset = PlaceFor(record_size);
    if (offset == npos) return false;
  }
  if (packets_ == 0) head_ = offset;
  if (offset == 0 && tail_ != 0 && packets_ > 0 && capacity_ - tail_ >= sizeof(Header)) {
    Header wrap{0, kWrapMarker, 0};  // tells the reader to continue at 0
    std::memcpy(ring_.get() + tail_, &wrap, sizeof(wrap));
  }
  Header header{deliver_at_ns, static_cast<uint32_t>(packet.size()), segments};
  std::memcpy(ring_.get() + offset, &header, sizeof(header));
  if (!packet.empty()) std::memcpy(ring_.get() + offset + sizeof(Header), packet.data(), packet.size());
  tail_ = offset + record_size;
  ++packets_;
  payload_bytes_ += packet.size();
  record_bytes_ += record_size;
  return true;
}

int64_t DelayLine::FrontDeliverAt() const { return HeaderAt(head_)->deliver_at_ns; }

absl::Span<const uint8_t> DelayLine::Front() const {
  return {ring_.get() + head_ + sizeof(Header), HeaderAt(head_)->length};
}

uint32_t DelayLine::FrontSegments() const { return HeaderAt(head_)->segments; }

void DelayLine::Pop() {
  size_t length = HeaderAt(head_)->length;
  head_ += RecordSize(length);
  --packets_;
  payload_bytes_ -= length;
  record_bytes_ -= RecordSize(length);
  if (packets_ == 0) {
    head_ = tail_ = 0;
    return;
  }
  SkipWrap();
}

void DelayLine::SkipWrap() {
  if (capacity_ - head_ < sizeof(Header) || HeaderAt(head_)->length == kWrapMarker) head_ = 0;
}

void DelayLine::Grow(size_t needed) {
  size_t new_capacity = capacity_;
  while (new_capacity < max_capacity_ && new_capacity < 2 * (record_bytes_ + needed)) {
    new_capacity = std::min(max_capacity_, new_capacity * 2);
  }
  if (new_capacity == capacity_) return;
  std::unique_ptr<uint8_t[]> grown(new uint8_t[new_capacity]);
  size_t used = 0;  // records are laid out again in order from offset 0
  for (size_t left = packets_; left > 0; --left) {
    size_t record_size = RecordSize(HeaderAt(head_)->length);
    std::memcpy(grown.get() + used, ring_.get() + head_, record_size);
    used += record_size;
    head_ += record_size;
    if (left > 1) SkipWrap();
  }
  ring_ = std::move(grown);
  capacity_ = new_capacity;
  head_ = 0;
  tail_ = used;
}

void DelayLine::Clear() {
  head_ = tail_ = 0;
  packets_ = 0;
  payload_bytes_ = 0;
  record_bytes_ = 0;
}

}  // namespace silk::cluster::wanem
