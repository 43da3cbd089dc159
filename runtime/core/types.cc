#include "runtime/core/types.h"

#include "absl/strings/str_format.h"

namespace silk {

size_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kFloat32: return 4;
    case DataType::kFloat64: return 8;
    case DataType::kFloat16: return 2;
    case DataType::kBFloat16: return 2;
    case DataType::kInt8: return 1;
    case DataType::kUint8: return 1;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
  }
  return 0;
}

bool IsValidDataType(int value) { return value >= 0 && value < kNumDataTypes; }
bool IsValidReduceOp(int value) { return value >= 0 && value < kNumReduceOps; }

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kFloat32: return "float32";
    case DataType::kFloat64: return "float64";
    case DataType::kFloat16: return "float16";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kInt8: return "int8";
    case DataType::kUint8: return "uint8";
    case DataType::kInt32: return "int32";
    case DataType::kInt64: return "int64";
  }
  return "unknown-type";
}

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kProd: return "prod";
    case ReduceOp::kMin: return "min";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kAvg: return "avg";
  }
  return "unknown-op";
}

const char* CollectiveKindName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kNone: return "none";
    case CollectiveKind::kAllreduce: return "allreduce";
    case CollectiveKind::kReduceScatter: return "reduce_scatter";
    case CollectiveKind::kAllgather: return "allgather";
    case CollectiveKind::kBroadcast: return "broadcast";
    case CollectiveKind::kReduce: return "reduce";
    case CollectiveKind::kBarrier: return "barrier";
    case CollectiveKind::kAlltoall: return "alltoall";
    case CollectiveKind::kSendRecv: return "sendrecv";
    case CollectiveKind::kProbe: return "probe";
    case CollectiveKind::kRegionAllgather: return "region_allgather";
    case CollectiveKind::kGather: return "gather";
    case CollectiveKind::kScatter: return "scatter";
    case CollectiveKind::kAlltoallv: return "alltoallv";
  }
  return "unknown-collective";
}

std::string OpDescriptor::ToString() const {
  if (flags & kRejectedFlag) return absl::StrFormat("%s (rejected by its rank)", CollectiveKindName(kind));
  std::string out = absl::StrFormat("%s(count=%d, type=%s, op=%s", CollectiveKindName(kind), count,
                                    DataTypeName(type), ReduceOpName(op));
  if (root >= 0) absl::StrAppendFormat(&out, ", root=%d", root);
  // The collective layer keeps the chosen algorithm and variants here.
  if (flags != 0) absl::StrAppendFormat(&out, ", flags=0x%02x", flags);
  out += ")";
  return out;
}

}  // namespace silk
