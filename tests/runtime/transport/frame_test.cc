#include "runtime/transport/frame.h"

#include "gtest/gtest.h"

namespace silk::transport {
namespace {

TEST(FrameHeader, AcceptsAWellFormedDataFrame) {
  FrameHeader h;
  h.total = 1000;
  h.offset = 600;
  h.length = 400;
  EXPECT_TRUE(ValidateHeader(h).ok());
}

TEST(FrameHeader, RejectsBadMagicVersionTypeAndBounds) {
  FrameHeader h;
  h.magic = 0x12345678;
  EXPECT_TRUE(absl::IsDataLoss(ValidateHeader(h)));
  h = FrameHeader{};
  h.version = kProtocolVersion + 1;
  EXPECT_TRUE(absl::IsFailedPrecondition(ValidateHeader(h)));
  h = FrameHeader{};
  h.type = static_cast<FrameType>(99);
  EXPECT_TRUE(absl::IsDataLoss(ValidateHeader(h)));
  h = FrameHeader{};
  h.total = 100;
  h.offset = 90;
  h.length = 20;  // runs past the end of the message
  EXPECT_TRUE(absl::IsDataLoss(ValidateHeader(h)));
  h.offset = ~uint64_t{0};  // would overflow offset + length
  EXPECT_TRUE(absl::IsDataLoss(ValidateHeader(h)));
  h = FrameHeader{};
  h.type = FrameType::kAbort;
  h.length = kMaxControlPayload + 1;
  EXPECT_TRUE(absl::IsDataLoss(ValidateHeader(h)));
}

}  // namespace
}  // namespace silk::transport
