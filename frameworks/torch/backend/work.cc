#include "frameworks/torch/backend/work.h"

#include <stdexcept>
#include <utility>

#include <ATen/core/jit_type.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/core/error.h"

namespace silk::pytorch {
namespace {

// "silk allreduce failed (mismatch, FAILED_PRECONDITION): ...": the kind says
// what happened (runtime/core/error.h); the code is kept for existing parsers.
std::exception_ptr ToException(const std::string& operation, const absl::Status& status) {
  return std::make_exception_ptr(std::runtime_error(absl::StrCat("silk ", operation, " failed (",
                                                                 ErrorKindName(KindOf(status)), ", ",
                                                                 absl::StatusCodeToString(status.code()),
                                                                 "): ", status.message())));
}

}  // namespace

void InFlight::Add(bool claimed) {
  absl::MutexLock lock(&mu_);
  ++count_;
  if (!claimed) ++unclaimed_works_;
}

void InFlight::Done(bool claimed) {
  absl::MutexLock lock(&mu_);
  --count_;
  if (!claimed) --unclaimed_works_;
}

InFlight::Claim InFlight::ClaimMemory(const std::vector<TensorBuffer>& buffers) {
  std::vector<Range> ranges;
  auto add = [&ranges](const void* data, size_t bytes) {
    const auto begin = reinterpret_cast<uintptr_t>(data);
    if (bytes > 0) ranges.push_back({begin, begin + bytes});
  };
  for (const TensorBuffer& buffer : buffers) {
    add(buffer.data(), buffer.bytes());
    // The whole storage, not the view: a later call on another view of it stays in order.
    for (const at::Tensor& t : buffer.tensors()) add(t.storage().data(), t.storage().nbytes());
  }
  Claim claim;
  claim.owner_ = shared_from_this();
  absl::MutexLock lock(&mu_);
  claim.independent_ = unclaimed_works_ == 0;
  for (const auto& [id, held] : claims_) {
    for (const Range& a : held) {
      for (const Range& b : ranges) {
        if (a.begin < b.end && b.begin < a.end) claim.independent_ = false;
      }
    }
  }
  claim.id_ = next_claim_++;
  claims_.emplace(claim.id_, std::move(ranges));
  return claim;
}

InFlight::Claim& InFlight::Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::move(other.owner_);
    id_ = std::exchange(other.id_, 0);
    independent_ = other.independent_;
  }
  return *this;
}

void InFlight::Claim::Release() {
  if (owner_ == nullptr) return;
  {
    absl::MutexLock lock(&owner_->mu_);
    owner_->claims_.erase(id_);
  }
  owner_.reset();
}

bool InFlight::WaitUntilIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return count_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

SilkWork::SilkWork(int rank, ::c10d::OpType type, const char* title, std::vector<at::Tensor> outputs,
                   std::vector<TensorBuffer> buffers, std::shared_ptr<InFlight> in_flight, InFlight::Claim claim)
    : ::c10d::Work(rank, type, title, c10::nullopt),
      name_(absl::StripPrefix(title, "silk:")),
      outputs_(std::move(outputs)),
      buffers_(std::move(buffers)),
      future_(c10::make_intrusive<c10::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))),
      in_flight_(std::move(in_flight)),
      claim_(std::move(claim)),
      claimed_(claim_.held()) {
  in_flight_->Add(claimed_);
}

void SilkWork::CompleteWith(const c10::intrusive_ptr<SilkWork>& work, const WorkPtr& operation) {
  work->operation_ = operation;
  // The callback holds a reference, so the work (and its tensors) lives until
  // the operation completes, even if the caller drops it at once. (The cycle
  // through operation_ ends when the operation drops its callbacks.)
  operation->OnComplete([work](const absl::Status& status) { work->Complete(status); });
}

bool SilkWork::wait(std::chrono::milliseconds timeout) {
  if (operation_ != nullptr) {
    const absl::Duration bound =
        timeout == ::kNoTimeout ? absl::InfiniteDuration() : absl::Milliseconds(timeout.count());
    absl::Status status = operation_->Wait(bound);
    if (absl::IsDeadlineExceeded(status) && !operation_->Test()) std::rethrow_exception(ToException(name_, status));
  }
  return ::c10d::Work::wait(timeout);
}

void SilkWork::Complete(const absl::Status& status) {
  std::exception_ptr error;
  if (status.ok()) {
    try {
      for (TensorBuffer& buffer : buffers_) buffer.WriteBack();
    } catch (const std::exception& e) {
      error = ToException(name_, absl::InternalError(absl::StrCat("writing the results back failed: ", e.what())));
    }
  } else {
    error = ToException(name_, status);
  }
  buffers_.clear();
  if (error) {
    future_->setError(error);
  } else {
    future_->markCompleted(c10::IValue(outputs_));
  }
  claim_.Release();
  finish(error);
  in_flight_->Done(claimed_);
}

}  // namespace silk::pytorch
