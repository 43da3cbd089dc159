#include "runtime/bootstrap/store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"

#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {
constexpr char kKeysFoundPayload[] = "type.silk/bootstrap.KeysFound";
}  // namespace

void AttachKeysFound(const std::vector<bool>& found, absl::Status* status) {
  std::string flags;
  flags.reserve(found.size());
  for (bool f : found) flags.push_back(f ? '1' : '0');
  status->SetPayload(kKeysFoundPayload, absl::Cord(flags));
}

std::optional<std::vector<bool>> KeysFoundBeforeFailure(const absl::Status& status) {
  auto payload = status.GetPayload(kKeysFoundPayload);  // absl::optional, not std:: in this Abseil
  if (!payload.has_value()) return std::nullopt;
  std::vector<bool> found;
  for (char flag : std::string(*payload)) found.push_back(flag == '1');
  return found;
}

absl::StatusOr<std::vector<std::string>> Store::MultiGet(const std::vector<std::string>& keys,
                                                         absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::string> values;
  values.reserve(keys.size());
  for (const std::string& key : keys) {
    SILK_ASSIGN_OR_RETURN(std::string value, Get(key, std::max(deadline - absl::Now(), absl::ZeroDuration())));
    values.push_back(std::move(value));
  }
  return values;
}

absl::StatusOr<std::vector<bool>> Store::Check(const std::vector<std::string>& keys) {
  std::vector<bool> exists;
  exists.reserve(keys.size());
  for (const std::string& key : keys) {
    absl::StatusOr<std::string> value = Get(key, absl::ZeroDuration());
    if (!value.ok() && !absl::IsDeadlineExceeded(value.status())) return value.status();
    exists.push_back(value.ok());
  }
  return exists;
}

}  // namespace silk::bootstrap
