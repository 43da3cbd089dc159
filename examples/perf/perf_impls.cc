#include "examples/perf/perf_impls.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/core/config.h"
#include "runtime/transport/socket.h"

namespace silk_perf {

absl::StatusOr<std::unique_ptr<Job>> Job::Start(const Flags& flags) {
  auto job = std::unique_ptr<Job>(new Job());
  job->mpi_ = silk::bootstrap::LaunchedByMpi();
  if (job->mpi_) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &job->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &job->size_);
  }
  const bool wants_silk = std::find(flags.impls.begin(), flags.impls.end(), "silk") != flags.impls.end();
  if (wants_silk || !job->mpi_) {
    auto config = silk::Config::FromEnvironment();
    if (!config.ok()) return config.status();
    if (flags.lanes > 0) config->lanes = flags.lanes;
    auto comm =
        job->mpi_ ? silk::Communicator::CreateFromMpi(*config) : silk::Communicator::CreateFromEnvironment(*config);
    if (!comm.ok()) return comm.status();
    job->comm_ = std::move(*comm);
    job->rank_ = job->comm_->rank();
    job->size_ = job->comm_->size();
  }
  return job;
}

Job::~Job() {
  comm_.reset();  // Silk's MPI bootstrap is done with MPI before it is finalised
  if (mpi_) MPI_Finalize();
}

absl::Status Job::Barrier() {
  if (mpi_) return MpiStatus(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  return silk::Barrier(*comm_);
}

template <typename T>
absl::StatusOr<T> Job::ReduceOne(T value, MPI_Datatype mpi_type, MPI_Op mpi_op, DataType type, ReduceOp op) {
  if (mpi_) {
    T result{};
    if (auto s = MpiStatus(MPI_Allreduce(&value, &result, 1, mpi_type, mpi_op, MPI_COMM_WORLD), "MPI_Allreduce");
        !s.ok()) {
      return s;
    }
    return result;
  }
  if (auto s = silk::Allreduce(*comm_, {&value, &value, 1, type, op, {}, ""}); !s.ok()) return s;
  return value;
}

absl::StatusOr<double> Job::Max(double value) {
  return ReduceOne(value, MPI_DOUBLE, MPI_MAX, DataType::kFloat64, ReduceOp::kMax);
}

absl::StatusOr<int64_t> Job::Sum(int64_t value) {
  return ReduceOne(value, MPI_INT64_T, MPI_SUM, DataType::kInt64, ReduceOp::kSum);
}

void Job::Die(const absl::Status& status) {
  std::fprintf(stderr, "allreduce_perf: FAILED on rank %d: %s\n", rank_, std::string(status.message()).c_str());
  std::fflush(stderr);
  if (comm_) comm_->Abort(status);
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1);
}

absl::Status Job::MpiStatus(int code, const char* what) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::string(text, length)));
}

SilkImpl::SilkImpl(silk::Communicator* comm, std::string algorithm, silk::Compression compression, bool within_region)
    : comm_(comm),
      algorithm_(std::move(algorithm)),
      compression_(compression),
      within_region_(within_region),
      name_(compression == silk::Compression::kNone ? "silk"
                                                    : std::string("silk-") + silk::CompressionName(compression)) {}

absl::Status SilkImpl::Start(const Call& c) {
  if (blocking_) return RunBlocking(c);
  absl::StatusOr<silk::WorkPtr> work;
  switch (c.collective) {
    case Collective::kAllreduce: {
      work = silk::AllreduceAsync(*comm_, AllreduceOptionsFor(c));
      break;
    }
    case Collective::kReduceScatter:
      work = silk::ReduceScatterAsync(*comm_, {c.input, c.output, c.count, c.type, c.redop, {}, algorithm_});
      break;
    case Collective::kAllgather:
      work = silk::AllgatherAsync(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
      break;
    case Collective::kBroadcast:
      work = silk::BroadcastAsync(*comm_, {c.input, c.output, c.count, c.type, c.root, {}, algorithm_});
      break;
    case Collective::kReduce:
      work = silk::ReduceAsync(*comm_, {c.input, c.output, c.count, c.type, c.redop, c.root, {}, algorithm_});
      break;
    case Collective::kAlltoall:
      work = silk::AlltoallAsync(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
      break;
    case Collective::kBarrier: work = silk::BarrierAsync(*comm_, {{}, algorithm_}); break;
  }
  if (!work.ok()) return work.status();
  pending_.push_back(*work);
  return absl::OkStatus();
}

absl::Status SilkImpl::Finish() {
  absl::Status first;
  for (const auto& work : pending_) first.Update(work->Wait());
  pending_.clear();
  return first;
}

silk::AllreduceOptions SilkImpl::AllreduceOptionsFor(const Call& c) const {
  silk::AllreduceOptions o{c.input, c.output, c.count, c.type, c.redop, {}, algorithm_};
  o.wan_compression = compression_;
  o.within_region = within_region_;
  return o;
}

absl::Status SilkImpl::RunBlocking(const Call& c) {
  switch (c.collective) {
    case Collective::kAllreduce: return silk::Allreduce(*comm_, AllreduceOptionsFor(c));
    case Collective::kReduceScatter:
      return silk::ReduceScatter(*comm_, {c.input, c.output, c.count, c.type, c.redop, {}, algorithm_});
    case Collective::kAllgather:
      return silk::Allgather(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
    case Collective::kBroadcast:
      return silk::Broadcast(*comm_, {c.input, c.output, c.count, c.type, c.root, {}, algorithm_});
    case Collective::kReduce:
      return silk::Reduce(*comm_, {c.input, c.output, c.count, c.type, c.redop, c.root, {}, algorithm_});
    case Collective::kAlltoall:
      return silk::Alltoall(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
    case Collective::kBarrier: return silk::Barrier(*comm_, {{}, algorithm_});
  }
  return absl::InternalError("unknown collective");
}

std::string MpiImpl::Unsupported(const Flags& flags) const {
  const bool half = flags.type == DataType::kFloat16 || flags.type == DataType::kBFloat16;
  if (Reduces(flags.collective) && half) {
    return absl::StrFormat("MPI has no %s type to reduce", TypeName(flags.type));
  }
  if (Reduces(flags.collective) && flags.redop == ReduceOp::kAvg) return "MPI has no avg reduction";
  return "";
}

absl::Status MpiImpl::Start(const Call& c) {
  const MPI_Datatype type = MpiType(c.type);
  const int count = static_cast<int>(c.count);
  const void* send = c.in_place ? MPI_IN_PLACE : c.input;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int code = MPI_SUCCESS;
  switch (c.collective) {
    case Collective::kAllreduce:
      code = MPI_Allreduce(send, c.output, count, type, MpiOp(c.redop), MPI_COMM_WORLD);
      break;
    case Collective::kReduceScatter:
      code = MPI_Reduce_scatter_block(send, c.output, count, type, MpiOp(c.redop), MPI_COMM_WORLD);
      break;
    case Collective::kAllgather:
      code = MPI_Allgather(send, count, type, c.output, count, type, MPI_COMM_WORLD);
      break;
    case Collective::kAlltoall: code = MPI_Alltoall(send, count, type, c.output, count, type, MPI_COMM_WORLD); break;
    case Collective::kBroadcast:
      // MPI broadcasts in one buffer: out of place, the root first copies its input there (as Silk does).
      if (rank == c.root && !c.in_place && count > 0) {
        std::memcpy(c.output, c.input, c.count * silk::DataTypeSize(c.type));
      }
      code = MPI_Bcast(c.output, count, type, c.root, MPI_COMM_WORLD);
      break;
    case Collective::kReduce:
      code = MPI_Reduce(c.in_place && rank != c.root ? c.input : send, c.output, count, type, MpiOp(c.redop), c.root,
                        MPI_COMM_WORLD);
      break;
    case Collective::kBarrier: code = MPI_Barrier(MPI_COMM_WORLD); break;
  }
  return Job::MpiStatus(code, CollectiveName(c.collective));
}

MPI_Datatype MpiImpl::MpiType(DataType t) {
  switch (t) {
    case DataType::kFloat32: return MPI_FLOAT;
    case DataType::kFloat64: return MPI_DOUBLE;
    case DataType::kInt8: return MPI_INT8_T;
    case DataType::kUint8: return MPI_UINT8_T;
    case DataType::kInt32: return MPI_INT32_T;
    case DataType::kInt64: return MPI_INT64_T;
    default: return MPI_UINT16_T;  // 16-bit floats, moved but never reduced
  }
}

MPI_Op MpiImpl::MpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kProd: return MPI_PROD;
    case ReduceOp::kMin: return MPI_MIN;
    case ReduceOp::kMax: return MPI_MAX;
    default: return MPI_SUM;
  }
}

#ifdef SILK_HAVE_GLOO
std::string GlooImpl::Unsupported(const Flags& flags) const {
  if (flags.collective != Collective::kAllreduce) return "the Gloo baseline runs all-reduce only";
  if (flags.type == DataType::kFloat16 || flags.type == DataType::kBFloat16) return "no 16-bit floats in the baseline";
  return "";
}

absl::Status GlooImpl::Connect(Job& job) {
  if (!job.mpi()) return absl::InvalidArgumentError("--impl gloo needs a launch by mpirun");
  // Without --impl silk there is no communicator: the same settings from the environment.
  absl::StatusOr<silk::Config> config =
      job.comm() != nullptr ? absl::StatusOr<silk::Config>(job.comm()->config()) : silk::Config::FromEnvironment();
  if (!config.ok()) return config.status();
  auto address = silk::LocalIpv4Address(config->socket_ifname);
  if (!address.ok()) return address.status();
  // Rank 0's store address reaches the others through MPI.
  char host[64] = {};
  int port = 0;
  if (job.rank() == 0) {
    auto store = silk::perf::HostedStore::Start();
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    port = store_->port();
    std::snprintf(host, sizeof(host), "%s", address->c_str());
  }
  MPI_Bcast(host, sizeof(host), MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(&port, 1, MPI_INT, 0, MPI_COMM_WORLD);
  auto gloo = silk::perf::GlooBaseline::Connect(job.rank(), job.size(), host, static_cast<uint16_t>(port), *address,
                                                 config->timeout);
  if (!gloo.ok()) return gloo.status();
  gloo_ = std::move(*gloo);
  return absl::OkStatus();
}

absl::Status GlooImpl::Start(const Call& c) {
  const size_t bytes = c.count * silk::DataTypeSize(c.type);
  if (c.input != c.output && bytes > 0) std::memcpy(c.output, c.input, bytes);
  status_.Update(gloo_->Allreduce(c.output, c.count, c.type, c.redop));
  return absl::OkStatus();
}

absl::Status GlooImpl::Finish() {
  absl::Status s = status_;
  status_ = absl::OkStatus();
  return s;
}
#endif

}  // namespace silk_perf
