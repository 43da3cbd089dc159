#include "runtime/tiers.h"

#include <optional>
#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/core/cluster_spec.h"
#include "runtime/core/error.h"
#include "runtime/communicator.h"
#include "runtime/core/status_macros.h"
#include "runtime/engine/engine.h"
#include "runtime/topology.h"

namespace silk {
namespace {

constexpr int kPings = 4;
constexpr uint32_t kSeqsPerTier = 64;
constexpr uint32_t kResultSeq = 1 << 20;
constexpr uint32_t kModeSeq = kResultSeq + 1;
constexpr int kFieldsPerTier = 6;
// Operation 0 is never issued by the engine (it counts from 1): the probe runs
// before the engine's first operation, on its own number.
constexpr uint64_t kProbeOpId = 0;
// A WAN whose rate no spec declares: bursts double (at most this many times)
// while each is a quarter faster than the fastest before, within the budget.
constexpr int kMaxRampDoublings = 4;
constexpr double kRampGain = 1.25;
constexpr absl::Duration kRampBudget = absl::Seconds(2);

// Burst k of a tier: its size (0: no more bursts), its bytes, its ack.
uint32_t BurstSeq(int tier, int k) { return tier * kSeqsPerTier + 2 * kPings + 3 * k; }

struct Partner {
  TierCost* tier;
  int rank;
};

// Rank 0's partners, derived identically on every rank.
std::vector<int> PartnerRanks(const Topology& topology) {
  std::vector<int> partners;
  const std::vector<int>& node = topology.node_members(topology.node_of(0));
  partners.push_back(node.size() > 1 ? node[1] : -1);
  int region_partner = -1;
  for (int r : topology.region_members(topology.region_of(0))) {
    if (topology.node_of(r) != topology.node_of(0)) {
      region_partner = r;
      break;
    }
  }
  partners.push_back(region_partner);
  for (int g = 0; g < topology.num_regions(); ++g) {
    if (g != topology.region_of(0)) partners.push_back(topology.region_members(g).front());
  }
  return partners;
}

absl::Status Echo(OpContext& ctx, int tier) {
  const uint32_t base = tier * kSeqsPerTier;
  uint64_t word = 0;
  for (int k = 0; k < kPings; ++k) {
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Recv(0, base + 2 * k, &word, sizeof(word))));
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Send(0, base + 2 * k + 1, &word, sizeof(word))));
  }
  std::vector<char> burst;
  for (int k = 0; k <= kMaxRampDoublings + 1; ++k) {
    uint64_t size = 0;
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Recv(0, BurstSeq(tier, k), &size, sizeof(size))));
    if (size == 0) return absl::OkStatus();
    burst.resize(size);
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Recv(0, BurstSeq(tier, k) + 1, burst.data(), burst.size())));
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Send(0, BurstSeq(tier, k) + 2, &word, sizeof(word))));
  }
  return ProtocolError(absl::StrFormat("tier probe: rank 0 sent more than %d bursts", kMaxRampDoublings + 1));
}

// The round trip, then one burst; with `ramp`, bursts of doubling size until
// one is no faster than those before (the rate settled), the budget or the
// largest size is reached.
absl::Status Measure(OpContext& ctx, int tier, int peer, size_t burst_bytes, bool ramp, TierCost* cost) {
  const uint32_t base = tier * kSeqsPerTier;
  uint64_t word = 0, echo = 0;
  double best = 1e30;
  for (int k = 0; k < kPings; ++k) {
    const absl::Time start = absl::Now();
    auto recv = ctx.Recv(peer, base + 2 * k + 1, &echo, sizeof(echo));
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Send(peer, base + 2 * k, &word, sizeof(word))));
    SILK_RETURN_IF_ERROR(ctx.Wait(recv));
    best = std::min(best, absl::ToDoubleSeconds(absl::Now() - start));
  }
  const absl::Time budget_end = absl::Now() + kRampBudget;
  std::vector<char> burst;
  double fastest = 0;
  bool settled = false;
  uint64_t size = std::max<size_t>(burst_bytes, 1);
  int k = 0;
  for (;; ++k) {
    burst.resize(size, 1);
    const absl::Time start = absl::Now();
    auto ack = ctx.Recv(peer, BurstSeq(tier, k) + 2, &echo, sizeof(echo));
    auto announce = ctx.Send(peer, BurstSeq(tier, k), &size, sizeof(size));
    SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Send(peer, BurstSeq(tier, k) + 1, burst.data(), size)));
    SILK_RETURN_IF_ERROR(ctx.Wait(announce));
    SILK_RETURN_IF_ERROR(ctx.Wait(ack));
    // The ack's way back is one more round trip's worth of latency, not transfer.
    const double transfer = std::max(absl::ToDoubleSeconds(absl::Now() - start) - best, 1e-6);
    const double rate = static_cast<double>(size) / transfer;
    const bool faster = rate >= fastest * kRampGain;
    fastest = std::max(fastest, rate);
    if (!ramp) break;
    if (!faster) {
      settled = true;
      break;
    }
    size *= 2;
    const absl::Time next_end = absl::Now() + absl::Seconds(best + static_cast<double>(size) / fastest);
    if (k == kMaxRampDoublings || next_end > budget_end) break;
  }
  uint64_t done = 0;
  SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Send(peer, BurstSeq(tier, k + 1), &done, sizeof(done))));
  cost->present = true;
  cost->peer = peer;
  cost->rtt_s = best;
  cost->probed_bytes_per_s = fastest;
  cost->bytes_per_s = fastest;
  cost->rate_settled = settled;
  return absl::OkStatus();
}

// `known` where it covers every tier the partners span (its tiers that no
// partner spans now are marked absent); nullopt when something must be measured.
std::optional<Tiers> Reusable(const Tiers* known, const std::vector<int>& partners) {
  if (known == nullptr || !known->measured || known->wan.size() != partners.size() - 2) return std::nullopt;
  Tiers reuse = *known;
  for (size_t i = 0; i < partners.size(); ++i) {
    TierCost& cost = i == 0 ? reuse.node : i == 1 ? reuse.region : reuse.wan[i - 2];
    if (partners[i] >= 0 && !cost.present) return std::nullopt;
    if (partners[i] < 0) cost = TierCost{};
    cost.peer = partners[i];
  }
  return reuse;
}

std::vector<double> Encode(const Tiers& tiers) {
  std::vector<double> out;
  auto put = [&](const TierCost& t) {
    out.insert(out.end(), {t.present ? 1.0 : 0.0, double(t.peer), t.rtt_s, t.bytes_per_s, t.probed_bytes_per_s,
                           t.rate_settled ? 1.0 : 0.0});
  };
  put(tiers.node);
  put(tiers.region);
  for (const TierCost& t : tiers.wan) put(t);
  return out;
}

Tiers Decode(const std::vector<double>& in) {
  Tiers tiers;
  tiers.measured = true;
  auto get = [&](size_t i) {
    TierCost t;
    t.present = in[i] != 0;
    t.peer = static_cast<int>(in[i + 1]);
    t.rtt_s = in[i + 2];
    t.bytes_per_s = in[i + 3];
    t.probed_bytes_per_s = in[i + 4];
    t.rate_settled = in[i + 5] != 0;
    return t;
  };
  tiers.node = get(0);
  tiers.region = get(kFieldsPerTier);
  for (size_t i = 2 * kFieldsPerTier; i < in.size(); i += kFieldsPerTier) tiers.wan.push_back(get(i));
  return tiers;
}

std::string Describe(const char* name, const TierCost& t, bool wan) {
  if (!t.present) return absl::StrFormat("%s: none", name);
  std::string note;
  if (t.rate_declared()) {
    note = absl::StrFormat(" (spec; a %.2f GB/s burst)", t.probed_bytes_per_s / 1e9);
  } else if (wan && !t.rate_settled) {
    note = " (still growing: a lower bound)";
  }
  return absl::StrFormat("%s (rank 0-%d): rtt %.3f ms, %.2f GB/s%s", name, t.peer, t.rtt_s * 1e3, t.bytes_per_s / 1e9,
                         note);
}

}  // namespace

TierCost Tiers::SlowestWan() const {
  TierCost slowest;
  for (const TierCost& t : wan) {
    if (!t.present) continue;
    if (!slowest.present) {
      slowest = t;
      continue;
    }
    slowest.rtt_s = std::max(slowest.rtt_s, t.rtt_s);
    slowest.bytes_per_s = std::min(slowest.bytes_per_s, t.bytes_per_s);
    slowest.probed_bytes_per_s = std::min(slowest.probed_bytes_per_s, t.probed_bytes_per_s);
  }
  return slowest;
}

std::string Tiers::ToString() const {
  if (!measured) return "tiers not measured";
  std::vector<std::string> parts = {Describe("node", node, false), Describe("region", region, false)};
  for (const TierCost& t : wan) parts.push_back(Describe("wan", t, true));
  return absl::StrJoin(parts, "; ");
}

std::string EncodeTiers(const Tiers& tiers) {
  const std::vector<double> values = Encode(tiers);
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
}

absl::StatusOr<Tiers> DecodeTiers(const std::string& bytes) {
  const size_t per_tier = kFieldsPerTier * sizeof(double);
  if (bytes.size() < 2 * per_tier || bytes.size() % per_tier != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("a tier table of %d bytes is malformed", bytes.size()));
  }
  std::vector<double> values(bytes.size() / sizeof(double));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return Decode(values);
}

absl::StatusOr<Tiers> ProbeTiers(Communicator& comm, size_t burst_bytes, absl::Duration timeout, const Tiers* known) {
  Tiers tiers;
  if (comm.size() == 1) return tiers;
  const Topology topology = Topology::FromPlacements(comm.placements());
  const std::vector<int> partners = PartnerRanks(topology);
  OpDescriptor descriptor;
  descriptor.kind = CollectiveKind::kProbe;
  descriptor.count = burst_bytes;
  OpContext ctx(&comm.transport(), kProbeOpId, descriptor, absl::Now() + timeout);
  const size_t fields = kFieldsPerTier * partners.size();
  std::vector<double> encoded(fields);
  auto failed = [&](const absl::Status& s) {
    absl::Status probe(s.code(), absl::StrFormat("measuring the network tiers at start-up: %s", s.message()));
    comm.transport().Abort(probe);
    transport::WaitAll(ctx.requests(), absl::Now() + absl::Seconds(10)).IgnoreError();
    return probe;
  };
  // Rank 0 says first whether it measures (1) or sends a known table (0).
  uint64_t measure = 1;
  if (comm.rank() == 0) {
    std::optional<Tiers> reuse = Reusable(known, partners);
    measure = reuse ? 0 : 1;
    std::vector<transport::RequestPtr> modes;
    for (int r = 1; r < comm.size(); ++r) modes.push_back(ctx.Send(r, kModeSeq, &measure, sizeof(measure)));
    if (absl::Status s = ctx.WaitAll(modes); !s.ok()) return failed(s);
    if (reuse) tiers = *std::move(reuse);
    tiers.wan.resize(partners.size() - 2);
    for (size_t i = 0; i < partners.size() && measure; ++i) {
      if (partners[i] < 0) continue;
      TierCost* cost = i == 0 ? &tiers.node : i == 1 ? &tiers.region : &tiers.wan[i - 2];
      // A short burst cannot open a long path's window: the spec's rate, where
      // declared, stands for the WAN; elsewhere the WAN's bursts ramp up.
      const cluster::Link* link = nullptr;
      if (i >= 2 && comm.spec() != nullptr) {
        link = cluster::FindLink(*comm.spec(), comm.region(), comm.placements()[partners[i]].region);
      }
      const bool declared = link != nullptr && link->bandwidth_bps() > 0;
      absl::Status s = Measure(ctx, static_cast<int>(i), partners[i], burst_bytes, i >= 2 && !declared, cost);
      if (!s.ok()) return failed(s);
      if (declared) cost->bytes_per_s = link->bandwidth_bps() / 8.0;
    }
    encoded = Encode(tiers);
    std::vector<transport::RequestPtr> sends;
    for (int r = 1; r < comm.size(); ++r) {
      sends.push_back(ctx.Send(r, kResultSeq, encoded.data(), encoded.size() * sizeof(double)));
    }
    if (absl::Status s = ctx.WaitAll(sends); !s.ok()) return failed(s);
  } else {
    if (absl::Status s = ctx.Wait(ctx.Recv(0, kModeSeq, &measure, sizeof(measure))); !s.ok()) return failed(s);
    for (size_t i = 0; i < partners.size() && measure; ++i) {
      if (partners[i] != comm.rank()) continue;
      if (absl::Status s = Echo(ctx, static_cast<int>(i)); !s.ok()) return failed(s);
    }
    absl::Status s = ctx.Wait(ctx.Recv(0, kResultSeq, encoded.data(), encoded.size() * sizeof(double)));
    if (!s.ok()) return failed(s);
  }
  return Decode(encoded);
}

}  // namespace silk
