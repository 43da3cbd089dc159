// The progress thread's side of resumable lanes (peer.h, resend_buffer.h):
// what each lane to a monitored peer records of its stream, the acks that
// let the sender drop what arrived, and the switch to a replacement
// connection after a cut.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/transport/tcp/progress_thread.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace silk::transport::tcp {
namespace {

constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
// The receiver confirms at least this often in bytes (and every liveness
// tick), so the sender holds little more than what is in flight.
constexpr uint64_t kAckEveryBytes = uint64_t{1} << 20;

}  // namespace

void ProgressThread::Resume(Lane* lane, ScopedFd fd) {
  Peer* peer = lane->peer;
  if (transport_->failed() || saying_goodbye_) return;  // the replacement is dropped
  absl::Status watched;
  {
    absl::MutexLock pacing(&peer->pacing_mu);  // BeginPacing reads lane->fd under it
    absl::MutexLock lock(&peer->send_mu);
    if (lane->closed || lane->goodbye_sent || lane->goodbye_received) return;
    if (peer->pacing_per_lane > 0) SetMaxPacingRate(fd.get(), peer->pacing_per_lane).IgnoreError();
    loop_.Unwatch(lane->fd.get());
    lane->replaced.push_back(std::move(lane->fd));
    lane->fd = std::move(fd);
    lane->address = PeerAddress(lane->fd.get());
    FrameHeader resume;
    resume.type = FrameType::kResume;
    resume.offset = lane->received;
    lane->resume_out.assign(reinterpret_cast<const char*>(&resume), sizeof(resume));
    lane->resume_out_done = 0;
    lane->awaiting_resume = true;
    lane->resume_in_got = 0;
    lane->want_write = true;
    watched = loop_.Watch(lane->fd.get(), kReadEvents | EPOLLOUT, lane);
  }
  // A lane nobody watches would stall its operations until their deadlines: fail now instead.
  if (!watched.ok()) {
    transport_->Fail(Prefixed(watched, absl::StrFormat("rank %d lane %d: watching its replacement connection: ",
                                                       peer->rank, lane->index)));
  }
}

// Writes what the socket takes of `bytes` now: how many (0: none now), or -1 after a lane error.
ssize_t ProgressThread::WriteOutsideFrames(Lane* lane, absl::string_view bytes, const char* what) {
  while (true) {
    ssize_t n = ::send(lane->fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    LaneError(lane, PeerLostError(absl::StrFormat("%s on lane %d to rank %d (%s) failed: %s", what, lane->index,
                                                  lane->peer->rank, lane->address, std::strerror(errno))));
    return -1;
  }
}

bool ProgressThread::WriteResumption(Lane* lane) {
  while (lane->resume_out_done < lane->resume_out.size()) {
    ssize_t n = WriteOutsideFrames(lane, absl::string_view(lane->resume_out).substr(lane->resume_out_done),
                                   "resuming");
    if (n <= 0) return false;
    lane->resume_out_done += static_cast<size_t>(n);
  }
  if (!lane->resume_out.empty()) {
    lane->resume_out.clear();
    lane->resume_out_done = 0;
  }
  if (lane->awaiting_resume) {  // the peer's count says where to resend from
    absl::MutexLock lock(&lane->peer->send_mu);
    SetWriteInterest(lane, false);
    return false;
  }
  while (lane->resend.resending()) {
    ssize_t n = WriteOutsideFrames(lane, lane->resend.ToResend(), "resending");
    if (n <= 0) return false;
    lane->resend.Resent(static_cast<size_t>(n));
  }
  return true;
}

void ProgressThread::RecordSent(Lane* lane, const iovec* iov, int count, size_t bytes) {
  for (int i = 0; i < count && bytes > 0; ++i) {
    const size_t take = std::min(bytes, iov[i].iov_len);
    lane->resend.Append(static_cast<const char*>(iov[i].iov_base), take);
    bytes -= take;
  }
}

bool ProgressThread::ReadResumption(Lane* lane) {
  char* into = reinterpret_cast<char*>(&lane->resume_in);
  while (lane->resume_in_got < sizeof(FrameHeader)) {
    ssize_t n = ::recv(lane->fd.get(), into + lane->resume_in_got, sizeof(FrameHeader) - lane->resume_in_got, 0);
    if (n > 0) {
      lane->resume_in_got += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    LaneError(lane, PeerLostError(absl::StrFormat(
                        "lost the replacement connection of lane %d to rank %d (%s) before it resumed: %s",
                        lane->index, lane->peer->rank, lane->address, n == 0 ? "closed" : std::strerror(errno))));
    return false;
  }
  absl::Status valid = ValidateHeader(lane->resume_in);
  if (valid.ok() && lane->resume_in.type != FrameType::kResume) {
    valid = absl::DataLossError(absl::StrFormat("frame type %d where the resume frame belongs",
                                                static_cast<int>(lane->resume_in.type)));
  }
  if (valid.ok()) valid = lane->resend.Rewind(lane->resume_in.offset);
  if (!valid.ok()) {
    LaneError(lane, WithKind(Prefixed(valid, absl::StrFormat("resuming lane %d from rank %d (%s): ", lane->index,
                                                             lane->peer->rank, lane->address)),
                             ErrorKind::kProtocol));
    return false;
  }
  Log(LogLevel::kDebug, "lane %d to rank %d resumed on a new connection (%s): resending %d bytes", lane->index,
      lane->peer->rank, lane->address, lane->resend.end() - lane->resume_in.offset);
  lane->awaiting_resume = false;
  lane->resume_in_got = 0;
  const int round = lane->resumed.fetch_add(1) + 1;
  lane->replaced.clear();  // the peer has left them too: closing is no longer news to it
  bool last = true;  // of this peer's lanes to resume this time (lanes may be on other threads: a log only)
  for (const auto& other : lane->peer->lanes) last = last && other->resumed.load() >= round;
  if (last) {
    Log(LogLevel::kInfo, "rank %d: all %d lanes moved to new connections (resumption %d)", lane->peer->rank,
        lane->peer->lanes.size(), round);
  }
  absl::MutexLock lock(&lane->peer->send_mu);
  SetWriteInterest(lane, true);
  return true;
}

void ProgressThread::NoteReceived(Lane* lane, size_t bytes) {
  lane->received += bytes;
  if (lane->received - lane->received_acked >= kAckEveryBytes) QueueAck(lane);
}

void ProgressThread::QueueAck(Lane* lane) {
  absl::MutexLock lock(&lane->peer->send_mu);
  if (lane->ack_due || lane->closed || saying_goodbye_ || lane->goodbye_received || lane->goodbye_sent) return;
  lane->ack_due = true;
  SetWriteInterest(lane, true);
}

bool ProgressThread::StartAck(Lane* lane) {
  if (!lane->ack_due) return false;
  lane->ack_due = false;
  lane->received_acked = lane->received;
  lane->out_header = FrameHeader{};
  lane->out_header.type = FrameType::kAck;
  lane->out_control.assign(reinterpret_cast<const char*>(&lane->received), sizeof(lane->received));
  lane->out_header.length = lane->out_control.size();
  lane->out_done = 0;
  return true;
}

void ProgressThread::TakeAck(Lane* lane) {
  uint64_t received = 0;
  std::memcpy(&received, lane->in_control.data(), sizeof(received));  // ValidateHeader: 8 bytes
  absl::Status released = lane->resend.Release(received);
  if (!released.ok()) {
    LaneError(lane, WithKind(Prefixed(released, absl::StrFormat("from rank %d (lane %d, %s): ", lane->peer->rank,
                                                                lane->index, lane->address)),
                             ErrorKind::kProtocol));
  }
}

bool ProgressThread::InStep(const Lane* lane) {
  return lane->resume_out.empty() && !lane->awaiting_resume && !lane->resend.resending();
}

}  // namespace silk::transport::tcp
