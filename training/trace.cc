#include "training/trace.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace silk::training {

void TraceRecorder::Span(const std::string& track, const std::string& name, absl::Time start, absl::Time end) {
  absl::MutexLock lock(&mu_);
  auto it = std::find(tracks_.begin(), tracks_.end(), track);
  int tid = static_cast<int>(it - tracks_.begin());
  if (it == tracks_.end()) tracks_.push_back(track);
  events_.push_back({tid, name, absl::ToDoubleMicroseconds(start - origin_), absl::ToDoubleMicroseconds(end - start)});
}

size_t TraceRecorder::size() const {
  absl::MutexLock lock(&mu_);
  return events_.size();
}

absl::Status TraceRecorder::Write(const std::string& path) const {
  absl::MutexLock lock(&mu_);
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::UnavailableError(absl::StrFormat("cannot write trace %s", path));
  std::fprintf(f, "{\"traceEvents\":[\n");
  std::fprintf(f, "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":\"rank %d\"}}", pid_, pid_);
  for (size_t t = 0; t < tracks_.size(); ++t) {
    std::fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%zu,\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}", pid_, t,
                 tracks_[t].c_str());
  }
  for (const Event& e : events_) {
    std::fprintf(f, ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"name\":\"%s\",\"ts\":%.1f,\"dur\":%.1f}", pid_, e.tid,
                 e.name.c_str(), e.start_us, std::max(e.duration_us, 0.0));
  }
  std::fprintf(f, "\n],\"displayTimeUnit\":\"ms\"}\n");
  return std::fclose(f) == 0 ? absl::OkStatus() : absl::UnavailableError(absl::StrFormat("cannot write trace %s", path));
}

}  // namespace silk::training
