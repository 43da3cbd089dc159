// Shared memory against loopback TCP between two processes of this machine:
// the same program, the same messages, one after the other.
//
//   shm_transport_bench [--sizes 1,4,16,64] [--megabytes 512] [--repeat 3] [--lanes 2]
//                       [--ring-kb 4096] [--piece-kb 256] [--spin-us 50]
//
// The process forks a second rank before it starts any thread. For each size
// (MiB) it reports one direction (rank 0 streams to rank 1, every receive
// posted first) and both directions at once, in GB/s (10^9 bytes per second of
// payload, per direction), and the one-way latency of an 8-byte ping-pong.
// Each figure is the best of --repeat runs: on a shared machine the others
// mostly measure the neighbours.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "runtime/transport/shm/shm_transport.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace {

using silk::OpDescriptor;
using silk::transport::MessageTag;
using silk::transport::RequestPtr;
using silk::transport::Transport;

struct Flags {
  std::vector<int> sizes_mib = {1, 4, 16, 64};
  int megabytes = 512;  // streamed per size and direction
  int repeat = 3;
  int lanes = 2;
  uint64_t ring_kb = 4096, piece_kb = 256, spin_us = 50;
};

OpDescriptor Descriptor() {
  OpDescriptor d;
  d.kind = silk::CollectiveKind::kSendRecv;
  return d;
}

absl::Time Deadline() { return absl::Now() + absl::Seconds(60); }

bool Check(const absl::Status& status, const char* what) {
  if (status.ok()) return true;
  std::fprintf(stderr, "%s failed: %s\n", what, std::string(status.message()).c_str());
  return false;
}

// Both ranks call this; tags come from `op`, which both advance alike.
class Runner {
 public:
  Runner(Transport& t, uint64_t* op) : t_(t), op_(op), peer_(1 - t.rank()) {}

  bool Sync() {
    char in = 0, out = 1;
    uint64_t op = (*op_)++;
    auto r = t_.Recv(peer_, MessageTag{op, 0}, Descriptor(), &in, 1);
    auto s = t_.Send(peer_, MessageTag{op, 0}, Descriptor(), &out, 1);
    return Check(s->Wait(Deadline()), "sync send") && Check(r->Wait(Deadline()), "sync receive");
  }

  // Seconds to move `count` messages of `bytes` from rank 0 to rank 1 (and back too when `both`).
  double Stream(std::vector<char>& out, std::vector<char>& in, size_t bytes, int count, bool both) {
    uint64_t op = (*op_)++;
    std::vector<RequestPtr> requests;
    const bool receives = both || t_.rank() == 1, sends = both || t_.rank() == 0;
    if (receives) {
      for (int i = 0; i < count; ++i) {
        requests.push_back(t_.Recv(peer_, MessageTag{op, static_cast<uint32_t>(i)}, Descriptor(), in.data(), bytes));
      }
    }
    if (!Sync()) return -1;
    absl::Time start = absl::Now();
    if (sends) {
      for (int i = 0; i < count; ++i) {
        requests.push_back(t_.Send(peer_, MessageTag{op, static_cast<uint32_t>(i)}, Descriptor(), out.data(), bytes));
      }
    }
    if (!Check(silk::transport::WaitAll(requests, Deadline()), "stream")) return -1;
    if (!Sync()) return -1;  // the clock stops when both sides have everything
    return absl::ToDoubleSeconds(absl::Now() - start);
  }

  double PingPongMicros(int rounds) {
    uint64_t op = (*op_)++;
    char buffer[8] = {};
    if (!Sync()) return -1;
    absl::Time start = absl::Now();
    for (int i = 0; i < rounds; ++i) {
      MessageTag ping{op, static_cast<uint32_t>(2 * i)}, pong{op, static_cast<uint32_t>(2 * i + 1)};
      if (t_.rank() == 0) {
        auto r = t_.Recv(peer_, pong, Descriptor(), buffer, 8);
        t_.Send(peer_, ping, Descriptor(), buffer, 8)->Wait(Deadline()).IgnoreError();
        if (!Check(r->Wait(Deadline()), "pong")) return -1;
      } else {
        if (!Check(t_.Recv(peer_, ping, Descriptor(), buffer, 8)->Wait(Deadline()), "ping")) return -1;
        t_.Send(peer_, pong, Descriptor(), buffer, 8)->Wait(Deadline()).IgnoreError();
      }
    }
    return absl::ToDoubleMicroseconds(absl::Now() - start) / rounds / 2;
  }

 private:
  Transport& t_;
  uint64_t* op_;
  const int peer_;
};

int RunRank(int rank, int read_fd, int write_fd, uint64_t job, const Flags& flags) {
  using namespace silk::transport;
  tcp::TcpOptions tcp_options;
  tcp_options.lanes = flags.lanes;
  auto tcp = tcp::TcpTransport::Listen(rank, 2, tcp_options);
  if (!Check(tcp.status(), "listen")) return 1;
  uint16_t mine = (*tcp)->port(), theirs = 0;
  if (write(write_fd, &mine, sizeof(mine)) != sizeof(mine) || read(read_fd, &theirs, sizeof(theirs)) != sizeof(theirs)) {
    return 1;
  }
  std::vector<tcp::PeerEndpoint> endpoints(2);
  endpoints[1 - rank].host = "127.0.0.1";
  endpoints[1 - rank].port = theirs;
  if (!Check((*tcp)->Connect(endpoints, job, "bench", Deadline()), "tcp connect")) return 1;
  shm::ShmOptions shm_options;
  shm_options.ring_bytes = flags.ring_kb << 10;
  shm_options.piece_bytes = flags.piece_kb << 10;
  shm_options.spin = absl::Microseconds(flags.spin_us);
  auto shm = shm::ShmTransport::Create(rank, 2, {0, 1}, job, "bench", shm_options, Deadline());
  if (!Check(shm.status(), "shm create")) return 1;

  size_t largest = 0;
  for (int mib : flags.sizes_mib) largest = std::max(largest, size_t(mib) << 20);
  std::vector<char> out(largest, 'x'), in(largest, 0);  // touched: no page faults in the timings
  uint64_t op = 1;
  if (rank == 0) {
    std::printf("two processes, %d TCP lanes; shm rings %d KiB, pieces %d KiB, spin %d us; best of %d\n",
                flags.lanes, static_cast<int>(flags.ring_kb), static_cast<int>(flags.piece_kb),
                static_cast<int>(flags.spin_us), flags.repeat);
    std::printf("%-10s %8s %10s %14s %14s\n", "transport", "MiB", "messages", "one-way GB/s", "both-ways GB/s");
  }
  for (Transport* t : {static_cast<Transport*>(tcp->get()), static_cast<Transport*>(shm->get())}) {
    const char* name = t == tcp->get() ? "tcp" : "shm";
    Runner runner(*t, &op);
    for (int mib : flags.sizes_mib) {
      size_t bytes = size_t(mib) << 20;
      int count = std::max(4, flags.megabytes / mib);
      if (runner.Stream(out, in, bytes, 1, true) < 0) return 1;  // warm-up
      double one = 1e30, both = 1e30;
      for (int i = 0; i < flags.repeat; ++i) {
        double a = runner.Stream(out, in, bytes, count, false);
        double b = runner.Stream(out, in, bytes, count, true);
        if (a < 0 || b < 0) return 1;
        one = std::min(one, a);
        both = std::min(both, b);
      }
      if (rank == 0) {
        std::printf("%-10s %8d %10d %14.2f %14.2f\n", name, mib, count, bytes * count / one / 1e9,
                    bytes * count / both / 1e9);
      }
    }
    double latency = 1e30;
    for (int i = 0; i < flags.repeat; ++i) {
      double l = runner.PingPongMicros(2000);
      if (l < 0) return 1;
      latency = std::min(latency, l);
    }
    if (rank == 0) std::printf("%-10s 8-byte one-way latency: %.1f us\n", name, latency);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--sizes") {
      flags.sizes_mib.clear();
      for (auto piece : absl::StrSplit(value, ',')) {
        int mib = 0;
        ok = ok && absl::SimpleAtoi(piece, &mib) && mib > 0;
        flags.sizes_mib.push_back(mib);
      }
    } else if (flag == "--megabytes") {
      ok = absl::SimpleAtoi(value, &flags.megabytes);
    } else if (flag == "--repeat") {
      ok = absl::SimpleAtoi(value, &flags.repeat) && flags.repeat > 0;
    } else if (flag == "--lanes") {
      ok = absl::SimpleAtoi(value, &flags.lanes);
    } else if (flag == "--ring-kb") {
      ok = absl::SimpleAtoi(value, &flags.ring_kb);
    } else if (flag == "--piece-kb") {
      ok = absl::SimpleAtoi(value, &flags.piece_kb);
    } else if (flag == "--spin-us") {
      ok = absl::SimpleAtoi(value, &flags.spin_us);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad flag %s %s\n", flag.c_str(), value.c_str());
      return 2;
    }
  }
  uint64_t job;
  std::string random = silk::transport::RandomBytes(sizeof(job));
  std::memcpy(&job, random.data(), sizeof(job));
  int to_child[2], to_parent[2];
  if (pipe(to_child) != 0 || pipe(to_parent) != 0) return 1;
  pid_t child = fork();  // before any thread exists
  if (child < 0) return 1;
  if (child == 0) {
    close(to_child[1]);
    close(to_parent[0]);
    _exit(RunRank(1, to_child[0], to_parent[1], job, flags));
  }
  close(to_child[0]);
  close(to_parent[1]);
  int result = RunRank(0, to_parent[0], to_child[1], job, flags);
  int status = 0;
  waitpid(child, &status, 0);
  return result != 0 ? result : (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}
