// The long links' liveness (link_monitor.h): an outage is the whole link
// silent, named with its peers and since when; it ends when any peer is heard.
#include "runtime/transport/link_monitor.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/transport/tcp/tcp_transport.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport {
namespace {

constexpr absl::Duration kDetect = absl::Seconds(1);

TEST(LinkMonitor, ALinkIsDownOnlyWhenEveryPeerAcrossItIsSilent) {
  LinkMonitor monitor(6, kDetect, absl::Minutes(3));
  monitor.AddLink("WAN a<->b", {3, 4, 5});
  for (int peer : {3, 4, 5}) monitor.Heard(peer);
  const absl::Time start = absl::Now();
  monitor.Check(start + absl::Milliseconds(900));
  EXPECT_FALSE(monitor.Current().has_value());
  monitor.Check(start + absl::Milliseconds(1100));
  std::optional<Outage> outage = monitor.Current();
  ASSERT_TRUE(outage.has_value());
  EXPECT_EQ(outage->peers, 3);
  const std::string text = outage->Describe(start + absl::Seconds(2));
  EXPECT_NE(text.find("WAN a<->b: no traffic from any of 3 peers since"), std::string::npos) << text;
  // Replacement connections are dialled only once the silence lasts twice the detection time.
  EXPECT_TRUE(monitor.SilentPeers(start + absl::Milliseconds(1100), 2 * kDetect).empty());
  EXPECT_EQ(monitor.SilentPeers(start + absl::Milliseconds(2100), 2 * kDetect), (std::vector<int>{3, 4, 5}));
  monitor.Heard(4);  // one peer is enough: the link carries traffic again
  monitor.Check(absl::Now());
  EXPECT_FALSE(monitor.Current().has_value());
  EXPECT_TRUE(monitor.SilentPeers(absl::Now() + absl::Seconds(5), 2 * kDetect).empty());
  std::optional<Outage> ended = monitor.Since(start);
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->ongoing());
}

// An outage lengthens a wait up to the tolerance; in an elastic job it also
// ends a wait whose own deadline is later, at the tolerance.
TEST(LinkMonitor, AnOutageEndsWaitsAtTheToleranceOnlyWhenAskedTo) {
  for (bool bounds : {false, true}) {
    LinkMonitor monitor(2, kDetect, absl::Seconds(10), bounds);
    monitor.AddLink("WAN a<->b", {1});
    monitor.Heard(1);
    const absl::Time start = absl::Now();
    monitor.Check(start + absl::Milliseconds(1100));  // down since about `start`
    ASSERT_TRUE(monitor.Current().has_value());
    const absl::Time since = monitor.Current()->since;
    const absl::Time short_deadline = start + absl::Seconds(2), long_deadline = start + absl::Minutes(5);
    EXPECT_EQ(monitor.StretchDeadline(start, short_deadline, absl::ZeroDuration()), since + absl::Seconds(10));
    EXPECT_EQ(monitor.StretchDeadline(start, long_deadline, absl::ZeroDuration()),
              bounds ? since + absl::Seconds(10) : long_deadline)
        << "bounds " << bounds;
  }
}

TEST(LinkMonitor, OnePeerHeardKeepsTheLinkUp) {
  LinkMonitor monitor(3, kDetect, absl::Minutes(3));
  monitor.AddLink("WAN a<->b", {1, 2});
  monitor.Heard(1);
  monitor.Heard(2);
  const absl::Time later = absl::Now() + absl::Seconds(5);
  monitor.Heard(2);  // "now", which the check below sees as 5 s ago minus nothing: still the latest
  monitor.Check(absl::Now() + absl::Milliseconds(500));
  EXPECT_FALSE(monitor.Current().has_value());
  monitor.Check(later);
  EXPECT_TRUE(monitor.Current().has_value());
}

TEST(LinkMonitor, ALinkGoingQuietHasAVerdictDue) {
  LinkMonitor monitor(2, kDetect, absl::Minutes(3));
  monitor.AddLink("WAN a<->b", {1});
  monitor.Heard(1);
  const absl::Time heard = absl::Now();
  EXPECT_FALSE(monitor.VerdictDue(heard + absl::Milliseconds(100)).has_value());
  std::optional<absl::Time> due = monitor.VerdictDue(heard + absl::Milliseconds(600));
  ASSERT_TRUE(due.has_value());
  EXPECT_LE(*due - heard, kDetect + absl::Milliseconds(50));
  monitor.Check(heard + absl::Milliseconds(1100));
  EXPECT_FALSE(monitor.VerdictDue(heard + absl::Milliseconds(1200)).has_value()) << "declared: no verdict pending";
}

TEST(LinkMonitor, APeerNeverHeardIsStartingUpNotDown) {
  LinkMonitor monitor(2, kDetect, absl::Minutes(3));
  monitor.AddLink("WAN a<->b", {1});
  monitor.Check(absl::Now() + absl::Minutes(1));
  EXPECT_FALSE(monitor.Current().has_value());
}

// Over real TCP lanes: idle monitored peers keep hearing each other's
// heartbeats, so no outage is ever declared on a healthy link.
TEST(LinkMonitor, HeartbeatsKeepAnIdleHealthyLinkUp) {
  tcp::TcpOptions options;
  options.heartbeat = absl::Milliseconds(100);  // ten per outage_after (1 s): a loaded machine still keeps up
  std::vector<std::unique_ptr<tcp::TcpTransport>> transports;
  std::vector<tcp::PeerEndpoint> endpoints(2);
  for (int r = 0; r < 2; ++r) {
    auto t = tcp::TcpTransport::Listen(r, 2, options);
    ASSERT_TRUE(t.ok()) << t.status();
    endpoints[r].host = "127.0.0.1";
    endpoints[r].port = (*t)->port();
    endpoints[r].link = "WAN test";
    transports.push_back(std::move(*t));
  }
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(2);
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      results[r] = transports[r]->Connect(endpoints, 77, "token", absl::Now() + absl::Seconds(10));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(results[0].ok() && results[1].ok()) << results[0] << results[1];
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(2.5));  // idle: only heartbeats cross
  for (auto& t : transports) {
    EXPECT_TRUE(t->OutageError().ok()) << t->OutageError();
    // No outage overlapped the wait (a wait may still be stretched briefly if
    // a loaded machine delays a heartbeat past half the detection time).
    const absl::Time d = absl::Now() + absl::Seconds(10);
    EXPECT_LE(t->StretchDeadline(start, d), d + absl::Seconds(2));
  }
}

}  // namespace
}  // namespace silk::transport
