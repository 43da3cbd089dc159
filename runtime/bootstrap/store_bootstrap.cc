#include "runtime/bootstrap/store_bootstrap.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/core/error.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {

constexpr char kRankZeroAbsent[] =
    "waiting for rank 0 to open the rendezvous (rank 0 was not started, failed before it got there, or was given "
    "another MASTER_ADDR/MASTER_PORT)";
// PyTorch's env:// rendezvous hands a re-created group the store of whoever
// listens on MASTER_PORT; Silk's own env bootstrap connects again instead.
constexpr char kStoreClosedWhileJoining[] =
    "the store closed while this rank waited for rank 0 to open the rendezvous; if the group is being re-created "
    "on the same MASTER_PORT, this rank reached the previous group's store before rank 0 closed it (let rank 0 "
    "finish destroying its group before the others initialise again, or use a new port)";

}  // namespace

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

std::vector<std::string> StoreBootstrap::Keys(int64_t session, int64_t generation, const char* kind) const {
  std::vector<std::string> keys;
  keys.reserve(size_);
  for (int r = 0; r < size_; ++r) {
    keys.push_back(absl::StrFormat("%s/s%d/%d/%s/%d", prefix_, session, generation, kind, r));
  }
  return keys;
}

std::string StoreBootstrap::ClosedKey(int64_t session) const {
  return absl::StrFormat("%s/s%d/closed", prefix_, session);
}

int64_t StoreBootstrap::session() const {
  absl::MutexLock lock(&mu_);
  return session_;
}

absl::Status StoreBootstrap::JoinSession(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return JoinSessionLocked(timeout);
}

absl::Status StoreBootstrap::JoinSessionLocked(absl::Duration timeout) {
  if (session_ >= 0) return absl::OkStatus();
  const absl::Time deadline = absl::Now() + timeout;
  const std::string latest_key = prefix_ + "/session/latest";
  auto opened_key = [&](int64_t n) { return absl::StrFormat("%s/session/%d", prefix_, n); };
  auto failed = [&](const absl::Status& status, const std::string& what) {
    return absl::Status(status.code(), absl::StrFormat("bootstrap (rank %d of %d, %s): %s: %s", rank_, size_,
                                                       Describe(), what, status.message()));
  };
  if (rank_ == 0) {
    absl::StatusOr<int64_t> opened = store_->Add(prefix_ + "/session/count", 1);
    absl::Status status = opened.status();
    if (status.ok()) status = store_->Set(opened_key(*opened), "");
    if (status.ok()) status = store_->Set(latest_key, absl::StrCat(*opened));
    if (!status.ok()) return failed(status, "opening a new rendezvous session");
    session_ = *opened;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> latest = store_->Get(latest_key, timeout);
  int64_t session = 0;
  if (!latest.ok()) {
    return failed(latest.status(), absl::IsUnavailable(latest.status()) ? kStoreClosedWhileJoining
                                                                        : kRankZeroAbsent);
  }
  if (!absl::SimpleAtoi(*latest, &session)) {
    return ProtocolError(absl::StrFormat("bootstrap (%s): key %s holds \"%s\", not a session number", Describe(),
                                         latest_key, *latest));
  }
  while (true) {
    // This rank's first record already in the session (it took part in it),
    // or rank 0 closed it (it finished or gave up): the session is a previous
    // group's; wait for rank 0 to open the next.
    absl::StatusOr<std::vector<bool>> seen = store_->Check({Keys(session, 0, "data")[rank_], ClosedKey(session)});
    if (!seen.ok()) return failed(seen.status(), "looking up the rendezvous session");
    if (!(*seen)[0] && !(*seen)[1]) break;
    absl::Status next = store_->Get(opened_key(session + 1), deadline - absl::Now()).status();
    if (!next.ok()) {
      return failed(next, absl::StrFormat("rendezvous session %d is a previous group's (this rank took part in "
                                          "it, or rank 0 closed it); waiting for rank 0 to open the next one (%s)",
                                          session, absl::IsUnavailable(next) ? "the store closed meanwhile: it "
                                          "was the previous group's" : "rank 0 has not re-initialised"));
    }
    ++session;
  }
  session_ = session;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> StoreBootstrap::AllGather(const std::string& mine, absl::Duration timeout) {
  if (store_ == nullptr || size_ < 1 || rank_ < 0 || rank_ >= size_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "store bootstrap: invalid setup (rank %d, size %d, store %s)", rank_, size_, store_ ? "set" : "missing"));
  }
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  SILK_RETURN_IF_ERROR(JoinSessionLocked(timeout));
  const int64_t generation = generation_++;
  absl::StatusOr<std::vector<std::string>> values = AllGatherLocked(mine, generation, deadline, timeout);
  // Once rank 0's first exchange has ended, every rank that will ever join
  // this session has (rank 0 waited for all acknowledgements) or never will
  // (rank 0 gave up): a latecomer must wait for the next session instead.
  if (rank_ == 0 && generation == 0) store_->Set(ClosedKey(session_), "").IgnoreError();
  return values;
}

absl::StatusOr<std::vector<std::string>> StoreBootstrap::AllGatherLocked(const std::string& mine, int64_t generation,
                                                                         absl::Time deadline,
                                                                         absl::Duration timeout) {
  const std::string operation = absl::StrFormat("bootstrap allgather #%d", generation);
  const std::vector<std::string> data_keys = Keys(session_, generation, "data");

  absl::Status status = store_->Set(data_keys[rank_], mine);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrFormat("%s (rank %d of %d): publishing this rank's value failed: %s",
                                                       operation, rank_, size_, status.message()));
  }
  SILK_ASSIGN_OR_RETURN(std::vector<std::string> values,
                        WaitForAll(data_keys, std::max(deadline - absl::Now(), absl::ZeroDuration()), timeout,
                                   operation, ""));

  const std::vector<std::string> ack_keys = Keys(session_, generation, "ack");
  status = store_->Set(ack_keys[rank_], "");
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrFormat("%s (rank %d of %d): acknowledging the result failed: %s",
                                                       operation, rank_, size_, status.message()));
  }
  if (rank_ == 0) {
    SILK_RETURN_IF_ERROR(WaitForAll(ack_keys, timeout, timeout, operation, "acknowledgements from ").status());
  }
  return values;
}

absl::StatusOr<std::vector<std::string>> StoreBootstrap::WaitForAll(const std::vector<std::string>& keys,
                                                                    absl::Duration wait, absl::Duration timeout,
                                                                    const std::string& operation,
                                                                    const char* waiting_for) {
  absl::StatusOr<std::vector<std::string>> values = store_->MultiGet(keys, wait);
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
