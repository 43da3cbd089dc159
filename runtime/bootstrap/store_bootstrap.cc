#include "runtime/bootstrap/store_bootstrap.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {

std::string FormatRanks(const std::vector<int>& ranks) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < ranks.size();) {
    size_t end = i;
    while (end + 1 < ranks.size() && ranks[end + 1] == ranks[end] + 1) ++end;
    if (end >= i + 2) {
      parts.push_back(absl::StrFormat("%d-%d", ranks[i], ranks[end]));
    } else {
      for (size_t j = i; j <= end; ++j) parts.push_back(absl::StrCat(ranks[j]));
    }
    i = end + 1;
  }
  return absl::StrJoin(parts, ", ");
}

StoreBootstrap::StoreBootstrap(std::shared_ptr<Store> store, int rank, int size, std::string prefix)
    : store_(std::move(store)), rank_(rank), size_(size), prefix_(std::move(prefix)) {}

std::vector<std::string> StoreBootstrap::Keys(int64_t generation, const char* kind) const {
  std::vector<std::string> keys;
  keys.reserve(size_);
  for (int r = 0; r < size_; ++r) keys.push_back(absl::StrFormat("%s/%d/%s/%d", prefix_, generation, kind, r));
  return keys;
}

absl::StatusOr<std::vector<std::string>> StoreBootstrap::AllGather(const std::string& mine, absl::Duration timeout) {
  if (store_ == nullptr || size_ < 1 || rank_ < 0 || rank_ >= size_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "store bootstrap: invalid setup (rank %d, size %d, store %s)", rank_, size_, store_ ? "set" : "missing"));
  }
  absl::MutexLock lock(&mu_);
  const int64_t generation = generation_++;
  const std::string operation = absl::StrFormat("bootstrap allgather #%d", generation);
  const std::vector<std::string> data_keys = Keys(generation, "data");

  absl::Status status = store_->Set(data_keys[rank_], mine);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrFormat("%s (rank %d of %d): publishing this rank's value failed: %s",
                                                       operation, rank_, size_, status.message()));
  }
  SILK_ASSIGN_OR_RETURN(std::vector<std::string> values,
                        WaitForAll(data_keys, timeout, operation, ""));

  const std::vector<std::string> ack_keys = Keys(generation, "ack");
  status = store_->Set(ack_keys[rank_], "");
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrFormat("%s (rank %d of %d): acknowledging the result failed: %s",
                                                       operation, rank_, size_, status.message()));
  }
  if (rank_ == 0) {
    SILK_RETURN_IF_ERROR(WaitForAll(ack_keys, timeout, operation, "acknowledgements from ").status());
  }
  return values;
}

absl::StatusOr<std::vector<std::string>> StoreBootstrap::WaitForAll(const std::vector<std::string>& keys,
                                                                    absl::Duration timeout,
                                                                    const std::string& operation,
                                                                    const char* waiting_for) {
  absl::StatusOr<std::vector<std::string>> values = store_->MultiGet(keys, timeout);
  if (values.ok()) return values;
  const absl::Status& error = values.status();
  const bool timed_out = absl::IsDeadlineExceeded(error);

  // Which ranks are missing: from the failure itself, else (after a timeout,
  // when the store still answers) by asking.
  std::optional<std::vector<bool>> found = KeysFoundBeforeFailure(error);
  absl::Status check_error;
  if (!found.has_value() && timed_out) {
    absl::StatusOr<std::vector<bool>> checked = store_->Check(keys);
    if (checked.ok()) found = *std::move(checked);
    else check_error = checked.status();
  }
  std::vector<int> missing;
  for (int r = 0; found.has_value() && r < size_ && r < static_cast<int>(found->size()); ++r) {
    if (!(*found)[r]) missing.push_back(r);
  }
  // Everyone arrived between the timeout and the check: take the values after all.
  if (timed_out && found.has_value() && missing.empty()) return store_->MultiGet(keys, absl::ZeroDuration());

  const std::string missing_text =
      missing.empty() ? absl::StrFormat("%sranks", waiting_for)
                      : absl::StrFormat("%s%s %s", waiting_for, missing.size() == 1 ? "rank" : "ranks",
                                        FormatRanks(missing));
  if (timed_out) {
    std::string why = check_error.ok() ? "" : absl::StrCat("; listing them failed: ", check_error.message());
    return absl::DeadlineExceededError(absl::StrFormat("%s timed out after %s waiting for %s of %d (%s)%s", operation,
                                                       absl::FormatDuration(timeout), missing_text, size_, Describe(),
                                                       why));
  }
  if (!missing.empty()) {
    return absl::Status(error.code(), absl::StrFormat("%s (rank %d of %d) failed while waiting for %s of %d: %s",
                                                      operation, rank_, size_, missing_text, size_, error.message()));
  }
  return absl::Status(error.code(),
                      absl::StrFormat("%s (rank %d of %d) failed: %s", operation, rank_, size_, error.message()));
}

}  // namespace silk::bootstrap
