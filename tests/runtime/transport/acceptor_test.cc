// The acceptor runs every handshake on one event loop: strangers cost a
// descriptor until their deadline, never a thread, and never keep peers out.
#include "runtime/transport/acceptor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/transport/socket.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

HandshakeParams Params(int rank) { return HandshakeParams{77, "the-real-token", rank, 4, 1, 0}; }

class AcceptorTest : public ::testing::Test {
 protected:
  void StartAcceptor(Acceptor::Options options) {
    auto listener = ListenTcp(0, SocketOptions{});
    ASSERT_TRUE(listener.ok()) << listener.status();
    port_ = LocalPort(listener->get());
    acceptor_ = std::make_unique<Acceptor>(
        &loop_, std::move(*listener), options, [](const AcceptedConnection&) { return absl::OkStatus(); },
        [this](ScopedFd fd, AcceptedConnection from) {
          accepted_ranks_.push_back(from.rank);  // loop thread only
          accepted_++;
          return absl::OkStatus();
        });
    ASSERT_TRUE(loop_.Start(nullptr).ok());
    ASSERT_TRUE(acceptor_->Start().ok());
  }
  void TearDown() override {
    if (acceptor_) acceptor_->Close();
    loop_.Stop();
    acceptor_.reset();
  }
  ScopedFd Dial() {
    auto fd = ConnectTcp("127.0.0.1", port_, SocketOptions{}, Soon());
    EXPECT_TRUE(fd.ok()) << fd.status();
    return fd.ok() ? std::move(*fd) : ScopedFd();
  }
  void WaitFor(const std::function<bool()>& condition) {
    for (int i = 0; i < 1000 && !condition(); ++i) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_TRUE(condition());
  }

  EventLoop loop_{"test-accept"};
  std::unique_ptr<Acceptor> acceptor_;
  uint16_t port_ = 0;
  std::vector<int> accepted_ranks_;
  std::atomic<int> accepted_{0};
};

TEST_F(AcceptorTest, IdleStrangersBeyondTheLimitDropTheOldestNotThePeer) {
  StartAcceptor(Acceptor::Options{"test", absl::Seconds(30), /*max_pending=*/8});
  acceptor_->SetParams(Params(0));
  std::vector<ScopedFd> strangers;
  for (int i = 0; i < 40; ++i) strangers.push_back(Dial());
  WaitFor([&] { return acceptor_->rejected() >= 32; });  // 40 arrived, 8 may wait
  ScopedFd peer = Dial();
  absl::Status joined = ClientHandshake(peer.get(), Params(3), 0, 0, Soon());
  EXPECT_TRUE(joined.ok()) << joined;
  WaitFor([&] { return accepted_.load() == 1; });
}

// A connection from `source` (any address of 127/8 is this machine).
ScopedFd DialFrom(const char* source, uint16_t port) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof(remote)), 0);
  return fd;
}

TEST_F(AcceptorTest, OneSourceCannotTakeEverySlot) {
  Acceptor::Options options{"test", absl::Seconds(30), /*max_pending=*/64};
  options.max_pending_per_source = 4;
  StartAcceptor(options);
  acceptor_->SetParams(Params(0));
  std::vector<ScopedFd> others, flood;
  for (int i = 0; i < 3; ++i) others.push_back(DialFrom("127.0.0.2", port_));
  for (int i = 0; i < 10; ++i) flood.push_back(DialFrom("127.0.0.3", port_));
  WaitFor([&] { return acceptor_->rejected() >= 6; });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(acceptor_->rejected(), 6) << "only the flooding source loses connections";
  // The other source's connections are all still there: each completes its handshake.
  for (auto& fd : others) {
    ASSERT_TRUE(SetNonBlocking(fd.get(), true).ok());
    EXPECT_TRUE(ClientHandshake(fd.get(), Params(1), 0, 0, Soon()).ok());
  }
}

TEST_F(AcceptorTest, ConnectionsBeforeTheParametersWaitForThem) {
  StartAcceptor(Acceptor::Options{"test", absl::Seconds(10)});
  ScopedFd peer = Dial();
  std::thread later([&] {
    absl::SleepFor(absl::Milliseconds(200));
    acceptor_->SetParams(Params(0));
  });
  absl::Status joined = ClientHandshake(peer.get(), Params(2), 0, 0, Soon());
  later.join();
  EXPECT_TRUE(joined.ok()) << joined;
  WaitFor([&] { return accepted_.load() == 1; });
  loop_.RunSync([&] { EXPECT_EQ(accepted_ranks_, std::vector<int>{2}); });
}

TEST_F(AcceptorTest, SilentConnectionIsDroppedAtItsDeadline) {
  StartAcceptor(Acceptor::Options{"test", absl::Milliseconds(200)});
  acceptor_->SetParams(Params(0));
  const absl::Time start = absl::Now();
  ScopedFd silent = Dial();
  WaitFor([&] { return acceptor_->rejected() == 1; });
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(3));
  // The acceptor closed its end: the stranger reads the Challenge, then the end.
  char buffer[4096];
  ssize_t n = -1;
  for (absl::Time until = Soon(); absl::Now() < until;) {
    n = ::recv(silent.get(), buffer, sizeof(buffer), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) break;
    if (n < 0) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(n, 0) << "the acceptor's end is still open";
}

TEST_F(AcceptorTest, CloseDropsTheHandshakesInProgress) {
  StartAcceptor(Acceptor::Options{"test", absl::Seconds(30)});
  acceptor_->SetParams(Params(0));
  ScopedFd a = Dial(), b = Dial();
  for (ScopedFd* fd : {&a, &b}) {  // each was accepted: its Challenge came
    char prefix[4];
    ASSERT_TRUE(ReadExact(fd->get(), prefix, sizeof(prefix), Soon()).ok());
  }
  acceptor_->Close();
  EXPECT_EQ(acceptor_->rejected(), 2);
  EXPECT_EQ(accepted_.load(), 0);
}

// The transport's start-up with its port full of idle strangers (a fixed
// SILK_PORT is easy to find): the real peers still join.
TEST(TcpStartUp, FortyIdleStrangersDoNotKeepThePeersOut) {
  tcp::TcpOptions options;
  std::vector<std::unique_ptr<tcp::TcpTransport>> transports;
  std::vector<tcp::PeerEndpoint> endpoints(3);
  for (int r = 0; r < 3; ++r) {
    auto t = tcp::TcpTransport::Listen(r, 3, options);
    ASSERT_TRUE(t.ok()) << t.status();
    endpoints[r].host = "127.0.0.1";
    endpoints[r].port = (*t)->port();
    transports.push_back(std::move(*t));
  }
  std::vector<ScopedFd> strangers;
  for (int i = 0; i < 40; ++i) {
    auto fd = ConnectTcp("127.0.0.1", endpoints[0].port, SocketOptions{}, Soon());
    ASSERT_TRUE(fd.ok()) << fd.status();
    strangers.push_back(std::move(*fd));
  }
  std::vector<absl::Status> results(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] { results[r] = transports[r]->Connect(endpoints, 77, "token", Soon()); });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

}  // namespace
}  // namespace silk::transport
