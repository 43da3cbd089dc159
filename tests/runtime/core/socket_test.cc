// The one set of socket helpers (runtime/core/socket.h), over loopback.
#include "runtime/core/socket.h"

#include <poll.h>
#include <sys/socket.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace silk {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

uint16_t UnusedPort() {
  auto listener = ListenTcp("127.0.0.1", 0, 1);
  EXPECT_TRUE(listener.ok()) << listener.status();
  return listener.ok() ? LocalPort(listener->get()) : 0;
}

TEST(Socket, ConnectingWhereNobodyListensGivesUpAtTheDeadlineNamingTheAddress) {
  const uint16_t port = UnusedPort();
  const absl::Time start = absl::Now();
  auto fd = ConnectTcp("127.0.0.1", port, absl::Now() + absl::Milliseconds(300));
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(fd.status())) << fd.status();
  EXPECT_NE(fd.status().message().find(HostPort("127.0.0.1", port)), std::string::npos) << fd.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(Socket, ConnectWaitsForAListenerThatComesLater) {
  const uint16_t port = UnusedPort();
  std::thread later([port] {
    absl::SleepFor(absl::Milliseconds(200));
    auto listener = ListenTcp("127.0.0.1", port, 4);
    ASSERT_TRUE(listener.ok()) << listener.status();
    absl::SleepFor(absl::Seconds(1));  // long enough for the connection to complete
  });
  auto fd = ConnectTcp("127.0.0.1", port, Soon());
  later.join();
  EXPECT_TRUE(fd.ok()) << fd.status();
}

TEST(Socket, AConfigurationErrorIsNotRetried) {
  const absl::Time start = absl::Now();
  auto fd = ConnectTcp("127.0.0.1", UnusedPort(), Soon(),
                       [](int) { return absl::UnavailableError("no such congestion control"); });
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("no such congestion control"), std::string::npos) << fd.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(Socket, ListenCountsUpFromABasePortThatIsTaken) {
  auto first = ListenTcp("127.0.0.1", 0, 4);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint16_t taken = LocalPort(first->get());
  auto second = ListenTcp("127.0.0.1", taken, 4, /*port_tries=*/8);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(LocalPort(second->get()), taken);
  auto refused = ListenTcp("127.0.0.1", taken, 4);
  EXPECT_FALSE(refused.ok());
}

TEST(Socket, ReadExactSaysHowFarItGotWhenThePeerCloses) {
  auto listener = ListenTcp("127.0.0.1", 0, 4);
  ASSERT_TRUE(listener.ok());
  auto client = ConnectTcp("127.0.0.1", LocalPort(listener->get()), Soon());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(WaitReady(listener->get(), POLLIN, Soon()).ok());
  ScopedFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(PeerAddress(server.get()).rfind("127.0.0.1:", 0), 0u) << PeerAddress(server.get());
  ASSERT_TRUE(WriteAll(client->get(), "abc", 3, Soon()).ok());
  client->reset();
  char buffer[8];
  absl::Status status = ReadExact(server.get(), buffer, sizeof(buffer), Soon());
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("after 3 of 8 bytes"), std::string::npos) << status;
}

TEST(Socket, ReadExactTimesOutAtItsDeadline) {
  auto listener = ListenTcp("127.0.0.1", 0, 4);
  ASSERT_TRUE(listener.ok());
  auto client = ConnectTcp("127.0.0.1", LocalPort(listener->get()), Soon());
  ASSERT_TRUE(client.ok());
  char byte;
  absl::Status status = ReadExact(client->get(), &byte, 1, absl::Now() + absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
}

TEST(Socket, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackAddress("localhost"));
  EXPECT_TRUE(IsLoopbackAddress("127.3.2.1"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackAddress("not-an-address"));
}

}  // namespace
}  // namespace silk
