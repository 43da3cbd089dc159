#include "cluster/wanem/packet.h"

#include <cstring>

namespace silk::cluster::wanem {
namespace {

// linux/virtio_net.h
constexpr uint8_t kGsoNone = 0;
constexpr uint8_t kGsoEcn = 0x80;
constexpr size_t kGsoTypeOffset = 1;
constexpr size_t kGsoSizeOffset = 4;
constexpr uint8_t kProtocolTcp = 6;

uint16_t Native16(const uint8_t* p) {  // the TUN header is in the host's byte order
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

PacketInfo ParsePacket(absl::Span<const uint8_t> buffer, bool vnet_header) {
  PacketInfo info;
  const size_t skip = vnet_header ? kVnetHeaderBytes : 0;
  if (buffer.size() < skip + 20) return info;
  const uint8_t* ip = buffer.data() + skip;
  const size_t length = buffer.size() - skip;
  if ((ip[0] >> 4) != 4) return info;
  info.ipv4 = true;
  info.destination = (uint32_t{ip[16]} << 24) | (uint32_t{ip[17]} << 16) | (uint32_t{ip[18]} << 8) | ip[19];
  info.wire_bytes = static_cast<uint32_t>(length);
  if (!vnet_header) return info;
  const uint8_t gso_type = buffer[kGsoTypeOffset] & ~kGsoEcn;
  const uint16_t gso_size = Native16(buffer.data() + kGsoSizeOffset);
  if (gso_type == kGsoNone || gso_size == 0) return info;
  // Headers repeated in every segment: IP's and TCP's (UDP GSO is not offered).
  const size_t ip_header = static_cast<size_t>(ip[0] & 0x0f) * 4;
  if (ip[9] != kProtocolTcp || ip_header < 20 || length < ip_header + 20) return info;
  const size_t headers = ip_header + static_cast<size_t>(ip[ip_header + 12] >> 4) * 4;
  if (headers > length) return info;
  const size_t payload = length - headers;
  const size_t segments = payload == 0 ? 1 : (payload + gso_size - 1) / gso_size;
  info.segments = static_cast<uint32_t>(segments);
  info.wire_bytes = static_cast<uint32_t>(length + (segments - 1) * headers);
  return info;
}

}  // namespace silk::cluster::wanem
