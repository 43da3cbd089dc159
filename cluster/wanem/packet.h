// What the emulator needs to know of one packet read from a TUN device: where
// it goes, and what it costs on the emulated wire.
//
// With offloads on (IFF_VNET_HDR + TUNSETOFFLOAD), the kernel hands the TUN
// reader whole TSO "super-packets" of up to 64 KiB behind a virtio-net header
// instead of one packet per MTU, and takes them back the same way: the
// emulator moves one buffer where it would move up to 45 wire packets, and
// the TCP stacks at both ends segment and coalesce for free. The link model
// must still charge the bytes and count the packets the real wire would
// carry: each segment repeats the IP and TCP headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace silk::cluster::wanem {

// struct virtio_net_hdr (linux/virtio_net.h), the TUN default header size.
inline constexpr size_t kVnetHeaderBytes = 10;

struct PacketInfo {
  bool ipv4 = false;          // false: not something the emulator routes
  uint32_t destination = 0;   // IPv4 destination, host byte order
  uint32_t wire_bytes = 0;    // IP bytes of every segment, headers repeated
  uint32_t segments = 1;      // wire packets this buffer stands for
};

// `buffer` is what one read() returned: the IP packet, behind a virtio-net
// header when `vnet_header`. A packet that is not GSO, or whose headers do not
// parse, counts as one segment of its own size.
PacketInfo ParsePacket(absl::Span<const uint8_t> buffer, bool vnet_header);

}  // namespace silk::cluster::wanem
