#include "cluster/wanem/tun.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace silk::cluster::wanem {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

absl::StatusOr<int> OpenTunHere(const std::string& ifname, const std::string& where, bool vnet_header) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrFormat("TUN device name \"%s\" must have 1 to %d characters",
                                                      ifname, IFNAMSIZ - 1));
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Errno("open /dev/net/tun" + where);
  ifreq request{};
  request.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0);
  std::memcpy(request.ifr_name, ifname.data(), ifname.size());
  if (ioctl(fd, TUNSETIFF, &request) != 0) {
    absl::Status status = Errno(absl::StrFormat("attach to TUN device %s%s", ifname, where));
    close(fd);
    return status;
  }
  return fd;
}

}  // namespace

absl::StatusOr<int> OpenTun(const std::string& netns_path, const std::string& ifname, bool vnet_header) {
  if (netns_path.empty()) return OpenTunHere(ifname, "", vnet_header);
  std::string where = " in network namespace " + netns_path;
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return Errno("open /proc/thread-self/ns/net");
  int target = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    absl::Status status = Errno("open network namespace " + netns_path);
    close(home);
    return status;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    absl::Status status = Errno("enter network namespace " + netns_path);
    close(target);
    close(home);
    return status;
  }
  absl::StatusOr<int> fd = OpenTunHere(ifname, where, vnet_header);
  if (setns(home, CLONE_NEWNET) != 0) {
    absl::Status status = Errno("return to the original network namespace after " + netns_path);
    if (fd.ok()) close(*fd);
    close(target);
    close(home);
    return status;
  }
  close(target);
  close(home);
  return fd;
}

absl::Status SetTunOffload(int fd, bool on) {
  const unsigned int flags = on ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN : 0;
  if (ioctl(fd, TUNSETOFFLOAD, flags) != 0) return Errno(on ? "turn TUN offloads on" : "turn TUN offloads off");
  return absl::OkStatus();
}

}  // namespace silk::cluster::wanem
