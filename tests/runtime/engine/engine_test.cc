// The engine through a real communicator: ordering, timeouts, sticky errors.
#include "runtime/engine/engine.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

OpDescriptor Probe(uint64_t count) {
  OpDescriptor d;
  d.kind = CollectiveKind::kProbe;
  d.count = count;
  return d;
}

TEST(Engine, OperationsCompleteInIssueOrder) {
  auto comms = testing::CreateCommunicators(2, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    std::vector<int> order;
    absl::Mutex mu;
    std::vector<WorkPtr> works;
    for (int i = 0; i < 20; ++i) {
      works.push_back(comm.Submit(Probe(i), absl::ZeroDuration(), [&, i](OpContext& ctx) {
        int value = i, got = -1;
        int peer = 1 - ctx.rank();
        auto recv = ctx.Recv(peer, 0, &got, sizeof(got));
        auto send = ctx.Send(peer, 0, &value, sizeof(value));
        absl::Status s = ctx.WaitAll({recv, send});
        if (s.ok() && got != i) s = absl::InternalError("wrong value");
        absl::MutexLock lock(&mu);
        order.push_back(i);
        return s;
      }));
    }
    for (auto& w : works) {
      absl::Status s = w->Wait();
      if (!s.ok()) return s;
    }
    for (int i = 0; i < 20; ++i) {
      if (order[i] != i) return absl::InternalError("out of order");
    }
    return absl::OkStatus();
  });
  for (auto& r : results) EXPECT_TRUE(r.ok()) << r;
}

TEST(Engine, TimeoutNamesPeerAndOperationAndIsSticky) {
  auto comms = testing::CreateCommunicators(2, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  Communicator& rank0 = *(*comms)[0];
  // Rank 1 never takes part: rank 0's receive must time out, not hang.
  WorkPtr work = rank0.Submit(Probe(1), absl::Milliseconds(300), [](OpContext& ctx) {
    int got;
    return ctx.Wait(ctx.Recv(1, 0, &got, sizeof(got)));
  });
  absl::Status status = work->Wait(absl::Seconds(30));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_NE(status.message().find("rank 1"), std::string::npos) << status;
  EXPECT_NE(status.message().find("probe"), std::string::npos) << status;
  // Sticky: the communicator reports it, later operations fail at once.
  EXPECT_FALSE(rank0.status().ok());
  WorkPtr later = rank0.Submit(Probe(2), absl::ZeroDuration(), [](OpContext&) { return absl::OkStatus(); });
  EXPECT_FALSE(later->Wait(absl::Seconds(5)).ok());
  // The peer heard of it too.
  for (int i = 0; i < 300 && (*comms)[1]->status().ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE((*comms)[1]->status().ok());
}

TEST(Engine, WorkTestAndCallbacks) {
  auto comms = testing::CreateCommunicators(1, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  absl::Notification release;
  std::atomic<int> callbacks{0};
  WorkPtr work = (*comms)[0]->Submit(Probe(0), absl::ZeroDuration(), [&](OpContext&) {
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    return absl::OkStatus();
  });
  work->OnComplete([&](const absl::Status& s) { callbacks += s.ok() ? 1 : 100; });
  EXPECT_FALSE(work->Test());
  EXPECT_TRUE(absl::IsDeadlineExceeded(work->Wait(absl::Milliseconds(50))));
  release.Notify();
  EXPECT_TRUE(work->Wait(absl::Seconds(10)).ok());
  EXPECT_TRUE(work->Test());
  work->OnComplete([&](const absl::Status& s) { callbacks += s.ok() ? 1 : 100; });
  EXPECT_EQ(callbacks.load(), 2);
}

}  // namespace
}  // namespace silk

namespace silk {
namespace {

// A group view runs a ring among the even ranks only; the odd ranks do the
// same among themselves, with the same message numbers, and nothing collides.
TEST(OpContextGroup, RanksAndPeersArePositionsInTheGroup) {
  auto comms = testing::CreateCommunicators(4, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    OpDescriptor d;
    d.kind = CollectiveKind::kProbe;
    WorkPtr work = comm.Submit(d, absl::ZeroDuration(), [](OpContext& ctx) -> absl::Status {
      std::vector<int> members = ctx.rank() % 2 == 0 ? std::vector<int>{0, 2} : std::vector<int>{1, 3};
      auto group = ctx.Group(members, 100);
      if (!group.ok()) return group.status();
      if (group->size() != 2 || group->rank() != ctx.rank() / 2) return absl::InternalError("wrong group rank");
      int mine = ctx.rank(), theirs = -1;
      int peer = 1 - group->rank();
      absl::Status s = group->WaitAll({group->Recv(peer, 0, &theirs, sizeof(theirs)),
                                       group->Send(peer, 0, &mine, sizeof(mine))});
      if (!s.ok()) return s;
      if (theirs != group->global_rank(peer)) return absl::InternalError("wrong partner");
      if (ctx.requests().size() != 2) return absl::InternalError("group requests must count as the operation's");
      if (ctx.Group({5, 6}, 0).ok()) return absl::InternalError("a non-member got a group");
      return absl::OkStatus();
    });
    return work->Wait();
  });
  for (auto& r : results) EXPECT_TRUE(r.ok()) << r;
}

}  // namespace
}  // namespace silk
