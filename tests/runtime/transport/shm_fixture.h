// Builds N ShmTransports in this process, each rank a thread, joined exactly as
// separate processes would be (abstract sockets, handshake, passed segments).
#pragma once

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/transport/shm/shm_transport.h"
#include "runtime/transport/handshake.h"

namespace silk::transport::shm {

// A job id no other test (or concurrently running test binary) uses.
inline uint64_t FreshJobId() {
  uint64_t id;
  std::string random = RandomBytes(sizeof(id));
  std::memcpy(&id, random.data(), sizeof(id));
  return id;
}

// Joins ranks `local` (all of 0..n-1 when empty) of a world of `n`; the others get no transport.
inline std::vector<std::unique_ptr<ShmTransport>> JoinShm(int n, const ShmOptions& options = {},
                                                          std::vector<int> local = {}, uint64_t job_id = 0,
                                                          const std::string& token = "token") {
  if (local.empty()) {
    for (int r = 0; r < n; ++r) local.push_back(r);
  }
  if (job_id == 0) job_id = FreshJobId();
  std::vector<std::unique_ptr<ShmTransport>> transports(n);
  std::vector<absl::Status> results(n);
  std::vector<std::thread> threads;
  for (int r : local) {
    threads.emplace_back([&, r] {
      auto t = ShmTransport::Create(r, n, local, job_id, token, options, absl::Now() + absl::Seconds(20));
      if (t.ok()) {
        transports[r] = std::move(*t);
      } else {
        results[r] = t.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r : local) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  for (int r : local) {
    if (!results[r].ok()) return {};
  }
  return transports;
}

inline OpDescriptor ShmTestDescriptor(uint64_t count = 0) {
  OpDescriptor d;
  d.kind = CollectiveKind::kSendRecv;
  d.count = count;
  return d;
}

// Lines of /proc/self/maps and link targets of /proc/self/fd that name a Silk segment.
inline int SilkSegmentsInThisProcess() {
  int found = 0;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) found += line.find("memfd:silk-shm") != std::string::npos;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    char target[512] = {};
    ssize_t n = readlink(entry.path().c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::string(target, n).find("memfd:silk-shm") != std::string::npos) found++;
  }
  return found;
}

}  // namespace silk::transport::shm
