// The fixed job of handshake_fuzz.cc, shared with make_seeds.cc so the seeds
// carry MACs the fuzzer's checks accept.
#pragma once

#include <string>

#include "runtime/transport/handshake.h"

namespace silk::fuzz::handshake {

inline constexpr uint64_t kJobId = 42;
inline constexpr char kToken[] = "secret";
inline constexpr int kServerRank = 0;
inline constexpr int kClientRank = 3;
inline constexpr int kLane = 1;

inline transport::HandshakeParams Params(int rank) {
  transport::HandshakeParams params;
  params.job_id = kJobId;
  params.token = kToken;
  params.rank = rank;
  params.world_size = 4;
  params.lanes = 2;
  return params;
}
inline transport::HandshakeParams ConnectorParams() { return Params(kClientRank); }
inline transport::HandshakeParams AcceptorParams() { return Params(kServerRank); }
inline std::string ServerNonce() { return std::string(32, 'S'); }
inline std::string ClientNonce() { return std::string(32, 'C'); }

}  // namespace silk::fuzz::handshake
