#include "runtime/transport/mailbox.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <new>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"

namespace silk::transport {

struct Mailbox::Message {
  // What the sender said (known once a frame arrived).
  bool arrived = false;
  OpDescriptor sender_descriptor;
  uint64_t total = 0;
  uint64_t claimed = 0;  // payload bytes handed out by Arrive
  // The byte ranges handed out, merged where they touch: a frame that
  // overlaps one would leave a gap elsewhere while the count says whole.
  std::map<uint64_t, uint64_t> ranges;  // start -> end
  uint64_t landed = 0;   // payload bytes in place (in `dest` or staging)
  // What this rank expects (known once the receive is posted).
  RequestPtr request;
  OpDescriptor descriptor;
  char* dest = nullptr;
  bool accepted = false;  // posted and not refused: frames may write into `dest`
  // Frames that arrive before the receive is posted (or after it was refused).
  std::unique_ptr<char[]> staging;
  std::vector<std::pair<uint64_t, uint64_t>> staged;  // (offset, length) in staging, not yet copied
  int writers = 0;  // landings handed out and not yet landed or abandoned
};

namespace {

absl::Status MatchError(int self, int peer, MessageTag tag, const OpDescriptor& mine, uint64_t my_bytes,
                        const OpDescriptor& theirs, uint64_t their_bytes) {
  if (mine != theirs) {
    return MismatchError(absl::StrFormat(
        "mismatched collective calls at operation #%d: rank %d called %s but rank %d called %s", tag.op_id, self,
        mine.ToString(), peer, theirs.ToString()));
  }
  if (my_bytes != their_bytes) {
    return MismatchError(absl::StrFormat(
        "mismatched message sizes at operation #%d (%s), message %d: rank %d expects %d bytes but rank %d sends %d",
        tag.op_id, mine.ToString(), tag.seq, self, my_bytes, peer, their_bytes));
  }
  return absl::OkStatus();
}

// Records [offset, offset + length) in `ranges`; false if it overlaps one already there.
bool ClaimRange(std::map<uint64_t, uint64_t>& ranges, uint64_t offset, uint64_t length) {
  if (length == 0) return true;
  uint64_t start = offset, end = offset + length;
  auto next = ranges.lower_bound(start);
  if (next != ranges.end() && next->first < end) return false;
  if (next != ranges.begin()) {
    auto previous = std::prev(next);
    if (previous->second > start) return false;
    if (previous->second == start) {
      start = previous->first;
      ranges.erase(previous);
    }
  }
  if (next != ranges.end() && next->first == end) {
    end = next->second;
    ranges.erase(next);
  }
  ranges.emplace(start, end);
  return true;
}

// Operations that may be in progress at once between two ranks are far fewer.
constexpr size_t kRecentCalls = 256;

}  // namespace

const OpDescriptor* Mailbox::RecentCalls::Find(uint64_t op_id) const {
  auto it = calls_.find(op_id);
  return it == calls_.end() ? nullptr : &it->second;
}

void Mailbox::RecentCalls::Remember(uint64_t op_id, const OpDescriptor& call) {
  if (!calls_.emplace(op_id, call).second) return;
  order_.push_back(op_id);
  if (order_.size() > kRecentCalls) {
    calls_.erase(order_.front());
    order_.pop_front();
  }
}

Mailbox::Mailbox(int self, int size) : self_(self) {
  for (int r = 0; r < size; ++r) boxes_.push_back(std::make_unique<Box>());
}

Mailbox::~Mailbox() { Close(); }

void Mailbox::Close() {
  const absl::Status closed = failed() ? status() : AbortedError("transport shut down");
  for (auto& b : boxes_) {
    absl::MutexLock lock(&b->mu);
    for (auto& [tag, message] : b->messages) {
      if (message->request) message->request->Complete(closed);
    }
    b->messages.clear();
  }
}

// ---- the sticky error ----

bool Mailbox::RecordFailure(const absl::Status& status) {
  absl::MutexLock lock(&error_mu_);
  if (!error_.ok()) return false;
  error_ = status.ok() ? AbortedError("transport failed") : status;
  failed_.store(true, std::memory_order_release);
  return true;
}

absl::Status Mailbox::status() const {
  if (!failed()) return absl::OkStatus();
  absl::MutexLock lock(&error_mu_);
  return error_;
}

void Mailbox::Sweep() {
  const absl::Status error = status();
  for (auto& b : boxes_) {
    absl::MutexLock lock(&b->mu);
    for (auto it = b->messages.begin(); it != b->messages.end();) {
      auto next = std::next(it);
      Message& m = *it->second;
      if (m.writers == 0) {
        if (m.request) m.request->Complete(error);
        b->messages.erase(it);
      }
      it = next;
    }
  }
}

void Mailbox::MaybeComplete(Box& b, const std::shared_ptr<Message>& message) {
  Message& m = *message;
  if (!m.request || m.writers > 0) return;
  const bool whole = m.accepted && m.arrived && m.landed == m.total;
  if (!whole && !failed()) return;
  m.request->Complete(whole ? absl::OkStatus() : status());
  auto it = b.messages.find(m.request->tag());
  if (it != b.messages.end() && it->second == message) b.messages.erase(it);
}

// ---- receives ----

absl::Status Mailbox::Post(int peer, MessageTag tag, const OpDescriptor& descriptor, char* dest,
                           const RequestPtr& request) {
  Box& b = box(peer);
  absl::MutexLock lock(&b.mu);
  // RecordFailure sets the flag before Sweep takes this lock: either the sweep
  // sees this receive, or this receive sees the flag.
  if (failed()) {
    request->Complete(status());
    return absl::OkStatus();
  }
  std::shared_ptr<Message>& slot = b.messages[tag];
  if (!slot) slot = std::make_shared<Message>();
  Message& m = *slot;
  if (m.request) {
    request->Complete(InvalidArgument(absl::StrFormat(
        "a receive from rank %d for operation #%d message %d is already posted", peer, tag.op_id, tag.seq)));
    return absl::OkStatus();
  }
  m.request = request;
  m.descriptor = descriptor;
  if (const OpDescriptor* theirs = b.sent.Find(tag.op_id); theirs != nullptr && *theirs != descriptor) {
    return MatchError(self_, peer, tag, descriptor, 0, *theirs, 0);  // refused: nothing is written to `dest`
  }
  b.posted.Remember(tag.op_id, descriptor);
  if (!m.arrived) {
    if (b.departed.load()) {  // everything it sent is in: this will never come
      b.messages.erase(tag);
      request->Complete(PeerLostError(absl::StrFormat(
          "rank %d has shut down its communicator; operation #%d message %d from it will never arrive", peer,
          tag.op_id, tag.seq)));
      return absl::OkStatus();
    }
    m.dest = dest;
    m.accepted = true;  // the first frame is checked against it before it writes
    return absl::OkStatus();
  }
  absl::Status match = MatchError(self_, peer, tag, descriptor, request->bytes(), m.sender_descriptor, m.total);
  if (!match.ok()) return match;  // refused: nothing will be written to `dest`
  m.dest = dest;
  m.accepted = true;
  for (auto [offset, length] : m.staged) {
    if (length > 0) std::memcpy(dest + offset, m.staging.get() + offset, length);
  }
  m.staged.clear();
  MaybeComplete(b, slot);
  return absl::OkStatus();
}

// ---- frames ----

absl::StatusOr<Mailbox::Landing> Mailbox::Arrive(int peer, const FrameInfo& frame) {
  Box& b = box(peer);
  absl::MutexLock lock(&b.mu);
  if (failed()) return status();
  const MessageTag tag = frame.tag;
  if (frame.length > frame.total || frame.offset > frame.total - frame.length) {
    return ProtocolError(absl::StrFormat(
        "rank %d sent a frame for operation #%d message %d with offset %d and length %d outside its %d bytes", peer,
        tag.op_id, tag.seq, frame.offset, frame.length, frame.total));
  }
  std::shared_ptr<Message>& slot = b.messages[tag];
  if (!slot) slot = std::make_shared<Message>();
  Message& m = *slot;
  if (!m.arrived) {
    m.arrived = true;
    m.sender_descriptor = frame.descriptor;
    m.total = frame.total;
    if (const OpDescriptor* mine = b.posted.Find(tag.op_id); mine != nullptr && *mine != frame.descriptor) {
      m.accepted = false;
      return MatchError(self_, peer, tag, *mine, 0, frame.descriptor, 0);
    }
    b.sent.Remember(tag.op_id, frame.descriptor);
    if (m.request) {
      absl::Status match =
          MatchError(self_, peer, tag, m.descriptor, m.request->bytes(), frame.descriptor, frame.total);
      if (!match.ok()) {
        m.accepted = false;  // refused: the posted buffer is never written
        return match;
      }
    }
  } else if (frame.descriptor != m.sender_descriptor || frame.total != m.total ||
             frame.length > m.total - m.claimed) {
    return ProtocolError(absl::StrFormat(
        "rank %d sent inconsistent frames for operation #%d message %d (%s of %d bytes, then %s of %d with %d of them "
        "already sent)",
        peer, tag.op_id, tag.seq, m.sender_descriptor.ToString(), m.total, frame.descriptor.ToString(), frame.total,
        m.claimed));
  }
  if (!ClaimRange(m.ranges, frame.offset, frame.length)) {
    return ProtocolError(absl::StrFormat(
        "rank %d sent bytes %d to %d of operation #%d message %d twice", peer, frame.offset,
        frame.offset + frame.length, tag.op_id, tag.seq));
  }
  Landing landing;
  landing.frame = frame;
  if (m.accepted) {
    landing.dest = m.dest + frame.offset;
  } else {
    if (!m.staging) {
      m.staging.reset(new (std::nothrow) char[std::max<uint64_t>(m.total, 1)]);
      if (!m.staging) {
        return MakeError(ErrorKind::kInternal,
                         absl::StrFormat("cannot allocate %d bytes to hold operation #%d message %d from rank %d "
                                         "until its receive is posted",
                                         m.total, tag.op_id, tag.seq, peer));
      }
    }
    landing.dest = m.staging.get() + frame.offset;
    landing.staged = true;
  }
  m.claimed += frame.length;
  m.writers++;
  landing.message = slot;
  return landing;
}

void Mailbox::Landed(int peer, Landing landing) {
  Box& b = box(peer);
  absl::MutexLock lock(&b.mu);
  Message& m = *landing.message;
  const FrameInfo& f = landing.frame;
  m.writers--;
  m.landed += f.length;
  if (landing.staged) {
    if (m.accepted) {
      if (f.length > 0) std::memcpy(m.dest + f.offset, m.staging.get() + f.offset, f.length);
    } else {
      m.staged.emplace_back(f.offset, f.length);
    }
  }
  MaybeComplete(b, landing.message);
}

void Mailbox::Abandon(int peer, Landing landing) {
  Box& b = box(peer);
  absl::MutexLock lock(&b.mu);
  landing.message->writers--;
  MaybeComplete(b, landing.message);
}

absl::Status Mailbox::DeliverToSelf(MessageTag tag, const OpDescriptor& descriptor, const void* data, size_t bytes) {
  FrameInfo frame{tag, descriptor, bytes, 0, bytes};
  absl::StatusOr<Landing> landing = Arrive(self_, frame);
  if (!landing.ok()) return landing.status();
  if (bytes > 0) std::memcpy(landing->dest, data, bytes);
  Landed(self_, *std::move(landing));
  return absl::OkStatus();
}

// ---- peers ----

bool Mailbox::Depart(int peer) {
  Box& b = box(peer);
  b.departed.store(true);
  absl::MutexLock lock(&b.mu);
  bool waiting = false;
  for (auto it = b.messages.begin(); it != b.messages.end();) {
    auto next = std::next(it);
    Message& m = *it->second;
    const bool whole = m.arrived && m.landed == m.total;
    if (!whole) waiting = true;
    if (!whole && m.request && m.writers == 0) {
      m.request->Complete(PeerLostError(absl::StrFormat(
          "rank %d has shut down its communicator; operation #%d message %d from it will never arrive%s", peer,
          it->first.op_id, it->first.seq, m.arrived ? " whole" : "")));
      b.messages.erase(it);
    }
    it = next;
  }
  return waiting;
}

bool Mailbox::departed(int peer) const { return boxes_[peer]->departed.load(); }

size_t Mailbox::pending(int peer) const {
  const Box& b = *boxes_[peer];
  absl::MutexLock lock(&b.mu);
  return b.messages.size();
}

}  // namespace silk::transport
