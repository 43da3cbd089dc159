// NodeIdentity: the same for every process of one machine and network
// namespace, different in another namespace under the same host name (which
// is how the virtual cluster's nodes, and containers, look to each other).
#include "runtime/core/node_identity.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace silk {
namespace {

// NodeIdentity() as a child process sees it, after `enter_namespace` ran
// there; empty when the child could not run it.
template <typename Setup>
std::string IdentityInChild(Setup enter_namespace) {
  int fds[2];
  if (pipe(fds) != 0) return "";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (!enter_namespace()) _exit(2);
    const std::string identity = NodeIdentity();
    _exit(write(fds[1], identity.data(), identity.size()) == static_cast<ssize_t>(identity.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string identity;
  char buffer[512];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof(buffer))) > 0;) identity.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? identity : "";
}

TEST(NodeIdentityTest, SameMachineAndNamespaceSameIdentity) {
  const std::string mine = NodeIdentity();
  EXPECT_NE(mine.find("netns:"), std::string::npos) << mine;
  EXPECT_EQ(IdentityInChild([] { return true; }), mine);
}

TEST(NodeIdentityTest, AnotherNetworkNamespaceUnderTheSameHostNameDiffers) {
  const std::string other = IdentityInChild([] { return unshare(CLONE_NEWNET) == 0; });
  if (other.empty()) GTEST_SKIP() << "cannot create a network namespace here (needs root or user namespaces)";
  const std::string mine = NodeIdentity();
  EXPECT_NE(other, mine);
  // Only the namespace part differs: the host name is the same.
  EXPECT_EQ(other.substr(0, other.find("netns:")), mine.substr(0, mine.find("netns:")));
}

}  // namespace
}  // namespace silk
