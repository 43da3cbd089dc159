#include "frameworks/torch/backend/torch_store.h"

#include <algorithm>
#include <chrono>
#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace silk::pytorch {
namespace {

// c10d treats a zero timeout as "wait forever": every wait here is bounded.
std::chrono::milliseconds ToMilliseconds(absl::Duration timeout) {
  const absl::Duration bounded = std::clamp(timeout, absl::Milliseconds(1), absl::Hours(24));
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(bounded));
}

absl::Status FromException(const std::exception& e, const std::string& what) {
  std::string message = e.what();
  // c10::Error appends a C++ backtrace after the first line; keep the message.
  if (size_t newline = message.find('\n'); newline != std::string::npos) message.resize(newline);
  const std::string text = absl::StrCat("torch.distributed store: ", what, ": ", message);
  const std::string lower = absl::AsciiStrToLower(message);
  if (absl::StrContains(lower, "timeout") || absl::StrContains(lower, "timed out")) {
    return absl::DeadlineExceededError(text);
  }
  return absl::UnavailableError(text);
}

}  // namespace

absl::Status TorchStore::Set(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  try {
    store_->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return FromException(e, absl::StrCat("set '", key, "'"));
  }
}

absl::StatusOr<std::string> TorchStore::Get(const std::string& key, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  try {
    store_->wait({key}, ToMilliseconds(timeout));
  } catch (const std::exception& e) {
    return FromException(e, absl::StrCat("waiting ", absl::FormatDuration(timeout), " for '", key, "'"));
  }
  try {
    std::vector<uint8_t> value = store_->get(key);
    return std::string(value.begin(), value.end());
  } catch (const std::exception& e) {
    return FromException(e, absl::StrCat("get '", key, "'"));
  }
}

absl::StatusOr<int64_t> TorchStore::Add(const std::string& key, int64_t delta) {
  absl::MutexLock lock(&mu_);
  try {
    return store_->add(key, delta);
  } catch (const std::exception& e) {
    return FromException(e, absl::StrCat("add to '", key, "'"));
  }
}

absl::StatusOr<std::vector<std::string>> TorchStore::MultiGet(const std::vector<std::string>& keys,
                                                              absl::Duration timeout) {
  absl::Status waited;
  {
    absl::MutexLock lock(&mu_);
    try {
      store_->wait(keys, ToMilliseconds(timeout));
    } catch (const std::exception& e) {
      waited = FromException(e, absl::StrCat("waiting ", absl::FormatDuration(timeout), " for ", keys.size(),
                                             " keys (", keys.empty() ? "" : keys.front(), " ...)"));
    }
  }
  if (!waited.ok()) {
    // Say which keys were there, so the bootstrap can name the missing ranks.
    absl::StatusOr<std::vector<bool>> found = Check(keys);
    if (found.ok()) bootstrap::AttachKeysFound(*found, &waited);
    return waited;
  }
  std::vector<std::string> values;
  values.reserve(keys.size());
  absl::MutexLock lock(&mu_);
  for (const std::string& key : keys) {
    try {
      std::vector<uint8_t> value = store_->get(key);
      values.emplace_back(value.begin(), value.end());
    } catch (const std::exception& e) {
      return FromException(e, absl::StrCat("get '", key, "'"));
    }
  }
  return values;
}

absl::StatusOr<std::vector<bool>> TorchStore::Check(const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mu_);
  std::vector<bool> found;
  found.reserve(keys.size());
  for (const std::string& key : keys) {
    try {
      found.push_back(store_->check({key}));
    } catch (const std::exception& e) {
      return FromException(e, absl::StrCat("check '", key, "'"));
    }
  }
  return found;
}

}  // namespace silk::pytorch
