// silk-coordinator: the store of an elastic job (SILK_ELASTIC=1), kept apart
// from the ranks so that losing any rank loses no membership record. The
// launcher starts one, in the region whose side goes on when the WAN is cut
// (docs/reliability.md, "Membership"), and gives every rank its address as
// MASTER_ADDR/MASTER_PORT.
//
//   silk-coordinator --port 29400 [--bind 0.0.0.0]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "runtime/bootstrap/tcp_store.h"

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void RequestStop(int) { stop_requested = 1; }

constexpr char kUsage[] = R"(usage: silk-coordinator --port P [--bind ADDR]

Serves the rendezvous and membership store of an elastic Silk job until
SIGTERM or SIGINT. Ranks reach it through MASTER_ADDR and MASTER_PORT.

  --port P      TCP port (0: the kernel picks one; the line printed names it)
  --bind ADDR   IPv4 address to listen on                         [0.0.0.0]
)";

}  // namespace

int main(int argc, char** argv) {
  int port = -1;
  std::string bind = "0.0.0.0";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--port" || a == "--bind") && i + 1 < argc) {
      if (a == "--port") port = std::atoi(argv[++i]);
      else bind = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "silk-coordinator: unknown or incomplete argument %s (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "silk-coordinator: --port is required (0..65535)\n");
    return 2;
  }
  std::signal(SIGTERM, RequestStop);
  std::signal(SIGINT, RequestStop);
  std::signal(SIGPIPE, SIG_IGN);
  auto server = silk::bootstrap::TcpStoreServer::Start(bind, static_cast<uint16_t>(port));
  if (!server.ok()) {
    std::fprintf(stderr, "silk-coordinator: cannot listen on %s:%d: %s\n", bind.c_str(), port,
                 std::string(server.status().message()).c_str());
    return 1;
  }
  std::printf("silk-coordinator: listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);
  while (!stop_requested) usleep(100 * 1000);  // a signal between the check and a pause() would be missed
  return 0;
}
