#include "runtime/engine/op_trace.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "runtime/core/json.h"

namespace silk {

OpTrace::OpTrace(std::string path, int rank)
    : path_(path.find("%r") != std::string::npos ? absl::StrReplaceAll(path, {{"%r", absl::StrCat(rank)}})
                                                   : absl::StrCat(path, ".rank", rank, ".json")),
      rank_(rank),
      origin_(absl::Now()) {}

void OpTrace::Record(TraceEvent event) {
  absl::MutexLock lock(&mu_);
  if (events_.size() >= kMaxEvents) {
    dropped_++;
    return;
  }
  events_.push_back(std::move(event));
}

absl::Status OpTrace::Write() const {
  FILE* f = std::fopen(path_.c_str(), "w");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("SILK_TRACE: cannot write ", path_));
  absl::MutexLock lock(&mu_);
  std::fprintf(f, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"rank\": %d, \"dropped_events\": %llu},\n", rank_,
               static_cast<unsigned long long>(dropped_));
  std::fprintf(f, " \"traceEvents\": [\n  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, "
               "\"args\": {\"name\": \"silk rank %d\"}}", rank_, rank_);
  for (const TraceEvent& e : events_) {
    std::fprintf(f,
                 ",\n  {\"name\": %s, \"cat\": %s, \"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, "
                 "\"dur\": %.3f, \"args\": {\"call\": %s, \"plan\": %s, \"op\": %llu, \"bytes_sent\": %llu, "
                 "\"bytes_received\": %llu, \"result\": %s}}",
                 JsonQuoted(e.name).c_str(), JsonQuoted(e.category).c_str(), rank_, e.track,
                 absl::ToDoubleMicroseconds(e.start - origin_), absl::ToDoubleMicroseconds(e.end - e.start),
                 JsonQuoted(e.call).c_str(), JsonQuoted(e.note).c_str(), static_cast<unsigned long long>(e.op_id),
                 static_cast<unsigned long long>(e.bytes_sent), static_cast<unsigned long long>(e.bytes_received),
                 JsonQuoted(e.result).c_str());
    for (const TracePhase& p : e.phases) {
      std::fprintf(f,
                   ",\n  {\"name\": %s, \"cat\": \"tier\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, "
                   "\"dur\": %.3f, \"args\": {\"bytes_sent\": %llu, \"bytes_received\": %llu}}",
                   JsonQuoted(p.tier + " traffic").c_str(), rank_, e.track, absl::ToDoubleMicroseconds(p.start - origin_),
                   absl::ToDoubleMicroseconds(p.end - p.start), static_cast<unsigned long long>(p.bytes_sent),
                   static_cast<unsigned long long>(p.bytes_received));
    }
  }
  std::fprintf(f, "\n]}\n");
  return std::fclose(f) == 0 ? absl::OkStatus() : absl::UnavailableError(absl::StrCat("SILK_TRACE: writing ", path_));
}

}  // namespace silk
