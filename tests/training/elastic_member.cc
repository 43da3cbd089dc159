// One member of an elastic job, for elastic_test.cc: a loop of checked
// all-reduces with a piece of state, that rides out lost members and admits
// restarted ones (Communicator::Reconfigure, training::SyncState).
//
//   elastic_member --steps N [--die-member M --die-at S [--die-after-op]]
//                  [--as-member M --incarnation K --start-after-ms T]
// prints "RESULT member=<m> epoch=<e> size=<n> step=<s> digest=<hex> lost=<k> joined=<k>".
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "runtime/communicator.h"
#include "training/elastic_state.h"

namespace {

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "elastic_member: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 40, die_member = -1, die_at = -1, as_member = -1, incarnation = 0, start_after_ms = 0;
  bool die_after_op = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : -1; };
    if (a == "--steps") steps = value();
    else if (a == "--die-member") die_member = value();
    else if (a == "--die-at") die_at = value();
    else if (a == "--die-after-op") die_after_op = true;
    else if (a == "--as-member") as_member = value();
    else if (a == "--incarnation") incarnation = value();
    else if (a == "--start-after-ms") start_after_ms = value();
    else return Fail("arguments", absl::InvalidArgumentError("unknown flag " + a));
  }
  if (as_member >= 0) setenv("RANK", absl::StrCat(as_member).c_str(), 1);
  setenv("SILK_ELASTIC_INCARNATION", absl::StrCat(incarnation).c_str(), 1);
  if (start_after_ms > 0) usleep(start_after_ms * 1000);

  auto created = silk::Communicator::CreateDefault();
  if (!created.ok()) return Fail("create", created.status());
  silk::Communicator& comm = **created;
  const int member = comm.member();
  // The state: a counter and a vector every step changes by the all-reduce's result.
  int64_t step = incarnation == 0 ? 0 : -1;
  std::vector<double> state(4096, 0.0);
  std::vector<silk::training::StateBlock> blocks = {{state.data(), state.size() * sizeof(double)}};
  int lost = 0, joined = 0;
  auto resync = [&]() -> absl::Status {
    absl::StatusOr<silk::training::StateSyncReport> r = silk::training::SyncState(comm, &step, blocks);
    return r.status();
  };
  if (step < 0) {  // a restarted member: admitted into the running job, it takes the state
    if (absl::Status s = resync(); !s.ok()) return Fail("state after joining", s);
  }
  while (step < steps) {
    if (member == die_member && incarnation == 0 && step == die_at && !die_after_op) raise(SIGKILL);
    // Inputs depend on the member and the step, so a result from the wrong
    // membership or step cannot pass the check below.
    std::vector<double> in(state.size()), out(state.size());
    for (size_t i = 0; i < in.size(); ++i) in[i] = (member + 1) * 1000.0 + step + i;
    silk::AllreduceOptions o;
    o.input = in.data();
    o.output = out.data();
    o.count = in.size();
    o.type = silk::DataType::kFloat64;
    absl::Status s = silk::Allreduce(comm, o);
    if (s.ok() && member == die_member && incarnation == 0 && step == die_at) raise(SIGKILL);
    // Admissions: agree on how many join requests everyone has seen.
    int64_t requests = comm.JoinRequests(), agreed = 0;
    if (s.ok()) {
      silk::AllreduceOptions m;
      m.input = &requests;
      m.output = &agreed;
      m.count = 1;
      m.type = silk::DataType::kInt64;
      m.op = silk::ReduceOp::kMax;
      s = silk::Allreduce(comm, m);
    }
    if (!s.ok()) {
      std::fprintf(stderr, "elastic_member %d: step %lld failed: %s\n", member, static_cast<long long>(step),
                   std::string(s.message()).c_str());
      absl::StatusOr<silk::Communicator::Reconfiguration> r = comm.Reconfigure();
      if (!r.ok()) return Fail("reconfigure", r.status());
      lost += r->lost.size();
      if (absl::Status st = resync(); !st.ok()) return Fail("state after shrinking", st);
      continue;
    }
    double expected0 = 0;
    for (int m : comm.members()) expected0 += (m + 1) * 1000.0 + step;
    if (out[0] != expected0 || out[7] != expected0 + 7 * comm.size()) {
      return Fail("check", absl::InternalError(absl::StrFormat("step %d: got %f, expected %f", step, out[0], expected0)));
    }
    for (size_t i = 0; i < state.size(); ++i) state[i] += out[i] / comm.size();
    ++step;
    if (agreed > comm.AnsweredJoinRequests()) {
      absl::StatusOr<silk::Communicator::Reconfiguration> r = comm.Reconfigure(agreed);
      if (!r.ok()) return Fail("admit", r.status());
      joined += r->joined.size();
      if (absl::Status st = resync(); !st.ok()) return Fail("state after admitting", st);
    }
    usleep(20 * 1000);
  }
  std::printf("RESULT member=%d epoch=%llu size=%d step=%lld digest=%016llx lost=%d joined=%d\n", member,
              static_cast<unsigned long long>(comm.epoch()), comm.size(), static_cast<long long>(step),
              static_cast<unsigned long long>(silk::training::StateDigest(blocks)), lost, joined);
  return 0;
}
