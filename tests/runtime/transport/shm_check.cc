// A rank of the shared-memory process tests: joins the job with the
// torchrun-style variables, then talks to its peers through
// Communicator::transport() directly.
//
//   shm_check                       every pair (self too) exchanges messages of several sizes,
//                                   checked byte for byte; exits 0 and prints which path carried them
//   shm_check --kill-rank R         rank R streams to every peer and SIGKILLs itself midway;
//                                   the others must fail naming it (exit 3)
//   shm_check --kill-rank R --idle  rank R dies while nothing is in flight; the others must notice
//                                   from the transport's status alone (exit 3)
//
// Exit codes: 0 all correct, 3 the expected failure was seen, 1 anything else.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "runtime/communicator.h"
#include "runtime/transport/routed_transport.h"
#include "runtime/transport/shm/shm_transport.h"

namespace {

using silk::transport::MessageTag;
using silk::transport::RequestPtr;

int Fail(const std::string& what) {
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  return 1;
}

silk::OpDescriptor Descriptor(uint64_t count) {
  silk::OpDescriptor d;
  d.kind = silk::CollectiveKind::kSendRecv;
  d.count = count;
  return d;
}

std::vector<char> Pattern(size_t bytes, int from, int to) {
  std::vector<char> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>((i * 7 + from * 31 + to * 101 + (i >> 16)) & 0xff);
  return data;
}

absl::Time Deadline() { return absl::Now() + absl::Seconds(60); }

// Every rank sends an empty message to every other and waits for theirs.
absl::Status Sync(silk::transport::Transport& t, uint64_t op) {
  static char none[1];
  std::vector<RequestPtr> requests;
  for (int peer = 0; peer < t.size(); ++peer) {
    if (peer == t.rank()) continue;
    requests.push_back(t.Recv(peer, MessageTag{op, 0}, Descriptor(0), none, 0));
    requests.push_back(t.Send(peer, MessageTag{op, 0}, Descriptor(0), none, 0));
  }
  return silk::transport::WaitAll(requests, Deadline());
}

}  // namespace

int main(int argc, char** argv) {
  int kill_rank = -1;
  bool idle = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--kill-rank" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &kill_rank)) return Fail("bad --kill-rank");
    } else if (arg == "--idle") {
      idle = true;
    } else {
      return Fail("unknown argument " + arg);
    }
  }
  auto created = silk::Communicator::CreateDefault();
  if (!created.ok()) return Fail(std::string(created.status().message()));
  silk::Communicator& comm = **created;
  silk::transport::Transport& t = comm.transport();
  const int rank = comm.rank(), size = comm.size();

  // Which path does each peer take?
  auto* routed = dynamic_cast<silk::transport::RoutedTransport*>(&t);
  silk::transport::shm::ShmTransport* shm = nullptr;
  if (routed != nullptr) {
    for (int peer = 0; peer < size; ++peer) {
      auto* path = dynamic_cast<silk::transport::shm::ShmTransport*>(&routed->route(peer));
      if (path == nullptr) return Fail("rank " + std::to_string(peer) + " of this node is not reached by shared memory");
      shm = path;
    }
  }
  if (absl::Status s = Sync(t, 1); !s.ok()) return Fail(std::string(s.message()));

  if (kill_rank >= 0) {
    if (idle) {
      // Every other rank tells the victim it is past the start; the victim
      // dies once it heard from all, while nothing is in flight.
      static char none[1];
      if (rank != kill_rank) {
        t.Send(kill_rank, MessageTag{2, 0}, Descriptor(0), none, 0);
      } else {
        std::vector<RequestPtr> ready;
        for (int peer = 0; peer < size; ++peer) {
          if (peer != rank) ready.push_back(t.Recv(peer, MessageTag{2, 0}, Descriptor(0), none, 0));
        }
        if (absl::Status s = silk::transport::WaitAll(ready, Deadline()); !s.ok()) return Fail(std::string(s.message()));
        std::fprintf(stderr, "rank %d killing itself while idle\n", rank);
        kill(getpid(), SIGKILL);
      }
    }
    if (rank == kill_rank) {
      // Stream 1 MiB messages to every peer, and die in the middle of it.
      std::vector<char> out(1 << 20, 'x');
      for (int i = 0; i < 256; ++i) {
        for (int peer = 0; peer < size; ++peer) {
          if (peer != rank) t.Send(peer, MessageTag{2, static_cast<uint32_t>(i)}, Descriptor(0), out.data(), out.size());
        }
        absl::SleepFor(absl::Milliseconds(1));
        if (i == 32) {
          std::fprintf(stderr, "rank %d killing itself mid-transfer\n", rank);
          kill(getpid(), SIGKILL);
        }
      }
      return Fail("still alive");
    }
    absl::Status status;
    if (idle) {
      absl::Time deadline = Deadline();
      while (comm.status().ok() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
      status = comm.status();
    } else {
      std::vector<char> in(1 << 20);
      std::vector<RequestPtr> requests;
      for (int i = 0; i < 256; ++i) {
        requests.push_back(t.Recv(kill_rank, MessageTag{2, static_cast<uint32_t>(i)}, Descriptor(0), in.data(), in.size()));
      }
      status = silk::transport::WaitAll(requests, Deadline());
    }
    if (status.ok()) return Fail("no error although a rank was killed");
    std::printf("rank %d detected the failure (%s): %s\n", rank, absl::StatusCodeToString(status.code()).c_str(),
                std::string(status.message()).c_str());
    std::fflush(stdout);
    _exit(3);
  }

  const std::vector<size_t> sizes = {0, 1, (1 << 20) + 3, 16 << 20};
  std::vector<std::vector<char>> inbox, outbox;
  std::vector<RequestPtr> requests;
  inbox.reserve(sizes.size() * size);
  for (int peer = 0; peer < size; ++peer) {
    for (size_t s = 0; s < sizes.size(); ++s) {
      inbox.emplace_back(sizes[s] + 1);  // never an empty vector: its data() may be null
      requests.push_back(t.Recv(peer, MessageTag{3 + s, 0}, Descriptor(sizes[s]),
                                inbox.back().data(), sizes[s]));
    }
  }
  for (int peer = 0; peer < size; ++peer) {
    for (size_t s = 0; s < sizes.size(); ++s) {
      outbox.push_back(Pattern(sizes[s], rank, peer));
      requests.push_back(t.Send(peer, MessageTag{3 + s, 0}, Descriptor(sizes[s]),
                                outbox.back().data(), sizes[s]));
    }
  }
  if (absl::Status s = silk::transport::WaitAll(requests, Deadline()); !s.ok()) return Fail(std::string(s.message()));
  size_t index = 0;
  for (int peer = 0; peer < size; ++peer) {
    for (size_t s = 0; s < sizes.size(); ++s) {
      std::vector<char> expected = Pattern(sizes[s], peer, rank);
      if (!std::equal(expected.begin(), expected.end(), inbox[index++].begin())) {
        return Fail("wrong bytes from rank " + std::to_string(peer) + " size " + std::to_string(sizes[s]));
      }
    }
  }
  // Everything between distinct ranks went the expected way.
  uint64_t expected = 0;
  for (size_t s : sizes) expected += s;
  for (int peer = 0; peer < size; ++peer) {
    if (peer == rank) continue;
    if (t.counters(peer).bytes_sent != expected || t.counters(peer).bytes_received != expected) {
      return Fail("counters to rank " + std::to_string(peer) + " do not add up");
    }
    if (shm != nullptr && shm->counters(peer).bytes_sent != expected) {
      return Fail("traffic to rank " + std::to_string(peer) + " did not all go through shared memory");
    }
  }
  if (absl::Status s = Sync(t, 100); !s.ok()) return Fail(std::string(s.message()));
  std::printf("OK rank %d/%d path %s\n", rank, size, shm != nullptr ? "shm" : "tcp");
  return 0;
}
