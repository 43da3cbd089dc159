// Bootstrap: how ranks of one job find each other before Silk's own transport
// exists. It is used once, at communicator creation, to exchange listening
// addresses, host names, regions and the job's credentials; after that every
// byte travels on Silk's transport.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace silk {
struct Config;
}

namespace silk::bootstrap {

class Bootstrap {
 public:
  virtual ~Bootstrap() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank contributes `mine`; returns all contributions indexed by rank.
  // Fails (never hangs) when a rank does not contribute within `timeout`.
  virtual absl::StatusOr<std::vector<std::string>> AllGather(const std::string& mine,
                                                             absl::Duration timeout) = 0;
  // Short description for messages, e.g. "mpi" or "tcp-store 10.0.0.1:29500".
  virtual std::string Describe() const = 0;
};

// Bootstrap through MPI_COMM_WORLD (initialises MPI when the program has not,
// and finalises it at exit in that case). Needs a build with MPI.
absl::StatusOr<std::unique_ptr<Bootstrap>> CreateMpiBootstrap();

// Bootstrap from torchrun's variables (MASTER_ADDR, MASTER_PORT, RANK,
// WORLD_SIZE) already read into `config`: rank 0 hosts a TCP store on
// MASTER_PORT (on MASTER_ADDR when that is a loopback address, else on every
// interface) and every rank, rank 0 included, connects to it, waiting up to
// `config.StartupTimeout()` for rank 0 to come up. Missing variables are an
// InvalidArgument that names them.
absl::StatusOr<std::unique_ptr<Bootstrap>> CreateEnvBootstrap(const Config& config);

// True when the process was started by mpirun (OpenMPI's or PMIx's variables are set).
bool LaunchedByMpi();

}  // namespace silk::bootstrap
