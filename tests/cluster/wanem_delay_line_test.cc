// The WAN emulator's delay line: a FIFO ring of packets that grows to a bound.
#include "cluster/wanem/delay_line.h"

#include <deque>
#include <vector>

#include "gtest/gtest.h"

namespace silk::cluster::wanem {
namespace {

std::vector<uint8_t> Packet(size_t size, uint8_t seed) {
  std::vector<uint8_t> packet(size);
  for (size_t i = 0; i < size; ++i) packet[i] = static_cast<uint8_t>(seed + i * 31);
  return packet;
}

TEST(DelayLineTest, KeepsOrderTimesAndContents) {
  DelayLine line(4096, 4096);
  EXPECT_TRUE(line.empty());
  ASSERT_TRUE(line.Push(10, Packet(100, 1)));
  ASSERT_TRUE(line.Push(20, Packet(1, 2)));
  ASSERT_TRUE(line.Push(30, Packet(0, 3)));
  EXPECT_EQ(line.packets(), 3u);
  EXPECT_EQ(line.payload_bytes(), 101u);
  EXPECT_EQ(line.FrontDeliverAt(), 10);
  auto front = line.Front();
  EXPECT_EQ(std::vector<uint8_t>(front.begin(), front.end()), Packet(100, 1));
  line.Pop();
  EXPECT_EQ(line.FrontDeliverAt(), 20);
  EXPECT_EQ(line.Front().size(), 1u);
  line.Pop();
  EXPECT_EQ(line.Front().size(), 0u);
  line.Pop();
  EXPECT_TRUE(line.empty());
}

TEST(DelayLineTest, KeepsTheSegmentsEachBufferStandsFor) {
  DelayLine line(4096, 4096);
  ASSERT_TRUE(line.Push(10, Packet(100, 1), 3));
  ASSERT_TRUE(line.Push(20, Packet(50, 2)));
  EXPECT_EQ(line.FrontSegments(), 3u);
  line.Pop();
  EXPECT_EQ(line.FrontSegments(), 1u);
}

TEST(DelayLineTest, WrapsAroundManyTimesLikeAFifo) {
  DelayLine line(1024, 1024);  // never grows: exercises the wrap-around
  std::deque<std::pair<int64_t, std::vector<uint8_t>>> expected;
  int64_t time = 0;
  for (int round = 0; round < 5000; ++round) {
    size_t size = (round * 37) % 200;
    auto packet = Packet(size, static_cast<uint8_t>(round));
    if (line.Push(time, packet)) {
      expected.emplace_back(time, packet);
    } else {
      ASSERT_FALSE(expected.empty()) << "an empty line refused a " << size << "-byte packet";
    }
    ++time;
    // Pop roughly as fast as we push, in bursts.
    int pops = round % 3;
    while (pops-- > 0 && !expected.empty()) {
      ASSERT_FALSE(line.empty());
      EXPECT_EQ(line.FrontDeliverAt(), expected.front().first);
      auto front = line.Front();
      ASSERT_EQ(std::vector<uint8_t>(front.begin(), front.end()), expected.front().second);
      line.Pop();
      expected.pop_front();
    }
    ASSERT_EQ(line.packets(), expected.size());
  }
}

TEST(DelayLineTest, GrowsUpToItsBoundThenRefuses) {
  DelayLine line(256, 64 * 1024);
  size_t pushed = 0;
  while (line.Push(static_cast<int64_t>(pushed), Packet(1000, static_cast<uint8_t>(pushed)))) ++pushed;
  EXPECT_EQ(line.capacity(), 64u * 1024);
  EXPECT_GE(pushed, 55u);  // 64 KiB of 1016-byte records, less what the growth steps waste
  EXPECT_LE(pushed, 64u);
  for (size_t i = 0; i < pushed; ++i) {
    ASSERT_EQ(line.FrontDeliverAt(), static_cast<int64_t>(i));
    auto front = line.Front();
    ASSERT_EQ(std::vector<uint8_t>(front.begin(), front.end()), Packet(1000, static_cast<uint8_t>(i)));
    line.Pop();
  }
  EXPECT_TRUE(line.empty());
}

TEST(DelayLineTest, GrowsWhileWrapped) {
  DelayLine line(2048, 1 << 20);
  std::deque<int64_t> expected;
  for (int64_t i = 0; i < 12; ++i) {
    ASSERT_TRUE(line.Push(i, Packet(100, static_cast<uint8_t>(i))));
    expected.push_back(i);
  }
  for (int i = 0; i < 8; ++i) {
    line.Pop();
    expected.pop_front();
  }
  for (int64_t i = 12; i < 200; ++i) {  // wraps, then forces growth with live data on both ends
    ASSERT_TRUE(line.Push(i, Packet(100, static_cast<uint8_t>(i))));
    expected.push_back(i);
  }
  EXPECT_GT(line.capacity(), 2048u);
  while (!expected.empty()) {
    ASSERT_EQ(line.FrontDeliverAt(), expected.front());
    auto front = line.Front();
    ASSERT_EQ(std::vector<uint8_t>(front.begin(), front.end()), Packet(100, static_cast<uint8_t>(expected.front())));
    line.Pop();
    expected.pop_front();
  }
}

TEST(DelayLineTest, ClearEmptiesAndRefusesOversizedPackets) {
  DelayLine line(1024, 4096);
  ASSERT_TRUE(line.Push(1, Packet(500, 1)));
  line.Clear();
  EXPECT_TRUE(line.empty());
  EXPECT_EQ(line.payload_bytes(), 0u);
  EXPECT_FALSE(line.Push(1, Packet(5000, 1)));  // larger than the bound
  EXPECT_TRUE(line.Push(2, Packet(4000, 2)));
}

}  // namespace
}  // namespace silk::cluster::wanem
