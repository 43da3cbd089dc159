#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "cluster/netprobe/probe.h"
#include "cluster/realtime.h"

namespace silk::cluster::netprobe {
namespace {

constexpr absl::Duration kConnectionIdleTimeout = absl::Seconds(60);

struct UdpCounts {
  absl::Mutex mutex;
  absl::flat_hash_map<uint64_t, uint64_t> received ABSL_GUARDED_BY(mutex);  // session -> datagrams
};

void ServePingPong(int fd) {
  // The echo is half of every round trip the client times (best effort, as there).
  (void)RunThreadAtRealTimePriority(kProbePriority);
  char message[8];
  while (RecvAll(fd, message, sizeof(message), "ping").ok() && SendAll(fd, message, sizeof(message), "pong").ok()) {
  }
}

void ServeSink(int fd) {
  std::vector<char> buffer(256 << 10);
  std::vector<uint64_t> buckets;
  int64_t first_ns = 0, last_ns = 0;
  uint64_t total = 0;
  while (true) {
    ssize_t got = recv(fd, buffer.data(), buffer.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    int64_t now = NowNs();
    if (total == 0) first_ns = now;
    last_ns = now;
    total += static_cast<uint64_t>(got);
    size_t bucket = static_cast<size_t>(now / kBucketNs - first_ns / kBucketNs);
    if (bucket >= buckets.size()) buckets.resize(bucket + 1, 0);
    buckets[bucket] += static_cast<uint64_t>(got);
  }
  // "first_ns last_ns total_bytes first_bucket n b0 b1 ..."
  std::string reply = absl::StrFormat("%d %d %d %d %d", first_ns, last_ns, total, first_ns / kBucketNs, buckets.size());
  for (uint64_t bytes : buckets) absl::StrAppendFormat(&reply, " %d", bytes);
  reply += '\n';
  (void)SendAll(fd, reply.data(), reply.size(), "sink report");
}

void ServeUdpCount(int fd, UdpCounts* counts) {
  uint64_t session;
  if (!RecvAll(fd, &session, sizeof(session), "udp session id").ok()) return;
  uint64_t received;
  {
    absl::MutexLock lock(&counts->mutex);
    received = counts->received[session];
  }
  std::string reply = absl::StrFormat("%d\n", received);
  (void)SendAll(fd, reply.data(), reply.size(), "udp count");
}

void ServeConnection(int fd, UdpCounts* counts) {
  SetIoTimeout(fd, kConnectionIdleTimeout);
  char mode = 0;
  if (RecvAll(fd, &mode, 1, "probe mode").ok()) {
    if (mode == 'P') ServePingPong(fd);
    if (mode == 'S') ServeSink(fd);
    if (mode == 'U') ServeUdpCount(fd, counts);
  }
  close(fd);
}

void ReceiveUdp(int fd, UdpCounts* counts, const std::atomic<bool>* stop) {
  char datagram[65536];
  while (!stop->load()) {
    ssize_t got = recv(fd, datagram, sizeof(datagram), 0);  // SO_RCVTIMEO bounds the wait
    if (got < static_cast<ssize_t>(sizeof(uint64_t))) continue;
    uint64_t session;
    std::memcpy(&session, datagram, sizeof(session));
    absl::MutexLock lock(&counts->mutex);
    ++counts->received[session];
  }
}

absl::StatusOr<int> Bind(int type, uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    absl::Status status = absl::UnavailableError(
        absl::StrFormat("bind %s port %d: %s", type == SOCK_STREAM ? "TCP" : "UDP", port, std::strerror(errno)));
    if (fd >= 0) close(fd);
    return status;
  }
  return fd;
}

}  // namespace

absl::Status Serve(const ServeOptions& options) {
  auto listener = Bind(SOCK_STREAM, options.port);
  if (!listener.ok()) return listener.status();
  if (listen(*listener, 64) != 0) return absl::UnavailableError(absl::StrFormat("listen: %s", std::strerror(errno)));
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  getsockname(*listener, reinterpret_cast<sockaddr*>(&bound), &length);
  uint16_t port = ntohs(bound.sin_port);
  auto udp = Bind(SOCK_DGRAM, port);
  if (!udp.ok()) return udp.status();
  int buffer = 4 << 20;
  setsockopt(*udp, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  SetIoTimeout(*udp, absl::Milliseconds(200));

  auto* counts = new UdpCounts();  // outlives detached connection threads
  std::atomic<bool> stop{false};
  std::thread udp_thread(ReceiveUdp, *udp, counts, &stop);
  std::printf("ready %d\n", port);
  std::fflush(stdout);

  int64_t deadline = NowNs() + absl::ToInt64Nanoseconds(options.lifetime);
  while (NowNs() < deadline) {
    pollfd waiting{*listener, POLLIN, 0};
    if (poll(&waiting, 1, 200) <= 0) continue;
    int fd = accept4(*listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) std::thread(ServeConnection, fd, counts).detach();
  }
  stop = true;
  udp_thread.join();
  close(*listener);
  close(*udp);
  return absl::OkStatus();
}

}  // namespace silk::cluster::netprobe
