#include "runtime/transport/shm/link.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/socket.h"
#include "runtime/core/status_macros.h"

namespace silk::transport::shm {
namespace {

// What the higher rank sends with the segment's descriptor.
constexpr uint64_t kOffer = kSegmentMagic;

absl::Status Errno(const std::string& what) {
  int err = errno;
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, std::strerror(err)));
}

socklen_t AbstractAddress(const std::string& name, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  size_t length = std::min(name.size(), sizeof(addr->sun_path) - 1);
  std::memcpy(addr->sun_path + 1, name.data(), length);  // sun_path[0] == 0: the abstract namespace
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}

absl::Status SendWithFd(int socket, const void* data, size_t bytes, int fd, absl::Time deadline) {
  char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{const_cast<void*>(data), bytes};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  while (true) {
    ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes)) return absl::OkStatus();
    if (n >= 0) return absl::UnavailableError("the segment offer was cut short");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("passing the segment");
    SILK_RETURN_IF_ERROR(Prefixed(WaitReady(socket, POLLOUT, deadline), "passing the segment: "));
  }
}

// Reads exactly `bytes`; the descriptor, if any, rides on the first of them.
absl::Status ReceiveWithFd(int socket, void* data, size_t bytes, ScopedFd* fd, absl::Time deadline) {
  size_t done = 0;
  while (done < bytes) {
    char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    iovec iov{static_cast<char*>(data) + done, bytes - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("receiving the segment");
      SILK_RETURN_IF_ERROR(Prefixed(WaitReady(socket, POLLIN, deadline), "waiting for the segment: "));
      continue;
    }
    if (n == 0) return absl::UnavailableError("the peer closed the connection before passing the segment");
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (!fd->valid()) {
          fd->reset(received);
        } else {
          ::close(received);  // only one is expected
        }
      }
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

std::string SocketName(uint64_t job_id, int rank) { return absl::StrFormat("silk-shm-%016x-%d", job_id, rank); }

absl::StatusOr<ScopedFd> ListenLocal(const std::string& name) {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Errno("socket(AF_UNIX)");
  sockaddr_un addr;
  socklen_t length = AbstractAddress(name, &addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), length) < 0) {
    return Errno(absl::StrFormat("binding the abstract socket @%s (another process of a job with this id?)", name));
  }
  if (::listen(fd.get(), 64) < 0) return Errno("listen(AF_UNIX)");
  return fd;
}

absl::StatusOr<ScopedFd> ConnectLocal(const std::string& name, absl::Time deadline) {
  sockaddr_un addr;
  socklen_t length = AbstractAddress(name, &addr);
  absl::Duration backoff = absl::Milliseconds(1);
  std::string last_error = "no attempt";
  while (true) {
    ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Errno("socket(AF_UNIX)");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), length) == 0) return fd;
    // Refused: nobody listens yet. Try again: the peer may still be on its way.
    if (errno != ECONNREFUSED && errno != ENOENT && errno != EAGAIN) {
      return Errno(absl::StrFormat("connecting to @%s", name));
    }
    last_error = std::strerror(errno);
    if (absl::Now() + backoff >= deadline) break;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("nobody listened on @%s before the deadline (last error: %s)", name, last_error));
}

pid_t PeerPid(int socket) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return 0;
  return credentials.pid;
}

absl::StatusOr<Link> ConnectLink(uint64_t job_id, int peer, const HandshakeParams& params, uint64_t ring_bytes,
                                 absl::Time deadline) {
  Link link;
  link.peer = peer;
  SILK_ASSIGN_OR_RETURN(link.socket, ConnectLocal(SocketName(job_id, peer), deadline));
  link.pid = PeerPid(link.socket.get());
  SILK_RETURN_IF_ERROR(ClientHandshake(link.socket.get(), params, peer, /*lane=*/0, deadline));
  SILK_ASSIGN_OR_RETURN(link.segment,
                        Segment::Create(absl::StrFormat("silk-shm-%d-%d", peer, params.rank), ring_bytes));
  SILK_RETURN_IF_ERROR(SendWithFd(link.socket.get(), &kOffer, sizeof(kOffer), link.segment.fd(), deadline));
  SILK_ASSIGN_OR_RETURN(std::string answer, ReadMessageFrame(link.socket.get(), deadline));
  if (!answer.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat("rank %d refused the shared memory: %s", peer, answer));
  }
  link.segment.CloseFd();  // both sides have it mapped: only the mappings keep it alive now
  return link;
}

absl::StatusOr<Link> AcceptLink(ScopedFd socket, int peer, absl::Time deadline) {
  Link link;
  link.socket = std::move(socket);
  link.pid = PeerPid(link.socket.get());
  link.peer = peer;
  uint64_t offer = 0;
  ScopedFd fd;
  SILK_RETURN_IF_ERROR(ReceiveWithFd(link.socket.get(), &offer, sizeof(offer), &fd, deadline));
  absl::Status mapped;
  if (offer != kOffer || !fd.valid()) {
    mapped = absl::InvalidArgumentError(absl::StrFormat("rank %d sent no shared-memory segment", link.peer));
  } else {
    absl::StatusOr<Segment> segment = Segment::Map(std::move(fd));
    if (segment.ok()) {
      link.segment = std::move(*segment);
      link.segment.CloseFd();
    } else {
      mapped = segment.status();
    }
  }
  SILK_RETURN_IF_ERROR(
      WriteMessageFrame(link.socket.get(), mapped.ok() ? "" : std::string(mapped.message()), deadline));
  SILK_RETURN_IF_ERROR(mapped);
  return link;
}

}  // namespace silk::transport::shm
