#include "frameworks/torch/backend/types.h"

#include <optional>

#include "absl/strings/str_cat.h"

namespace silk::pytorch {
namespace {

std::optional<DataType> SilkTypeOf(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return DataType::kFloat32;
    case at::kDouble: return DataType::kFloat64;
    case at::kHalf: return DataType::kFloat16;
    case at::kBFloat16: return DataType::kBFloat16;
    case at::kChar: return DataType::kInt8;
    case at::kByte: return DataType::kUint8;
    case at::kInt: return DataType::kInt32;
    case at::kLong: return DataType::kInt64;
    case at::kBool: return DataType::kUint8;  // 0/1 bytes; see ToSilkReduceOp
    default: return std::nullopt;
  }
}

const char* TorchReduceOpName(::c10d::ReduceOp::RedOpType op) {
  switch (op) {
    case ::c10d::ReduceOp::SUM: return "SUM";
    case ::c10d::ReduceOp::AVG: return "AVG";
    case ::c10d::ReduceOp::PRODUCT: return "PRODUCT";
    case ::c10d::ReduceOp::MIN: return "MIN";
    case ::c10d::ReduceOp::MAX: return "MAX";
    case ::c10d::ReduceOp::BAND: return "BAND";
    case ::c10d::ReduceOp::BOR: return "BOR";
    case ::c10d::ReduceOp::BXOR: return "BXOR";
    case ::c10d::ReduceOp::PREMUL_SUM: return "PREMUL_SUM";
    default: return "UNKNOWN";
  }
}

}  // namespace

std::string TorchTypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kShort: return "int16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kBool: return "bool";
    default: return c10::toString(type);
  }
}

absl::StatusOr<DataType> ReductionType(at::ScalarType type) {
  std::optional<DataType> silk_type = SilkTypeOf(type);
  if (!silk_type) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reduce tensors of type torch.", TorchTypeName(type),
                     " (supported: float32, float64, float16, bfloat16, int8, uint8, int32, int64, bool)"));
  }
  return *silk_type;
}

absl::StatusOr<ReduceOp> ToSilkReduceOp(const ::c10d::ReduceOp& op, at::ScalarType type) {
  const auto red = static_cast<::c10d::ReduceOp::RedOpType>(op);
  if (type == at::kBool) {
    switch (red) {
      case ::c10d::ReduceOp::SUM:
      case ::c10d::ReduceOp::MAX: return ReduceOp::kMax;  // logical or
      case ::c10d::ReduceOp::PRODUCT:
      case ::c10d::ReduceOp::MIN: return ReduceOp::kMin;  // logical and
      default: break;
    }
  } else {
    switch (red) {
      case ::c10d::ReduceOp::SUM: return ReduceOp::kSum;
      case ::c10d::ReduceOp::AVG: return ReduceOp::kAvg;
      case ::c10d::ReduceOp::PRODUCT: return ReduceOp::kProd;
      case ::c10d::ReduceOp::MIN: return ReduceOp::kMin;
      case ::c10d::ReduceOp::MAX: return ReduceOp::kMax;
      default: break;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("ReduceOp.", TorchReduceOpName(red),
                                                 " is not supported on torch.", TorchTypeName(type),
                                                 " tensors (supported: SUM, AVG, PRODUCT, MIN, MAX; "
                                                 "bool: SUM, PRODUCT, MIN, MAX)"));
}

MovedElements MovementType(at::ScalarType type, size_t numel) {
  std::optional<DataType> silk_type = SilkTypeOf(type);
  if (silk_type) return {*silk_type, numel};
  return {DataType::kUint8, numel * c10::elementSize(type)};
}

}  // namespace silk::pytorch
