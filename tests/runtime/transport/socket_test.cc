// Socket options as the transport applies them: each one set is read back.
#include "runtime/transport/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace silk::transport {
namespace {

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &length), 0);
  return value;
}

TEST(SocketOptions, NotsentLowatIsSetWhenAskedAndLeftAloneOtherwise) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(fd.valid());
  const int kernel_default = IntOption(fd.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT);
  ASSERT_TRUE(ApplySocketOptions(fd.get(), SocketOptions{}).ok());
  EXPECT_EQ(IntOption(fd.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT), kernel_default);

  SocketOptions options;
  options.notsent_lowat_bytes = 256 << 10;
  ASSERT_TRUE(ApplySocketOptions(fd.get(), options).ok());
  EXPECT_EQ(IntOption(fd.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT), 256 << 10);
  EXPECT_EQ(IntOption(fd.get(), IPPROTO_TCP, TCP_NODELAY), 1);
}

TEST(SocketOptions, UnknownCongestionControlIsAnErrorNamingIt) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(fd.valid());
  SocketOptions options;
  options.congestion = "no-such-cc";
  absl::Status status = ApplySocketOptions(fd.get(), options);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("no-such-cc"), std::string::npos) << status;
}

TEST(SocketBuffers, SetWithinTheCapElseLeftToTheKernelWhereItTunesFurther) {
  EXPECT_EQ(SocketBufferToSet(1 << 20, 4 << 20, 32 << 20), size_t{1} << 20);   // within the cap
  EXPECT_EQ(SocketBufferToSet(16 << 20, 4 << 20, 32 << 20), 0u);               // the kernel tunes further
  EXPECT_EQ(SocketBufferToSet(16 << 20, 212992, 6 << 20), 0u);                 // a distribution's defaults
  EXPECT_EQ(SocketBufferToSet(16 << 20, 4 << 20, 4 << 20), size_t{4} << 20);   // no further: the cap
  EXPECT_EQ(SocketBufferToSet(16 << 20, 0, 0), size_t{16} << 20);              // limits unknown: as asked
}

size_t LastNumberIn(const char* path) {
  std::ifstream file(path);
  size_t value = 0, last = 0;
  while (file >> value) last = value;
  return last;
}

// On this machine's own limits: a receive buffer within net.core.rmem_max is
// set (the kernel reports twice it); one past it is capped or left alone as
// SocketBufferToSet says.
TEST(SocketBuffers, ReceiveBufferFollowsThisMachinesLimits) {
  const size_t cap = LastNumberIn("/proc/sys/net/core/rmem_max");
  const size_t tuned = LastNumberIn("/proc/sys/net/ipv4/tcp_rmem");
  if (cap < (64 << 10) || cap >= (1u << 29)) GTEST_SKIP() << "net.core.rmem_max " << cap;
  {
    ScopedFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_TRUE(fd.valid());
    SetSocketBuffers(fd.get(), 64 << 10);
    EXPECT_EQ(IntOption(fd.get(), SOL_SOCKET, SO_RCVBUF), 2 * (64 << 10));
  }
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(fd.valid());
  const int kernel_default = IntOption(fd.get(), SOL_SOCKET, SO_RCVBUF);
  SetSocketBuffers(fd.get(), 2 * cap);
  const size_t set = SocketBufferToSet(2 * cap, cap, tuned);
  EXPECT_EQ(IntOption(fd.get(), SOL_SOCKET, SO_RCVBUF), set == 0 ? kernel_default : static_cast<int>(2 * set));
}

}  // namespace
}  // namespace silk::transport
