#include "runtime/transport/shm/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_format.h"

namespace silk::transport::shm {
namespace {

absl::Status Errno(const std::string& what) {
  int err = errno;
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::strerror(err)));
}

bool ValidRingBytes(uint64_t bytes) {
  return bytes >= kMinRingBytes && bytes <= kMaxRingBytes && (bytes & (bytes - 1)) == 0;
}

void CopyIntoRing(char* ring, uint64_t capacity, uint64_t position, const char* src, uint64_t bytes) {
  uint64_t offset = position & (capacity - 1);
  uint64_t first = std::min(bytes, capacity - offset);
  if (first > 0) std::memcpy(ring + offset, src, first);
  if (bytes > first) std::memcpy(ring, src + first, bytes - first);
}

void CopyOutOfRing(const char* ring, uint64_t capacity, uint64_t position, char* dest, uint64_t bytes) {
  uint64_t offset = position & (capacity - 1);
  uint64_t first = std::min(bytes, capacity - offset);
  if (first > 0) std::memcpy(dest, ring + offset, first);
  if (bytes > first) std::memcpy(dest + first, ring, bytes - first);
}

}  // namespace

// ---- Segment ----

absl::StatusOr<Segment> Segment::Create(const std::string& name, uint64_t ring_bytes) {
  if (!ValidRingBytes(ring_bytes)) {
    return absl::InvalidArgumentError(absl::StrFormat("ring size %d is not a power of two in [%d, %d]", ring_bytes,
                                                      kMinRingBytes, kMaxRingBytes));
  }
  Segment segment;
  segment.fd_.reset(memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!segment.fd_.valid()) return Errno("memfd_create");
  segment.bytes_ = kHeaderPageBytes + kSlotAreaBytes + 2 * ring_bytes;
  if (ftruncate(segment.fd_.get(), static_cast<off_t>(segment.bytes_)) < 0) {
    return Errno(absl::StrFormat("sizing a shared-memory segment of %d bytes", segment.bytes_));
  }
  if (fcntl(segment.fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    return Errno("sealing the shared-memory segment");
  }
  void* base = mmap(nullptr, segment.bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, segment.fd_.get(), 0);
  if (base == MAP_FAILED) return Errno(absl::StrFormat("mapping %d bytes of shared memory", segment.bytes_));
  segment.base_ = base;
  segment.ring_bytes_ = ring_bytes;
  madvise(base, segment.bytes_, MADV_DONTFORK);  // a forked child (a data loader) must not write into the rings
  SegmentHeader* header = new (base) SegmentHeader();
  header->ring_bytes = ring_bytes;
  for (int lane = 0; lane < 2; ++lane) new (segment.lane(lane)) SlotLane();
  return segment;
}

absl::StatusOr<Segment> Segment::Map(ScopedFd fd) {
  struct stat st {};
  if (fstat(fd.get(), &st) < 0) return Errno("fstat of the peer's segment");
  int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    return absl::PermissionDeniedError("the peer's segment is not a sealed memfd");
  }
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  constexpr uint64_t kFixed = kHeaderPageBytes + kSlotAreaBytes;
  if (bytes < kFixed + 2 * kMinRingBytes || !ValidRingBytes((bytes - kFixed) / 2) ||
      bytes != kFixed + 2 * ((bytes - kFixed) / 2)) {
    return absl::InvalidArgumentError(absl::StrFormat("the peer's segment has an impossible size of %d bytes", bytes));
  }
  Segment segment;
  segment.bytes_ = bytes;
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (base == MAP_FAILED) return Errno(absl::StrFormat("mapping the peer's %d-byte segment", bytes));
  segment.base_ = base;
  madvise(base, bytes, MADV_DONTFORK);
  segment.fd_ = std::move(fd);
  segment.ring_bytes_ = (bytes - kFixed) / 2;
  const SegmentHeader* header = segment.header();
  if (header->magic != kSegmentMagic || header->version != kSegmentVersion ||
      header->ring_bytes != segment.ring_bytes_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the peer's segment has magic 0x%016x version %d rings of %d bytes; expected 0x%016x version %d rings of %d",
        header->magic, header->version, header->ring_bytes, kSegmentMagic, kSegmentVersion, segment.ring_bytes_));
  }
  return segment;
}

Segment::Segment(Segment&& other) noexcept
    : fd_(std::move(other.fd_)),
      base_(std::exchange(other.base_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      ring_bytes_(std::exchange(other.ring_bytes_, 0)) {}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, bytes_);
    fd_ = std::move(other.fd_);
    base_ = std::exchange(other.base_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    ring_bytes_ = std::exchange(other.ring_bytes_, 0);
  }
  return *this;
}

Segment::~Segment() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

char* Segment::ring(int ring) const {
  return static_cast<char*>(base_) + kHeaderPageBytes + kSlotAreaBytes + static_cast<uint64_t>(ring) * ring_bytes_;
}

SlotLane* Segment::lane(int lane) const {
  return reinterpret_cast<SlotLane*>(static_cast<char*>(base_) + kHeaderPageBytes) + lane;
}

// ---- RingWriter ----

RingWriter::RingWriter(RingControl* control, char* data, uint64_t capacity)
    : control_(control), data_(data), capacity_(capacity), head_(control->head.load(std::memory_order_relaxed)) {}

absl::StatusOr<bool> RingWriter::HasRoom(uint64_t payload) const {
  const uint64_t tail = control_->tail.load(std::memory_order_acquire);
  if (tail > head_ || head_ - tail > capacity_) {
    return absl::DataLossError(absl::StrFormat(
        "shared-memory ring corrupt: consumer at %d, producer at %d, capacity %d", tail, head_, capacity_));
  }
  return capacity_ - (head_ - tail) >= FrameBytes(payload);
}

void RingWriter::Write(const FrameHeader& header, const char* payload) {
  // Positions are multiples of 64 and so is the capacity: a header never wraps.
  std::memcpy(data_ + (head_ & (capacity_ - 1)), &header, sizeof(header));
  if (header.length > 0) CopyIntoRing(data_, capacity_, head_ + sizeof(header), payload, header.length);
  head_ += FrameBytes(header.length);
  control_->head.store(head_, std::memory_order_release);
}

bool RingWriter::TakeWakeRequest() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (control_->consumer_asleep.load(std::memory_order_relaxed) == 0) return false;
  return control_->consumer_asleep.exchange(0) != 0;
}

bool RingWriter::ArmWake(uint64_t payload) {
  control_->producer_asleep.store(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  absl::StatusOr<bool> room = HasRoom(payload);
  return !room.ok() || *room;  // an error is reported by the next attempt to write
}

void RingWriter::DisarmWake() { control_->producer_asleep.store(0, std::memory_order_relaxed); }

// ---- RingReader ----

RingReader::RingReader(RingControl* control, char* data, uint64_t capacity)
    : control_(control), data_(data), capacity_(capacity), tail_(control->tail.load(std::memory_order_relaxed)) {}

absl::StatusOr<bool> RingReader::Next(FrameHeader* header) {
  const uint64_t head = control_->head.load(std::memory_order_acquire);
  if (head == tail_) return false;
  if (head < tail_ || head - tail_ > capacity_ || head - tail_ < sizeof(FrameHeader)) {
    return absl::DataLossError(absl::StrFormat(
        "shared-memory ring corrupt: producer at %d, consumer at %d, capacity %d", head, tail_, capacity_));
  }
  std::memcpy(header, data_ + (tail_ & (capacity_ - 1)), sizeof(*header));
  absl::Status valid = ValidateHeader(*header);
  if (!valid.ok()) return valid;
  if (header->type != FrameType::kData) {
    return absl::DataLossError(
        absl::StrFormat("unexpected frame type %d in a shared-memory ring", static_cast<int>(header->type)));
  }
  if (FrameBytes(header->length) > head - tail_) {
    return absl::DataLossError(absl::StrFormat("a frame of %d payload bytes but only %d bytes were published",
                                               header->length, head - tail_));
  }
  return true;
}

void RingReader::CopyPayload(const FrameHeader& header, char* dest) const {
  if (header.length > 0) CopyOutOfRing(data_, capacity_, tail_ + sizeof(FrameHeader), dest, header.length);
}

void RingReader::Release(const FrameHeader& header) {
  tail_ += FrameBytes(header.length);
  control_->tail.store(tail_, std::memory_order_release);
}

bool RingReader::Empty() const { return control_->head.load(std::memory_order_acquire) == tail_; }

bool RingReader::TakeWakeRequest() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (control_->producer_asleep.load(std::memory_order_relaxed) == 0) return false;
  return control_->producer_asleep.exchange(0) != 0;
}

bool RingReader::ArmWake() {
  control_->consumer_asleep.store(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return control_->head.load(std::memory_order_acquire) != tail_;
}

void RingReader::DisarmWake() { control_->consumer_asleep.store(0, std::memory_order_relaxed); }

}  // namespace silk::transport::shm
