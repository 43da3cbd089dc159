// Minimal leveled logging to stderr (Debian's Abseil has no absl/log).
// Lines look like: "silk[rank 3] 2026-12-06T22:09:27.123456Z W transport: rejected ...".
#pragma once

#include <string>

#include "absl/strings/str_format.h"

namespace silk {

enum class LogLevel { kError = 0, kWarning = 0, kInfo = 1, kDebug = 2 };

void SetLogLevel(int level);
void SetLogRank(int rank);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, const std::string& message);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) LogLine(level, absl::StrFormat(format, args...));
}

}  // namespace silk
