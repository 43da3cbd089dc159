// Early-return helpers for absl::Status, so error paths stay one line.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SILK_CONCAT_INNER(a, b) a##b
#define SILK_CONCAT(a, b) SILK_CONCAT_INNER(a, b)

#define SILK_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status silk_status_ = (expr);        \
    if (!silk_status_.ok()) return silk_status_; \
  } while (0)

#define SILK_ASSIGN_OR_RETURN(lhs, expr) \
  SILK_ASSIGN_OR_RETURN_IMPL(SILK_CONCAT(silk_statusor_, __LINE__), lhs, expr)

#define SILK_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()
