#include "tests/support/processes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace silk::testing {

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::vector<ProcessResult> LaunchRanks(const std::string& program, const std::vector<std::string>& args, int ranks,
                                       absl::Duration timeout, const std::map<std::string, std::string>& extra_env,
                                       const std::map<int, std::vector<std::string>>& rank_args) {
  const int port = FreeLoopbackPort();
  std::vector<pid_t> pids(ranks, -1);
  std::vector<int> pipes(ranks, -1);
  std::vector<ProcessResult> results(ranks);
  for (int r = 0; r < ranks; ++r) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", absl::StrCat(port).c_str(), 1);
      setenv("RANK", absl::StrCat(r).c_str(), 1);
      setenv("WORLD_SIZE", absl::StrCat(ranks).c_str(), 1);
      setenv("LOCAL_RANK", absl::StrCat(r).c_str(), 1);
      for (const char* var : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) unsetenv(var);
      for (const auto& [key, value] : extra_env) setenv(key.c_str(), value.c_str(), 1);
      std::vector<std::string> all = {program};
      all.insert(all.end(), args.begin(), args.end());
      if (auto it = rank_args.find(r); it != rank_args.end()) all.insert(all.end(), it->second.begin(), it->second.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(program.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    pids[r] = pid;
    pipes[r] = fds[0];
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
  }
  absl::Time deadline = absl::Now() + timeout;
  int open_pipes = 0;
  for (int fd : pipes) open_pipes += fd >= 0 ? 1 : 0;
  while (open_pipes > 0 && absl::Now() < deadline) {
    std::vector<pollfd> polls;
    for (int fd : pipes) polls.push_back(pollfd{fd, POLLIN, 0});
    poll(polls.data(), polls.size(), 100);
    for (int r = 0; r < ranks; ++r) {
      if (pipes[r] < 0 || polls[r].revents == 0) continue;
      char buffer[4096];
      ssize_t n = read(pipes[r], buffer, sizeof(buffer));
      if (n > 0) {
        results[r].output.append(buffer, n);
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(pipes[r]);
        pipes[r] = -1;
        open_pipes--;
      }
    }
  }
  for (int r = 0; r < ranks; ++r) {
    if (pids[r] < 0) continue;
    int status = 0;
    // Output closed; give the process until the deadline to exit, then kill it.
    while (waitpid(pids[r], &status, WNOHANG) == 0) {
      if (absl::Now() >= deadline) {
        kill(pids[r], SIGKILL);
        waitpid(pids[r], &status, 0);
        results[r].exit_code = -1;
        results[r].output += "\n[killed at the test deadline]";
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (results[r].exit_code == -1 && results[r].output.find("[killed") != std::string::npos) continue;
    results[r].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  for (int fd : pipes) {
    if (fd >= 0) close(fd);
  }
  return results;
}

}  // namespace silk::testing
