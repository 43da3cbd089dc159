// What the WAN emulator reads off a packet: destination, and the wire bytes
// and packets a GSO super-packet stands for.
#include "cluster/wanem/packet.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace silk::cluster::wanem {
namespace {

// An IPv4/TCP packet to 198.18.2.1 with `payload` bytes, behind a virtio-net
// header when `gso_size` >= 0 (0: not GSO).
std::vector<uint8_t> TcpPacket(size_t payload, int gso_size, size_t tcp_options = 12) {
  const size_t ip = 20, tcp = 20 + tcp_options;
  std::vector<uint8_t> packet(ip + tcp + payload, 0);
  packet[0] = 0x45;  // IPv4, 5 words
  packet[9] = 6;     // TCP
  const uint8_t destination[4] = {198, 18, 2, 1};
  std::memcpy(&packet[16], destination, 4);
  packet[ip + 12] = static_cast<uint8_t>((tcp / 4) << 4);
  if (gso_size < 0) return packet;
  std::vector<uint8_t> header(kVnetHeaderBytes, 0);
  if (gso_size > 0) {
    header[0] = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
    header[1] = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
    const uint16_t size = static_cast<uint16_t>(gso_size);
    std::memcpy(&header[4], &size, 2);
  }
  header.insert(header.end(), packet.begin(), packet.end());
  return header;
}

TEST(PacketTest, PlainPacketIsOneSegmentOfItsSize) {
  std::vector<uint8_t> packet = TcpPacket(1000, -1);
  PacketInfo info = ParsePacket(packet, /*vnet_header=*/false);
  EXPECT_TRUE(info.ipv4);
  EXPECT_EQ(info.destination, (198u << 24) | (18u << 16) | (2u << 8) | 1u);
  EXPECT_EQ(info.segments, 1u);
  EXPECT_EQ(info.wire_bytes, packet.size());
}

TEST(PacketTest, VnetHeaderWithoutGsoIsSkipped) {
  std::vector<uint8_t> packet = TcpPacket(1000, 0);
  PacketInfo info = ParsePacket(packet, true);
  EXPECT_TRUE(info.ipv4);
  EXPECT_EQ(info.segments, 1u);
  EXPECT_EQ(info.wire_bytes, packet.size() - kVnetHeaderBytes);
}

TEST(PacketTest, GsoBufferCountsEverySegmentWithItsHeaders) {
  // 52 bytes of IP+TCP headers; 20000 bytes of payload in segments of 8948: 3 segments.
  std::vector<uint8_t> packet = TcpPacket(20000, 8948);
  PacketInfo info = ParsePacket(packet, true);
  EXPECT_EQ(info.segments, 3u);
  EXPECT_EQ(info.wire_bytes, 20000u + 3 * 52u);
  // A payload that fills its segments exactly.
  info = ParsePacket(TcpPacket(2 * 8948, 8948), true);
  EXPECT_EQ(info.segments, 2u);
  EXPECT_EQ(info.wire_bytes, 2 * 8948u + 2 * 52u);
}

TEST(PacketTest, ShortOrForeignBuffersAreNotRouted) {
  EXPECT_FALSE(ParsePacket(std::vector<uint8_t>(12, 0), true).ipv4);
  std::vector<uint8_t> ipv6 = TcpPacket(100, 0);
  ipv6[kVnetHeaderBytes] = 0x60;
  EXPECT_FALSE(ParsePacket(ipv6, true).ipv4);
  // A GSO header on a packet whose TCP header runs past its end counts as one packet.
  std::vector<uint8_t> cut = TcpPacket(0, 1000, 0);
  cut.resize(kVnetHeaderBytes + 30);
  PacketInfo info = ParsePacket(cut, true);
  EXPECT_TRUE(info.ipv4);
  EXPECT_EQ(info.segments, 1u);
  EXPECT_EQ(info.wire_bytes, 30u);
}

}  // namespace
}  // namespace silk::cluster::wanem
