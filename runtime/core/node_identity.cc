#include "runtime/core/node_identity.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace silk {
namespace {

std::string FirstLine(const char* path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

// /etc/machine-id names the installation, but containers and cloned images
// repeat it; the boot id is drawn afresh by each running kernel, so together
// they tell machines apart.
std::string MachineId() {
  return FirstLine("/etc/machine-id") + "/" + FirstLine("/proc/sys/kernel/random/boot_id");
}

std::string NetworkNamespace() {
  struct stat st {};
  if (stat("/proc/self/ns/net", &st) != 0) return "";
  return absl::StrFormat("netns:%d:%d", static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

}  // namespace

std::string NodeIdentity() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrFormat("%s/%s/%s", host, MachineId(), NetworkNamespace());
}

}  // namespace silk
