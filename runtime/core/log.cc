#include "runtime/core/log.h"

#include <atomic>
#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"

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
  // UTC with microseconds: lines from ranks in two regions sort into one story.
  const std::string now = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  // One fprintf per line so concurrent threads do not interleave within a line.
  std::fprintf(stderr, "silk[rank %d] %s %c %s\n", g_rank.load(), now.c_str(), tag, message.c_str());
}

}  // namespace silk
