// The engine through a real communicator: ordering, timeouts, sticky errors.
#include "runtime/engine/engine.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "runtime/core/status_macros.h"
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

// A blocking call's shorter way: on the calling thread, numbered in turn
// with submitted operations, counted, sticky on failure; never while the
// engine has work, and never once it has failed.
// RunHereIfIdle, tried until the engine's thread has counted its last
// operation as ended (it does so just after that operation's Work completes).
std::optional<absl::Status> RunHereOnceIdle(Communicator& comm, uint64_t count,
                                            absl::FunctionRef<absl::Status(OpContext&)> body) {
  for (int i = 0; i < 1000; ++i) {
    if (std::optional<absl::Status> here = comm.RunHereIfIdle(Probe(count), absl::ZeroDuration(), body)) return here;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return std::nullopt;
}

// A blocking call's shorter way: on the calling thread, numbered in turn
// with submitted operations, counted, sticky on failure; never while the
// engine has work, and never once it has failed.
TEST(Engine, RunHereIfIdleRunsOnTheCallerInTurnOnlyWhenIdle) {
  auto comms = testing::CreateCommunicators(1, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  Communicator& comm = *(*comms)[0];
  uint64_t submitted_id = 0;
  ASSERT_TRUE(comm.Submit(Probe(0), absl::ZeroDuration(), [&](OpContext& ctx) {
                    submitted_id = ctx.op_id();
                    return absl::OkStatus();
                  })->Wait(absl::Seconds(10)).ok());
  const std::thread::id caller = std::this_thread::get_id();
  uint64_t here_id = 0;
  std::optional<absl::Status> here = RunHereOnceIdle(comm, 1, [&](OpContext& ctx) {
    here_id = ctx.op_id();
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_GT(ctx.deadline(), absl::Now());
    return absl::OkStatus();
  });
  ASSERT_TRUE(here.has_value());
  EXPECT_TRUE(here->ok()) << *here;
  EXPECT_EQ(here_id, submitted_id + 1);
  EXPECT_EQ(comm.Stats().collectives, 2u);

  // Busy: an operation is running, so the call takes nothing (not even a number).
  absl::Notification running, release;
  WorkPtr busy = comm.Submit(Probe(2), absl::ZeroDuration(), [&](OpContext&) {
    running.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    return absl::OkStatus();
  });
  ASSERT_TRUE(running.WaitForNotificationWithTimeout(absl::Seconds(10)));
  bool ran = false;
  EXPECT_FALSE(comm.RunHereIfIdle(Probe(3), absl::ZeroDuration(), [&](OpContext&) {
                     ran = true;
                     return absl::OkStatus();
                   }).has_value());
  release.Notify();
  ASSERT_TRUE(busy->Wait(absl::Seconds(10)).ok());
  EXPECT_FALSE(ran);

  // A failure run here is the communicator's sticky error, named; afterwards
  // the call declines, so the usual path reports the error.
  here = RunHereOnceIdle(comm, 4, [](OpContext&) { return absl::InternalError("the body failed"); });
  ASSERT_TRUE(here.has_value());
  EXPECT_NE(here->message().find("the body failed"), std::string::npos) << *here;
  EXPECT_NE(here->message().find("#" + std::to_string(here_id + 2)), std::string::npos) << *here;
  EXPECT_EQ(comm.status().message(), here->message());
  EXPECT_FALSE(comm.RunHereIfIdle(Probe(5), absl::ZeroDuration(), [](OpContext&) { return absl::OkStatus(); })
                   .has_value());
  EXPECT_EQ(comm.Stats().collectives, 4u);
}

std::string ThisThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

// Fails the test and ends the process if `done` is not notified within
// `limit`: a deadlock must fail the test, not hang it.
void FailUnlessWithin(absl::Notification& done, absl::Duration limit, const char* what) {
  if (done.WaitForNotificationWithTimeout(limit)) return;
  ADD_FAILURE() << what << " did not finish within " << limit << " (deadlocked?)";
  std::fflush(nullptr);
  std::_Exit(1);
}

// An exchange with the other of two ranks, submitted as its own operation.
WorkPtr SubmitExchange(Communicator& comm, uint64_t count, int* got) {
  return comm.Submit(Probe(count), absl::ZeroDuration(), [got, count](OpContext& ctx) {
    int value = static_cast<int>(1000 * ctx.rank() + count);
    int peer = 1 - ctx.rank();
    return ctx.WaitAll({ctx.Recv(peer, 0, got, sizeof(int)), ctx.Send(peer, 0, &value, sizeof(value))});
  });
}

// Callbacks run on the callback threads, never on the engine's, and before
// Wait() returns.
TEST(EngineCallbacks, RunOffTheEngineThreadsBeforeWaitReturns) {
  auto comms = testing::CreateCommunicators(1, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  std::string body_thread, callback_thread;
  absl::Notification release;  // the callback is in place before the operation ends
  WorkPtr work = (*comms)[0]->Submit(Probe(0), absl::ZeroDuration(), [&](OpContext&) {
    body_thread = ThisThreadName();
    release.WaitForNotificationWithTimeout(absl::Seconds(30));
    return absl::OkStatus();
  });
  work->OnComplete([&](const absl::Status&) {
    absl::SleepFor(absl::Milliseconds(20));  // Wait() must wait for this
    callback_thread = ThisThreadName();
  });
  release.Notify();
  ASSERT_TRUE(work->Wait(absl::Seconds(30)).ok());
  EXPECT_EQ(body_thread.rfind("silk-engine", 0), 0u) << body_thread;  // silk-engine, silk-engine1, ...
  EXPECT_EQ(callback_thread, "silk-callbacks");
}

// A callback that submits an operation on the same communicator and waits
// for it (PowerSGD's shape), two levels deep, on several operations at once:
// everything completes, with the right data, and the callback's own Wait()
// on the operation it belongs to returns.
TEST(EngineCallbacks, ACallbackMayWaitForOperationsItSubmits) {
  auto comms = testing::CreateCommunicators(2, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  constexpr int kOps = 6;
  absl::Notification done;
  std::vector<absl::Status> results;
  std::thread runner([&] {
    results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      const int peer = 1 - comm.rank();
      std::vector<int> got(3 * kOps, -1);
      std::vector<absl::Status> nested(2 * kOps, absl::UnknownError("the callback did not run"));
      std::vector<WorkPtr> works;
      // The callbacks take turns, so that both ranks submit the nested
      // operations in one order (the application's side of the bargain);
      // those waiting for their turn hold callback threads meanwhile.
      absl::Mutex mu;
      int turn = 0;
      // Holds the engine until every callback is in place (one added to a
      // completed operation would run at once, on this thread).
      absl::Notification release;
      WorkPtr gate = comm.Submit(Probe(99), absl::ZeroDuration(), [&](OpContext&) {
        release.WaitForNotificationWithTimeout(absl::Seconds(30));
        return absl::OkStatus();
      });
      for (int i = 0; i < kOps; ++i) {
        WorkPtr work = SubmitExchange(comm, i, &got[i]);
        work->OnComplete([&, i, self = std::weak_ptr<Work>(work)](const absl::Status&) {
          {
            absl::MutexLock lock(&mu);
            auto my_turn = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return turn == i; };
            mu.AwaitWithTimeout(absl::Condition(&my_turn), absl::Seconds(30));
          }
          auto inner_done = std::make_shared<absl::Notification>();
          WorkPtr inner = SubmitExchange(comm, 100 + i, &got[kOps + i]);
          inner->OnComplete([&, i, inner_done](const absl::Status&) {
            nested[kOps + i] = SubmitExchange(comm, 200 + i, &got[2 * kOps + i])->Wait();
            inner_done->Notify();
          });
          nested[i] = inner->Wait();
          inner_done->WaitForNotificationWithTimeout(absl::Seconds(30));
          // Its own operation, from its own callback: the result is known.
          if (WorkPtr me = self.lock(); nested[i].ok() && me != nullptr) nested[i] = me->Wait(absl::Seconds(30));
          absl::MutexLock lock(&mu);
          ++turn;
        });
        works.push_back(work);
      }
      release.Notify();
      SILK_RETURN_IF_ERROR(gate->Wait());
      for (const WorkPtr& work : works) SILK_RETURN_IF_ERROR(work->Wait());
      for (const absl::Status& s : nested) SILK_RETURN_IF_ERROR(s);
      for (int i = 0; i < 3 * kOps; ++i) {
        const int expected = 1000 * peer + (i < kOps ? i : i < 2 * kOps ? 100 + i - kOps : 200 + i - 2 * kOps);
        if (got[i] != expected) return absl::InternalError(absl::StrFormat("exchange %d got %d", i, got[i]));
      }
      return absl::OkStatus();
    });
    done.Notify();
  });
  FailUnlessWithin(done, absl::Seconds(60), "operations submitted and waited for in callbacks");
  runner.join();
  for (auto& r : results) EXPECT_TRUE(r.ok()) << r;
}

// A callback waiting for the callback of a later operation (as a PyTorch
// future callback waits for a sibling's future): the later operation's
// callbacks do not queue behind the waiting one.
TEST(EngineCallbacks, ACallbackMayWaitForALaterOperationsCallbacks) {
  auto comms = testing::CreateCommunicators(1, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  Communicator& comm = *(*comms)[0];
  absl::Notification release, second_done, done;
  WorkPtr first = comm.Submit(Probe(0), absl::ZeroDuration(), [&](OpContext&) {
    release.WaitForNotificationWithTimeout(absl::Seconds(30));  // until the callbacks are in place
    return absl::OkStatus();
  });
  WorkPtr second = comm.Submit(Probe(1), absl::ZeroDuration(), [](OpContext&) { return absl::OkStatus(); });
  second->OnComplete([&](const absl::Status&) { second_done.Notify(); });
  bool waited = false;
  first->OnComplete([&](const absl::Status&) {
    waited = second_done.WaitForNotificationWithTimeout(absl::Seconds(30));
    done.Notify();
  });
  release.Notify();
  FailUnlessWithin(done, absl::Seconds(60), "a callback waiting for a later operation's callback");
  EXPECT_TRUE(waited);
  EXPECT_TRUE(first->Wait(absl::Seconds(30)).ok());
}

// A callback that drops the last reference to its communicator destroys it
// on a callback thread: the executor does not wait for (or join) itself.
TEST(EngineCallbacks, ACallbackMayDestroyTheCommunicator) {
  auto comms = testing::CreateCommunicators(1, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto holder = std::make_shared<std::unique_ptr<Communicator>>(std::move((*comms)[0]));
  absl::Notification release, destroyed;
  WorkPtr work = (*holder)->Submit(Probe(0), absl::ZeroDuration(), [&](OpContext&) {
    release.WaitForNotificationWithTimeout(absl::Seconds(30));
    return absl::OkStatus();
  });
  work->OnComplete([holder, &destroyed](const absl::Status&) {
    holder->reset();
    destroyed.Notify();
  });
  holder.reset();
  release.Notify();
  FailUnlessWithin(destroyed, absl::Seconds(30), "destroying the communicator from its callback");
  EXPECT_TRUE(work->Wait(absl::Seconds(30)).ok());
}

// The nested operation a callback waits for fails at its deadline when the
// peer never joins it: the wait ends with the timeout naming the operation.
TEST(EngineCallbacks, ANestedOperationThePeerNeverJoinsTimesOut) {
  auto comms = testing::CreateCommunicators(2, testing::TestConfig(2, absl::Seconds(1)));
  ASSERT_TRUE(comms.ok()) << comms.status();
  absl::Notification done;
  std::vector<absl::Status> results;
  std::thread runner([&] {
    results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      int got = -1, nested_got = -1;
      absl::Status nested = absl::UnknownError("the callback did not run");
      WorkPtr work = SubmitExchange(comm, 1, &got);
      if (comm.rank() == 0) {
        work->OnComplete([&](const absl::Status&) { nested = SubmitExchange(comm, 2, &nested_got)->Wait(); });
      } else {
        nested = absl::DeadlineExceededError("rank 1 stays out");
      }
      SILK_RETURN_IF_ERROR(work->Wait());
      return nested;
    });
    done.Notify();
  });
  FailUnlessWithin(done, absl::Seconds(60), "a nested operation the peer never joins");
  runner.join();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(absl::IsDeadlineExceeded(results[0])) << results[0];
  EXPECT_NE(results[0].message().find("probe(count=2"), std::string::npos) << results[0];
}

// An operation submitted with may_overlap starts while the earlier one still
// runs (up to the engine's streams); one without waits until nothing runs.
TEST(Engine, IndependentOperationsOverlapAndOrderedOnesWait) {
  Config config = testing::TestConfig();
  config.engine_streams = 3;
  auto comms = testing::CreateCommunicators(1, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  Communicator& comm = *(*comms)[0];
  absl::Notification release;
  std::atomic<int> running{0}, most{0};
  std::vector<int> started;
  absl::Mutex mu;
  auto body = [&](int i) {
    return [&, i](OpContext&) {
      {
        absl::MutexLock lock(&mu);
        started.push_back(i);
      }
      int now = ++running;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      release.WaitForNotificationWithTimeout(absl::Seconds(10));
      --running;
      return absl::OkStatus();
    };
  };
  std::vector<WorkPtr> works;
  works.push_back(comm.Submit(Probe(0), absl::ZeroDuration(), body(0)));
  works.push_back(comm.Submit(Probe(1), absl::ZeroDuration(), body(1), /*may_overlap=*/true));
  works.push_back(comm.Submit(Probe(2), absl::ZeroDuration(), body(2), /*may_overlap=*/true));
  works.push_back(comm.Submit(Probe(3), absl::ZeroDuration(), body(3)));  // waits for 0..2 to end
  works.push_back(comm.Submit(Probe(4), absl::ZeroDuration(), body(4), /*may_overlap=*/true));
  // 0, 1 and 2 run together; 3 may not start while they run.
  for (int i = 0; i < 500 && running.load() < 3; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(running.load(), 3);
  absl::SleepFor(absl::Milliseconds(100));
  {
    absl::MutexLock lock(&mu);
    std::vector<int> first = started;  // taken off the queue in order; their bodies may begin in any
    std::sort(first.begin(), first.end());
    EXPECT_EQ(first, (std::vector<int>{0, 1, 2}));
  }
  release.Notify();
  for (auto& w : works) EXPECT_TRUE(w->Wait(absl::Seconds(10)).ok());
  absl::MutexLock lock(&mu);
  ASSERT_EQ(started.size(), 5u);
  EXPECT_TRUE((started[3] == 3 && started[4] == 4) || (started[3] == 4 && started[4] == 3));
  EXPECT_EQ(most.load(), 3);
}

// Overlapping operations between ranks that run at different speeds still
// match by operation, and each gets its own data.
TEST(Engine, OverlappingOperationsMatchAcrossRanks) {
  Config config = testing::TestConfig();
  config.engine_streams = 4;
  auto comms = testing::CreateCommunicators(2, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    std::vector<WorkPtr> works;
    std::vector<int> got(40, -1);
    for (int i = 0; i < 40; ++i) {
      works.push_back(comm.Submit(Probe(i), absl::ZeroDuration(), [&got, i](OpContext& ctx) {
        if ((i + ctx.rank()) % 3 == 0) absl::SleepFor(absl::Milliseconds(2));  // skew the ranks
        int value = 1000 * ctx.rank() + i;
        int peer = 1 - ctx.rank();
        auto recv = ctx.Recv(peer, 0, &got[i], sizeof(int));
        auto send = ctx.Send(peer, 0, &value, sizeof(value));
        return ctx.WaitAll({recv, send});
      }, /*may_overlap=*/true));
    }
    for (auto& w : works) SILK_RETURN_IF_ERROR(w->Wait());
    const int peer = 1 - comm.rank();
    for (int i = 0; i < 40; ++i) {
      if (got[i] != 1000 * peer + i) return absl::InternalError(absl::StrFormat("op %d got %d", i, got[i]));
    }
    return absl::OkStatus();
  });
  for (auto& r : results) EXPECT_TRUE(r.ok()) << r;
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
