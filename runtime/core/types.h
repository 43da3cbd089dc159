// Vocabulary shared by every layer: element types, reductions, and the
// descriptor that names one collective call. Like ncclDataType_t/ncclRedOp_t,
// these are plain enums with stable numeric values (they travel on the wire
// and through the C API).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace silk {

enum class DataType : uint8_t {
  kFloat32 = 0,
  kFloat64 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kInt8 = 4,
  kUint8 = 5,
  kInt32 = 6,
  kInt64 = 7,
};
inline constexpr int kNumDataTypes = 8;

enum class ReduceOp : uint8_t {
  kSum = 0,
  kProd = 1,
  kMin = 2,
  kMax = 3,
  kAvg = 4,
};
inline constexpr int kNumReduceOps = 5;

enum class CollectiveKind : uint8_t {
  kNone = 0,
  kAllreduce = 1,
  kReduceScatter = 2,
  kAllgather = 3,
  kBroadcast = 4,
  kReduce = 5,
  kBarrier = 6,
  kAlltoall = 7,
  kSendRecv = 8,
  kProbe = 9,  // start-up measurements
  kRegionAllgather = 10,
  kGather = 11,
  kScatter = 12,
  kAlltoallv = 13,
};

// Returns the size in bytes of one element, or 0 for an unknown value.
size_t DataTypeSize(DataType type);
bool IsValidDataType(int value);
bool IsValidReduceOp(int value);
const char* DataTypeName(DataType type);
const char* ReduceOpName(ReduceOp op);
const char* CollectiveKindName(CollectiveKind kind);

// Describes one collective call. It travels in every frame of the operation so
// that a rank receiving data for a call it did not make (another operation,
// count, type, reduction or root) detects the mismatch instead of corrupting.
struct OpDescriptor {
  // flags: a call its rank refused (bad arguments). The rank still takes the
  // call's operation number and tells its peers, so their matching call fails
  // instead of pairing with its next one (collectives/launch.h).
  static constexpr uint8_t kRejectedFlag = 0x80;

  CollectiveKind kind = CollectiveKind::kNone;
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  uint8_t flags = 0;
  int32_t root = -1;
  uint64_t count = 0;

  bool operator==(const OpDescriptor&) const = default;
  // e.g. "allreduce(count=1024, type=float32, op=sum)".
  std::string ToString() const;
};
static_assert(sizeof(OpDescriptor) == 16, "OpDescriptor is part of the wire format");

}  // namespace silk
