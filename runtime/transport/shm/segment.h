// The memory two ranks of one node share: a header page, the two slot lanes
// of the calling-thread path for small collectives (slots.h), then one ring
// per direction (ring 0 carries the lower rank's frames to the higher, ring 1
// the other way; lanes likewise).
//
// The segment is a sealed memfd: it has no name, so nothing ever appears in
// /dev/shm, and the kernel frees it when the last of the two processes unmaps
// it, however they end. Its size is sealed, so a peer cannot shrink it under
// the other's mapping.
//
// A ring carries frames from one producer to one consumer: the TCP transport's
// 64-byte FrameHeader, then the payload padded to 64 bytes. Positions only
// grow. The producer publishes `head` after writing a whole frame and the
// consumer publishes `tail` after copying one out, so neither sees half a
// frame and no lock is shared between the processes. Either side may ask to
// be woken (`*_asleep`) before it sleeps; the other then sends a byte on the
// pair's socket (Dekker-style: flag, fence, re-check on one side; publish,
// fence, check the flag on the other).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/core/types.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/socket.h"

namespace silk::transport::shm {


inline constexpr uint64_t kSegmentMagic = 0x314d48534b4c4953;  // "SILKSHM1"
inline constexpr uint32_t kSegmentVersion = 4;
inline constexpr uint64_t kFrameAlign = 64;
inline constexpr uint64_t kHeaderPageBytes = 4096;
inline constexpr uint64_t kMinRingBytes = 64 << 10;
inline constexpr uint64_t kMaxRingBytes = uint64_t{1} << 30;
// Largest payload of one slot (slots.h): small collectives up to this size
// bypass the rings.
inline constexpr uint64_t kSlotBytes = 256 << 10;

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "the rings need address-free atomics");

struct RingControl {
  alignas(64) std::atomic<uint64_t> head{0};             // bytes the producer published
  alignas(64) std::atomic<uint64_t> tail{0};             // bytes the consumer released
  alignas(64) std::atomic<uint32_t> consumer_asleep{0};  // wake the consumer after publishing
  alignas(64) std::atomic<uint32_t> producer_asleep{0};  // wake the producer after releasing
};

// One direction of a pair's slots (slots.h): the writer publishes an
// operation step's descriptor and bytes in one of two buffers, alternately,
// then the publication's number in `seq`; the reader reads them in place,
// then sets `done` to the number. The writer reuses a
// buffer only once `done` shows its last contents were read. Either side may
// sleep on the futex word `epoch`, counted in `sleepers`; the other bumps
// `epoch` after each store and wakes it when anyone sleeps.
struct SlotLane {
  alignas(64) std::atomic<uint64_t> seq[2] = {0, 0};  // writer: op id published in each buffer
  OpDescriptor descriptor[2];
  uint64_t bytes[2] = {0, 0};
  alignas(64) std::atomic<uint64_t> done[2] = {0, 0};  // reader: op id last read from each buffer
  alignas(64) std::atomic<uint32_t> epoch{0};
  std::atomic<uint32_t> sleepers{0};
  // Writer: the latest operation it runs another way (through the rings), and
  // its descriptor's two words, so a reader waiting in a slot for that
  // operation sees the mismatch at once. Written as a seqlock (id 0 first).
  alignas(64) std::atomic<uint64_t> announced{0};
  std::atomic<uint64_t> announced_descriptor[2] = {0, 0};
  alignas(64) char data[2][kSlotBytes];
};
inline constexpr uint64_t kSlotAreaBytes = (2 * sizeof(SlotLane) + 4095) / 4096 * 4096;

struct SegmentHeader {
  uint64_t magic = kSegmentMagic;
  uint32_t version = kSegmentVersion;
  uint32_t reserved = 0;
  uint64_t ring_bytes = 0;  // per ring; a power of two
  RingControl rings[2];
};
static_assert(sizeof(SegmentHeader) <= kHeaderPageBytes);

// Payload plus header, padded: what one frame occupies in a ring.
inline uint64_t FrameBytes(uint64_t payload) {
  return sizeof(FrameHeader) + (payload + kFrameAlign - 1) / kFrameAlign * kFrameAlign;
}

// One mapping of a segment.
class Segment {
 public:
  // Creates, seals and maps a segment with two rings of `ring_bytes` each.
  // `name` shows only in /proc/<pid>/fd and /proc/<pid>/maps ("memfd:<name>").
  static absl::StatusOr<Segment> Create(const std::string& name, uint64_t ring_bytes);
  // Maps a segment received from the peer, after checking its seals, size and header.
  static absl::StatusOr<Segment> Map(ScopedFd fd);

  Segment() = default;
  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  int fd() const { return fd_.get(); }
  // Closes the descriptor; the mapping stays (done once both sides mapped it).
  void CloseFd() { fd_.reset(); }
  bool mapped() const { return base_ != nullptr; }
  uint64_t ring_bytes() const { return ring_bytes_; }
  SegmentHeader* header() const { return static_cast<SegmentHeader*>(base_); }
  RingControl* control(int ring) const { return &header()->rings[ring]; }
  char* ring(int ring) const;
  // Lane 0 carries the lower rank's slots to the higher, lane 1 the other way.
  SlotLane* lane(int lane) const;

 private:
  ScopedFd fd_;
  void* base_ = nullptr;
  size_t bytes_ = 0;
  uint64_t ring_bytes_ = 0;  // this side's copy: the header is shared with the peer
};

// The producer's side of a ring (one thread).
class RingWriter {
 public:
  RingWriter() = default;
  RingWriter(RingControl* control, char* data, uint64_t capacity);

  // Whether a frame of `payload` bytes fits now; an error when the consumer's
  // position is impossible (the shared memory was corrupted).
  absl::StatusOr<bool> HasRoom(uint64_t payload) const;
  // Writes one frame and publishes it; only after HasRoom said yes.
  void Write(const FrameHeader& header, const char* payload);
  // After publishing: whether the consumer asked to be woken (the request is consumed).
  bool TakeWakeRequest();
  // Before sleeping with a frame of `payload` bytes waiting for room: asks to
  // be woken; returns whether room appeared meanwhile (then do not sleep).
  bool ArmWake(uint64_t payload);
  void DisarmWake();

 private:
  RingControl* control_ = nullptr;
  char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t head_ = 0;  // only this side writes it
};

// The consumer's side of a ring (one thread).
class RingReader {
 public:
  RingReader() = default;
  RingReader(RingControl* control, char* data, uint64_t capacity);

  // Reads the next frame's header, checked; false when the ring is empty. An
  // error when the producer's position or the frame is impossible.
  absl::StatusOr<bool> Next(FrameHeader* header);
  // Copies the payload of the frame Next() returned.
  void CopyPayload(const FrameHeader& header, char* dest) const;
  // Gives the frame's space back to the producer.
  void Release(const FrameHeader& header);
  bool Empty() const;
  // After releasing: whether the producer asked to be woken (the request is consumed).
  bool TakeWakeRequest();
  // Before sleeping: asks to be woken; returns whether data arrived meanwhile.
  bool ArmWake();
  void DisarmWake();

 private:
  RingControl* control_ = nullptr;
  char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t tail_ = 0;  // only this side writes it
};

}  // namespace silk::transport::shm
