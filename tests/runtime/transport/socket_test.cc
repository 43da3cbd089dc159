// Socket options as the transport applies them: each one set is read back.
#include "runtime/transport/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

}  // namespace
}  // namespace silk::transport
