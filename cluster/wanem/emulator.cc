#include "cluster/wanem/emulator.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cluster/realtime.h"
#include "cluster/wanem/packet.h"
#include "cluster/wanem/tun.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"

namespace silk::cluster::wanem {
namespace {

// epoll_event.data.u64 carries (kind << 32 | value).
enum EventKind : uint32_t { kTunEvent = 1, kTimerEvent, kSignalEvent, kControlEvent };
constexpr int kBurstPackets = 64;     // packets read from one TUN per wake-up
constexpr size_t kMaxPacketBytes = kVnetHeaderBytes + (size_t{256} << 10);  // a GSO buffer, with room to spare
constexpr size_t kInitialDelayLineBytes = size_t{4} << 20;

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrFormat("silk-wanem: %s: %s", what, std::strerror(errno)));
}

LinkParams ParamsOf(const Link& link) {
  LinkParams params;
  params.rate_bps = static_cast<double>(link.bandwidth_bps());
  params.rtt_ms = link.rtt_ms();
  params.jitter_ms = link.jitter_ms();
  params.loss = link.loss();
  params.queue_bytes = link.queue_bytes();
  params.mtu = LinkMtu(link);
  return params;
}

}  // namespace

int64_t MonotonicNowNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

absl::StatusOr<std::unique_ptr<Emulator>> Emulator::Create(const ClusterSpec& spec, const EmulatorOptions& options) {
  std::unique_ptr<Emulator> emulator(new Emulator());
  SILK_RETURN_IF_ERROR(emulator->Setup(spec, options));
  return emulator;
}

Emulator::~Emulator() {
  control_.reset();
  for (const Port& port : ports_) {
    if (port.tun_fd >= 0) close(port.tun_fd);
  }
  for (int fd : {timer_fd_, signal_fd_, epoll_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status Emulator::Setup(const ClusterSpec& spec, const EmulatorOptions& options) {
  vnet_header_ = options.offload;
  delivery_batch_ns_ = std::max<int64_t>(0, options.delivery_batch_ns);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return Errno("epoll_create1");
  auto watch = [this](int fd, uint32_t kind, uint32_t value) -> absl::Status {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = (uint64_t{kind} << 32) | value;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) return Errno("epoll_ctl");
    return absl::OkStatus();
  };

  for (const Region& region : spec.regions()) {
    if (region.subnet().empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "silk-wanem: region \"%s\" of spec \"%s\" has no subnet; the emulator routes packets by subnet",
          region.name(), spec.name()));
    }
    Port port;
    port.region = region.name();
    SILK_ASSIGN_OR_RETURN(port.subnet, ParseIpv4Subnet(region.subnet()));
    std::string netns = options.netns_prefix.empty() ? "" : "/run/netns/" + options.netns_prefix + region.name();
    std::string ifname = options.netns_prefix.empty() ? absl::StrCat(options.tun_name, ports_.size()) : options.tun_name;
    SILK_ASSIGN_OR_RETURN(port.tun_fd, OpenTun(netns, ifname, vnet_header_));
    ports_.push_back(std::move(port));
    SILK_RETURN_IF_ERROR(watch(ports_.back().tun_fd, kTunEvent, static_cast<uint32_t>(ports_.size() - 1)));
  }

  int count = static_cast<int>(ports_.size());
  direction_index_.assign(count * count, -1);
  uint64_t seed = options.seed;
  for (const Link& link : spec.links()) {
    int a = PortOfRegion(link.region_a());
    int b = PortOfRegion(link.region_b());
    for (auto [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
      direction_index_[from * count + to] = static_cast<int>(directions_.size());
      directions_.push_back({from, to, LinkDirection(ParamsOf(link), seed++),
                             DelayLine(kInitialDelayLineBytes, options.max_delay_line_bytes)});
    }
  }

  SILK_RETURN_IF_ERROR(UpdateOffloads());

  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return Errno("timerfd_create");
  SILK_RETURN_IF_ERROR(watch(timer_fd_, kTimerEvent, 0));

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, signal);
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) return Errno("sigprocmask");
  signal_fd_ = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return Errno("signalfd");
  SILK_RETURN_IF_ERROR(watch(signal_fd_, kSignalEvent, 0));

  if (!options.control_path.empty()) {
    control_ = std::make_unique<ControlServer>([this](absl::string_view line) { return HandleCommand(line); });
    SILK_RETURN_IF_ERROR(control_->Listen(options.control_path, epoll_fd_, kControlEvent));
  }
  // Deliveries are due to the microsecond; the default 50 us timer slack would blur them.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (options.realtime) {
    if (std::string why = RunThreadAtRealTimePriority(kEmulatorPriority); !why.empty()) {
      Log(LogLevel::kWarning, "silk-wanem: cannot run at real-time priority (%s); delays may stretch under load",
          why);
    }
  }
  scratch_.resize(kMaxPacketBytes);
  return absl::OkStatus();
}

int Emulator::PortOfRegion(absl::string_view region) const {
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i].region == region) return static_cast<int>(i);
  }
  return -1;
}

absl::Status Emulator::UpdateOffloads() {
  if (!vnet_header_) return absl::OkStatus();
  for (size_t p = 0; p < ports_.size(); ++p) {
    bool lossless = true;
    for (const Direction& direction : directions_) {
      // Loss and policing drop single packets, which a GSO buffer standing for many would blur.
      const LinkParams& params = direction.model.params();
      if (direction.from == static_cast<int>(p) && (params.loss > 0 || params.policer_burst_bytes > 0)) {
        lossless = false;
      }
    }
    if (lossless == ports_[p].offload) continue;
    SILK_RETURN_IF_ERROR(SetTunOffload(ports_[p].tun_fd, lossless));
    ports_[p].offload = lossless;
    Log(LogLevel::kInfo, "silk-wanem: offloads %s for packets from region %s", lossless ? "on" : "off",
        ports_[p].region);
  }
  return absl::OkStatus();
}

Emulator::Direction* Emulator::FindDirection(int from, int to) {
  if (from < 0 || to < 0) return nullptr;
  int index = direction_index_[from * ports_.size() + to];
  return index < 0 ? nullptr : &directions_[index];
}

void Emulator::ReadBurst(int port, int64_t now_ns) {
  for (int i = 0; i < kBurstPackets; ++i) {
    ssize_t got = read(ports_[port].tun_fd, scratch_.data(), scratch_.size());
    if (got < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        Log(LogLevel::kWarning, "silk-wanem: read from TUN of region %s: %s", ports_[port].region, std::strerror(errno));
      }
      return;
    }
    const absl::Span<const uint8_t> buffer(scratch_.data(), static_cast<size_t>(got));
    const PacketInfo packet = ParsePacket(buffer, vnet_header_);
    if (!packet.ipv4) {
      ++not_ipv4_packets_;  // e.g. IPv6 router solicitations from the gateway
      continue;
    }
    int to = -1;
    for (size_t p = 0; p < ports_.size(); ++p) {
      if (ports_[p].subnet.Contains(packet.destination)) to = static_cast<int>(p);
    }
    Direction* direction = FindDirection(port, to);
    if (direction == nullptr) {
      ++unroutable_packets_;
      continue;
    }
    auto admission = direction->model.Admit(now_ns, packet.wire_bytes, packet.segments);
    if (admission.accepted && !direction->line.Push(admission.deliver_at_ns, buffer, packet.segments)) {
      direction->model.counters().dropped_overflow += packet.segments;
    }
  }
}

void Emulator::Deliver(int64_t now_ns) {
  for (Direction& direction : directions_) {
    int fd = ports_[direction.to].tun_fd;
    LinkCounters& counters = direction.model.counters();
    while (!direction.line.empty() && direction.line.FrontDeliverAt() <= now_ns) {
      absl::Span<const uint8_t> packet = direction.line.Front();
      const uint32_t segments = direction.line.FrontSegments();
      int64_t late_ns = now_ns - direction.line.FrontDeliverAt();
      counters.max_late_ns = std::max(counters.max_late_ns, late_ns);
      counters.total_late_ns += late_ns * segments;
      if (write(fd, packet.data(), packet.size()) == static_cast<ssize_t>(packet.size())) {
        counters.delivered_packets += segments;
        counters.delivered_bytes += ParsePacket(packet, vnet_header_).wire_bytes;
      } else {
        counters.write_errors += segments;
      }
      direction.line.Pop();
      last_delivery_ns_ = now_ns;
    }
  }
}

void Emulator::ArmTimer(int64_t deadline_ns) {
  if (deadline_ns == armed_deadline_ns_) return;
  itimerspec spec{};
  if (deadline_ns != INT64_MAX) {
    spec.it_value.tv_sec = deadline_ns / 1'000'000'000;
    spec.it_value.tv_nsec = deadline_ns % 1'000'000'000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;  // 0 would disarm
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  armed_deadline_ns_ = deadline_ns;
}

absl::Status Emulator::Run() {
  Log(LogLevel::kInfo, "silk-wanem: forwarding between %d regions over %d link directions", ports_.size(),
      directions_.size());
  epoll_event events[16];
  while (true) {
    int64_t now_ns = MonotonicNowNs();
    int64_t deadline_ns = control_ ? control_->ExpireClients(now_ns) : INT64_MAX;
    int64_t due_ns = INT64_MAX;
    for (const Direction& direction : directions_) {
      if (!direction.line.empty()) due_ns = std::min(due_ns, direction.line.FrontDeliverAt());
    }
    if (due_ns != INT64_MAX) deadline_ns = std::min(deadline_ns, std::max(due_ns, last_delivery_ns_ + delivery_batch_ns_));
    ArmTimer(deadline_ns);
    int ready = epoll_wait(epoll_fd_, events, 16, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Errno("epoll_wait");
    }
    now_ns = MonotonicNowNs();
    for (int i = 0; i < ready; ++i) {
      uint32_t kind = static_cast<uint32_t>(events[i].data.u64 >> 32);
      uint32_t value = static_cast<uint32_t>(events[i].data.u64);
      if (kind == kTunEvent) {
        ReadBurst(static_cast<int>(value), now_ns);
      } else if (kind == kTimerEvent) {
        uint64_t expirations;
        (void)!read(timer_fd_, &expirations, sizeof(expirations));
        armed_deadline_ns_ = -1;
      } else if (kind == kSignalEvent) {
        signalfd_siginfo info;
        (void)!read(signal_fd_, &info, sizeof(info));
        Log(LogLevel::kInfo, "silk-wanem: stopping on signal %d", info.ssi_signo);
        return absl::OkStatus();
      } else if (kind == kControlEvent) {
        control_->OnEvent(static_cast<int>(value), now_ns);
      }
    }
    Deliver(MonotonicNowNs());
  }
}

}  // namespace silk::cluster::wanem
