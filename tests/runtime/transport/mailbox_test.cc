// The mailbox's rules, frame by frame, without sockets: where bytes may land,
// and when a refused or failed receive may complete. The transports are held
// to the same rules end to end by conformance_test.cc.
#include "runtime/transport/mailbox.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/core/error.h"

namespace silk::transport {
namespace {

OpDescriptor Call(uint64_t count) {
  OpDescriptor d;
  d.kind = CollectiveKind::kSendRecv;
  d.count = count;
  return d;
}

RequestPtr Receive(MessageTag tag, size_t bytes) {
  return std::make_shared<Request>(Request::Kind::kRecv, 1, tag, bytes);
}

TEST(Mailbox, FramesLandInThePostedBufferAndCompleteIt) {
  Mailbox mailbox(0, 2);
  std::vector<char> in(8, 'g');
  auto request = Receive({1, 0}, 8);
  ASSERT_TRUE(mailbox.Post(1, {1, 0}, Call(1), in.data(), request).ok());
  for (uint64_t offset : {4u, 0u}) {  // any order
    auto landing = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 8, offset, 4});
    ASSERT_TRUE(landing.ok()) << landing.status();
    EXPECT_FALSE(landing->staged);
    std::memset(landing->dest, 'a' + static_cast<int>(offset), 4);
    EXPECT_FALSE(request->done());
    mailbox.Landed(1, *std::move(landing));
  }
  ASSERT_TRUE(request->done());
  EXPECT_TRUE(request->status().ok());
  EXPECT_EQ(std::string(in.begin(), in.end()), "aaaaeeee");
  EXPECT_EQ(mailbox.pending(1), 0u);
}

TEST(Mailbox, AFrameOverlappingAnotherIsAProtocolError) {
  Mailbox mailbox(0, 2);
  auto first = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 100, 0, 60});
  ASSERT_TRUE(first.ok());
  auto overlapping = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 100, 50, 20});
  EXPECT_EQ(KindOf(overlapping.status()), ErrorKind::kProtocol) << overlapping.status();
  auto adjacent = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 100, 60, 40});
  EXPECT_TRUE(adjacent.ok()) << adjacent.status();
}

TEST(Mailbox, AFrameOutsideItsMessageIsRefusedBeforeAnyByteIsWritten) {
  Mailbox mailbox(0, 2);
  auto outside = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 100, 90, 20});
  EXPECT_EQ(KindOf(outside.status()), ErrorKind::kProtocol) << outside.status();
  auto wrapping = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 100, ~uint64_t{0} - 5, 10});
  EXPECT_EQ(KindOf(wrapping.status()), ErrorKind::kProtocol) << wrapping.status();
}

// The use-after-free this layer exists to prevent: a frame is still arriving
// (staged) when its receive is posted with a smaller size. The receive is
// refused; the frame finishes into staging, never into the posted buffer;
// the request completes only after the failure is recorded and no frame
// writes into its message any more.
TEST(Mailbox, ARefusedReceiveIsNeverWrittenAndCompletesLast) {
  Mailbox mailbox(0, 2);
  auto landing = mailbox.Arrive(1, FrameInfo{{1, 0}, Call(1), 64, 0, 64});
  ASSERT_TRUE(landing.ok());
  ASSERT_TRUE(landing->staged);
  std::vector<char> in(16 + 64, 'g');
  auto request = Receive({1, 0}, 16);
  absl::Status mismatch = mailbox.Post(1, {1, 0}, Call(1), in.data(), request);
  EXPECT_EQ(KindOf(mismatch), ErrorKind::kMismatch) << mismatch;
  EXPECT_NE(mismatch.message().find("expects 16 bytes"), std::string::npos) << mismatch;
  ASSERT_TRUE(mailbox.RecordFailure(mismatch));
  mailbox.Sweep();
  EXPECT_FALSE(request->done()) << "a frame is still being written into its message";
  std::memset(landing->dest, 'x', 64);
  mailbox.Landed(1, *std::move(landing));
  ASSERT_TRUE(request->done());
  EXPECT_EQ(KindOf(request->status()), ErrorKind::kMismatch);
  EXPECT_TRUE(std::all_of(in.begin(), in.end(), [](char c) { return c == 'g'; }));
}

TEST(Mailbox, ACallDifferingOnAnotherMessageOfTheSameOperationIsAMismatch) {
  Mailbox mailbox(0, 2);
  char buffer[4];
  auto request = Receive({7, 0}, 4);
  ASSERT_TRUE(mailbox.Post(1, {7, 0}, Call(1), buffer, request).ok());
  // Another message of operation 7 says the peer made another call.
  auto other = mailbox.Arrive(1, FrameInfo{{7, 3}, Call(2), 0, 0, 0});
  EXPECT_EQ(KindOf(other.status()), ErrorKind::kMismatch) << other.status();
}

TEST(Mailbox, ReceivesFromADepartedPeerFailAtOnce) {
  Mailbox mailbox(0, 2);
  char buffer[4];
  auto before = Receive({1, 0}, 4);
  ASSERT_TRUE(mailbox.Post(1, {1, 0}, Call(1), buffer, before).ok());
  EXPECT_TRUE(mailbox.Depart(1));
  ASSERT_TRUE(before->done());
  EXPECT_EQ(KindOf(before->status()), ErrorKind::kPeerLost);
  auto after = Receive({2, 0}, 4);
  ASSERT_TRUE(mailbox.Post(1, {2, 0}, Call(1), buffer, after).ok());
  ASSERT_TRUE(after->done());
  EXPECT_EQ(KindOf(after->status()), ErrorKind::kPeerLost);
}

}  // namespace
}  // namespace silk::transport
