// A FIFO of packets waiting for their delivery time, in one ring of bytes.
// Delivery times of one link direction never decrease (the link model keeps
// packets in order), so a FIFO is all the delay line needs. The ring grows by
// doubling up to a bound and never allocates per packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/types/span.h"

namespace silk::cluster::wanem {

class DelayLine {
 public:
  DelayLine(size_t initial_capacity_bytes, size_t max_capacity_bytes);

  // Appends a packet (a GSO buffer stands for `segments` wire packets); false
  // when the line is full at its maximum capacity.
  bool Push(int64_t deliver_at_ns, absl::Span<const uint8_t> packet, uint32_t segments = 1);

  bool empty() const { return packets_ == 0; }
  size_t packets() const { return packets_; }
  size_t payload_bytes() const { return payload_bytes_; }
  size_t capacity() const { return capacity_; }

  // The oldest packet and its delivery time; only when !empty().
  int64_t FrontDeliverAt() const;
  absl::Span<const uint8_t> Front() const;
  uint32_t FrontSegments() const;
  void Pop();

  void Clear();

 private:
  struct Header {
    int64_t deliver_at_ns;
    uint32_t length;  // kWrapMarker: the rest of the ring is unused, continue at 0
    uint32_t segments;
  };
  static constexpr uint32_t kWrapMarker = 0xffffffffu;
  static size_t RecordSize(size_t length) { return sizeof(Header) + ((length + 7) & ~size_t{7}); }

  // Offset where the next record to write goes, or npos when it does not fit.
  size_t PlaceFor(size_t record_size) const;
  void Grow(size_t needed);
  void SkipWrap();  // moves head_ past a wrap point
  const Header* HeaderAt(size_t offset) const { return reinterpret_cast<const Header*>(ring_.get() + offset); }

  std::unique_ptr<uint8_t[]> ring_;
  size_t capacity_;
  size_t max_capacity_;
  size_t head_ = 0;  // oldest record
  size_t tail_ = 0;  // where the next record is written
  size_t packets_ = 0;
  size_t payload_bytes_ = 0;
  size_t record_bytes_ = 0;  // headers and padding included
};

}  // namespace silk::cluster::wanem
