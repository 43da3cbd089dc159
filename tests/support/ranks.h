// Runs a function on N ranks in this process, each a thread with its own
// Communicator joined over loopback TCP through a real TcpStore, exactly as
// separate processes would be.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/communicator.h"
#include "runtime/core/config.h"

namespace silk::testing {

// A Config suitable for tests: short timeout, given lane count.
// Loopback settings for in-process ranks; the start-up tier probe is off.
Config TestConfig(int lanes = 2, absl::Duration timeout = absl::Seconds(60));

// Creates `n` communicators concurrently (the store lives until they are all created).
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateCommunicators(int n, const Config& config);
// The same with a Config per rank (e.g. SILK_REGION differing by rank).
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateCommunicators(
    int n, const std::function<Config(int rank)>& config_for_rank);

// Runs body(comm) on every rank concurrently and joins; returns each rank's result.
std::vector<absl::Status> RunOnRanks(std::vector<std::unique_ptr<Communicator>>& comms,
                                     const std::function<absl::Status(Communicator&)>& body);

// CreateCommunicators + RunOnRanks; the first failure, prefixed with its rank, or OK.
absl::Status RunRanks(int n, const Config& config, const std::function<absl::Status(Communicator&)>& body);

// The pacing rate of each TCP lane from `comm` to `peer` (through a routed
// transport's route to it); empty when `peer` is not reached over TCP.
std::vector<uint64_t> LanePacingRates(Communicator& comm, int peer);

}  // namespace silk::testing
