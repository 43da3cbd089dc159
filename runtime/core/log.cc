#include "runtime/core/log.h"

#include <atomic>
#include <cstdio>

namespace silk {
namespace {
std::atomic<int> g_level{0};
std::atomic<int> g_rank{-1};
}  // namespace

void SetLogLevel(int level) { g_level = level; }
void SetLogRank(int rank) { g_rank = rank; }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void LogLine(LogLevel level, const std::string& message) {
  const char tag = level == LogLevel::kDebug ? 'D' : level == LogLevel::kInfo ? 'I' : 'W';
  // One fprintf per line so concurrent threads do not interleave within a line.
  std::fprintf(stderr, "silk[rank %d] %c %s\n", g_rank.load(), tag, message.c_str());
}

}  // namespace silk
