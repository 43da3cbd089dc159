// The implementations allreduce_perf times on the same buffers: Silk's
// collectives (SilkImpl), OpenMPI's (MpiImpl) and Gloo's ring all-reduce
// (GlooImpl, when this build has Gloo), behind one interface (Impl), and the
// job they run in (Job: MPI when mpirun launched it, Silk's communicator).
#pragma once

#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collectives/collectives.h"
#include "examples/perf/perf_data.h"
#include "examples/perf/perf_flags.h"
#include "runtime/communicator.h"
#ifdef SILK_HAVE_GLOO
#include "examples/perf/gloo_baseline.h"
#endif

namespace silk_perf {

// One call, as either implementation receives it.
struct Call {
  Collective collective;
  const void* input;
  void* output;
  bool in_place;
  size_t count;
  DataType type;
  ReduceOp redop;
  int root;
};

// The job as this tool sees it: MPI when mpirun launched it, Silk's communicator when needed.
class Job {
 public:
  static absl::StatusOr<std::unique_ptr<Job>> Start(const Flags& flags);

  ~Job();

  bool mpi() const { return mpi_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  silk::Communicator* comm() { return comm_.get(); }

  absl::Status Barrier();
  absl::StatusOr<double> Max(double value);
  absl::StatusOr<int64_t> Sum(int64_t value);
  // Ends the job on every rank now: a rank that failed must not leave the others waiting.
  [[noreturn]] void Die(const absl::Status& status);

  static absl::Status MpiStatus(int code, const char* what);

 private:
  Job() = default;
  // `value` reduced over every rank, by MPI or by Silk (in place, one value).
  template <typename T>
  absl::StatusOr<T> ReduceOne(T value, MPI_Datatype mpi_type, MPI_Op mpi_op, DataType type, ReduceOp op);
  bool mpi_ = false;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<silk::Communicator> comm_;
};

// An implementation of the collectives under test.
class Impl {
 public:
  virtual ~Impl() = default;
  virtual const char* name() const = 0;
  // Why this configuration cannot run ("" if it can).
  virtual std::string Unsupported(const Flags& flags) const { return ""; }
  // Where the result of an in-place call starts in the buffer.
  virtual size_t InPlaceOutput(const Layout& layout, Collective c) const { return layout.in_place_recv; }
  // Starts a call; Finish waits for every call started since the last Finish.
  virtual absl::Status Start(const Call& call) = 0;
  virtual absl::Status Finish() = 0;
};

class SilkImpl : public Impl {
 public:
  SilkImpl(silk::Communicator* comm, std::string algorithm, silk::Compression compression = silk::Compression::kNone,
           bool within_region = false);
  const char* name() const override { return name_.c_str(); }
  silk::Compression compression() const { return compression_; }

  absl::Status Start(const Call& c) override;
  absl::Status Finish() override;

  // --blocking 1: the blocking calls, one at a time, as MPI's and Gloo's are timed.
  void set_blocking(bool blocking) { blocking_ = blocking; }

 private:
  silk::AllreduceOptions AllreduceOptionsFor(const Call& c) const;
  absl::Status RunBlocking(const Call& c);

  bool blocking_ = true;
  silk::Communicator* comm_;
  std::string algorithm_;
  silk::Compression compression_;
  bool within_region_;
  std::string name_;
  std::vector<silk::WorkPtr> pending_;
};

class MpiImpl : public Impl {
 public:
  const char* name() const override { return "mpi"; }

  std::string Unsupported(const Flags& flags) const override;
  // MPI_Reduce_scatter_block with MPI_IN_PLACE leaves the result at the start of the buffer.
  size_t InPlaceOutput(const Layout& layout, Collective c) const override {
    return c == Collective::kReduceScatter ? 0 : layout.in_place_recv;
  }

  absl::Status Start(const Call& c) override;
  absl::Status Finish() override { return absl::OkStatus(); }

 private:
  static MPI_Datatype MpiType(DataType t);
  static MPI_Op MpiOp(ReduceOp op);
};

#ifdef SILK_HAVE_GLOO
// Gloo's ring all-reduce on the same buffers (all-reduce only); its ranks meet
// through a Silk TCP store that rank 0 hosts and MPI announces.
class GlooImpl : public Impl {
 public:
  const char* name() const override { return "gloo"; }
  std::string Unsupported(const Flags& flags) const override;
  absl::Status Connect(Job& job);
  absl::Status Start(const Call& c) override;
  absl::Status Finish() override;

 private:
  std::unique_ptr<silk::perf::HostedStore> store_;
  std::unique_ptr<silk::perf::GlooBaseline> gloo_;
  absl::Status status_;
};
#endif

}  // namespace silk_perf
