// CreateMpiBootstrap and LaunchedByMpi: rendezvous through MPI when mpirun started the job.
// Only MPI's C API is linked (MPI::MPI_C): keep mpi.h from declaring the C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {

// Set once a collective is abandoned at its timeout: MPI_Finalize could then wait for it forever.
std::atomic<bool> g_abandoned_mpi_request{false};

void FinalizeMpiAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && !g_abandoned_mpi_request.load()) MPI_Finalize();
}

std::string MpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return absl::StrFormat("MPI error %d", code);
  return std::string(text, length);
}

// Initialises MPI unless the program (or an earlier call) already did.
absl::Status EnsureMpiInitialized() {
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) return absl::FailedPreconditionError("mpi bootstrap: MPI has already been finalised");
  if (initialized) return absl::OkStatus();
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  if (rc != MPI_SUCCESS) {
    return absl::UnavailableError("mpi bootstrap: MPI_Init_thread failed: " + MpiErrorText(rc));
  }
  // We initialised MPI, so we finalise it; a program that initialised it itself finalises it too.
  std::atexit(FinalizeMpiAtExit);
  return absl::OkStatus();
}

// Buffers of one non-blocking collective: MPI owns them until it completes.
struct Exchange {
  MPI_Request request = MPI_REQUEST_NULL;
  int my_length = 0;
  std::vector<int> lengths;
  std::vector<int> offsets;
  std::string send;
  std::string receive;
};

class MpiBootstrap : public Bootstrap {
 public:
  MpiBootstrap(int rank, int size) : rank_(rank), size_(size) {}

  ~MpiBootstrap() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_NULL && broken_.ok() && !finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string Describe() const override { return "mpi"; }

  absl::StatusOr<std::vector<std::string>> AllGather(const std::string& mine, absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    if (mine.size() > INT_MAX) {
      return absl::InvalidArgumentError(
          absl::StrFormat("mpi bootstrap allgather: %d bytes from rank %d is over MPI's limit of %d", mine.size(),
                          rank_, INT_MAX));
    }
    const absl::Time deadline = absl::Now() + timeout;
    auto exchange = std::make_unique<Exchange>();
    if (comm_ == MPI_COMM_NULL) {
      // Our own communicator, so the program's collectives on MPI_COMM_WORLD never interleave with ours.
      SILK_RETURN_IF_ERROR(Check(MPI_Comm_idup(MPI_COMM_WORLD, &comm_, &exchange->request), "MPI_Comm_idup"));
      SILK_RETURN_IF_ERROR(Wait(exchange, timeout, deadline, "duplicating MPI_COMM_WORLD"));
      MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    }

    exchange->my_length = static_cast<int>(mine.size());
    exchange->lengths.resize(size_);
    SILK_RETURN_IF_ERROR(Check(MPI_Iallgather(&exchange->my_length, 1, MPI_INT, exchange->lengths.data(), 1, MPI_INT,
                                              comm_, &exchange->request),
                               "MPI_Iallgather"));
    SILK_RETURN_IF_ERROR(Wait(exchange, timeout, deadline, "exchanging lengths"));

    int64_t total = 0;
    exchange->offsets.resize(size_);
    for (int r = 0; r < size_; ++r) {
      exchange->offsets[r] = static_cast<int>(std::min<int64_t>(total, INT_MAX));
      total += exchange->lengths[r];
    }
    if (total > INT_MAX) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "mpi bootstrap allgather: %d bytes from all ranks together is over MPI's limit of %d", total, INT_MAX));
    }
    exchange->send = mine;
    exchange->receive.resize(total);
    SILK_RETURN_IF_ERROR(Check(MPI_Iallgatherv(exchange->send.data(), exchange->my_length, MPI_BYTE,
                                               exchange->receive.data(), exchange->lengths.data(),
                                               exchange->offsets.data(), MPI_BYTE, comm_, &exchange->request),
                               "MPI_Iallgatherv"));
    SILK_RETURN_IF_ERROR(Wait(exchange, timeout, deadline, "exchanging values"));

    std::vector<std::string> values;
    values.reserve(size_);
    for (int r = 0; r < size_; ++r) {
      values.push_back(exchange->receive.substr(exchange->offsets[r], exchange->lengths[r]));
    }
    return values;
  }

 private:
  absl::Status Check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return absl::OkStatus();
    return absl::UnavailableError(absl::StrFormat("mpi bootstrap allgather (rank %d of %d): %s failed: %s", rank_,
                                                  size_, call, MpiErrorText(rc)));
  }

  // Polls the exchange's request with short sleeps until it completes or the
  // deadline passes. On timeout the request can be neither cancelled nor freed
  // (MPI forbids both for collectives), so its buffers are leaked on purpose,
  // MPI may still write into them, and this bootstrap stays broken.
  absl::Status Wait(std::unique_ptr<Exchange>& exchange, absl::Duration timeout, absl::Time deadline,
                    const char* step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Duration backoff = absl::Microseconds(20);
    while (true) {
      int done = 0;
      int rc = MPI_Test(&exchange->request, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) {
        broken_ = Check(rc, step);
        return broken_;
      }
      if (done) return absl::OkStatus();
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      absl::SleepFor(std::min(backoff, left));
      backoff = std::min(backoff * 2, absl::Milliseconds(2));
    }
    g_abandoned_mpi_request = true;
    exchange.release();  // NOLINT: intentionally leaked, see above.
    broken_ = absl::DeadlineExceededError(absl::StrFormat(
        "mpi bootstrap allgather timed out after %s %s (rank %d of %d): some rank did not call it",
        absl::FormatDuration(timeout), step, rank_, size_));
    return broken_;
  }

  const int rank_;
  const int size_;
  absl::Mutex mu_;
  MPI_Comm comm_ ABSL_GUARDED_BY(mu_) = MPI_COMM_NULL;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Bootstrap>> CreateMpiBootstrap() {
  SILK_RETURN_IF_ERROR(EnsureMpiInitialized());
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::unique_ptr<Bootstrap>(new MpiBootstrap(rank, size));
}

bool LaunchedByMpi() {
  // The one getenv outside Config: launch detection must work before any Config exists.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

}  // namespace silk::bootstrap
