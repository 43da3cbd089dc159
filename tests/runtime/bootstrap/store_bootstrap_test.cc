// StoreBootstrap with one thread per rank, each rank with its own TCP
// connection to a real store server on loopback.
#include "runtime/bootstrap/store_bootstrap.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/bootstrap/tcp_store.h"
#include "tests/runtime/bootstrap/store_test_util.h"

namespace silk::bootstrap {
namespace {

using ::silk::bootstrap::testing::ConnectClient;
using ::silk::bootstrap::testing::StartLoopbackServer;
using ::testing::HasSubstr;

constexpr char kPrefix[] = "test";

std::string ValueOf(int rank, int round) {
  // Sizes differ by rank and round, including empty values.
  return absl::StrCat(rank, "/", round, ":", std::string((rank * 37 + round * 11) % 300, 'a' + rank % 26));
}

// Runs `body(rank, bootstrap)` on one thread per rank in `ranks`.
template <typename Body>
void RunRanks(const TcpStoreServer& server, int size, const std::vector<int>& ranks, Body body) {
  std::vector<std::thread> threads;
  for (int rank : ranks) {
    threads.emplace_back([&, rank] {
      std::shared_ptr<Store> client = ConnectClient(server);
      ASSERT_NE(client, nullptr);
      StoreBootstrap bootstrap(client, rank, size, kPrefix);
      body(rank, bootstrap);
    });
  }
  for (auto& thread : threads) thread.join();
}

std::vector<int> AllRanks(int size) {
  std::vector<int> ranks(size);
  for (int r = 0; r < size; ++r) ranks[r] = r;
  return ranks;
}

class StoreBootstrapSizeTest : public ::testing::TestWithParam<int> {};

TEST_P(StoreBootstrapSizeTest, RepeatedAllGathersReturnEveryRanksValue) {
  const int size = GetParam();
  auto server = StartLoopbackServer();
  RunRanks(*server, size, AllRanks(size), [&](int rank, StoreBootstrap& bootstrap) {
    EXPECT_EQ(bootstrap.rank(), rank);
    EXPECT_EQ(bootstrap.size(), size);
    EXPECT_THAT(bootstrap.Describe(), HasSubstr(absl::StrCat("127.0.0.1:", server->port())));
    for (int round = 0; round < 4; ++round) {
      auto values = bootstrap.AllGather(ValueOf(rank, round), absl::Seconds(60));
      ASSERT_TRUE(values.ok()) << values.status();
      ASSERT_EQ(values->size(), static_cast<size_t>(size));
      for (int r = 0; r < size; ++r) EXPECT_EQ((*values)[r], ValueOf(r, round)) << "rank " << rank;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, StoreBootstrapSizeTest, ::testing::Values(1, 2, 4, 7));

TEST(StoreBootstrapTest, MissingRankTimesOutNamingIt) {
  auto server = StartLoopbackServer();
  RunRanks(*server, 4, {0, 1, 2}, [&](int rank, StoreBootstrap& bootstrap) {
    auto values = bootstrap.AllGather("x", absl::Milliseconds(500));
    ASSERT_TRUE(absl::IsDeadlineExceeded(values.status())) << values.status();
    EXPECT_THAT(values.status().message(), HasSubstr("bootstrap allgather #0 timed out after 500ms"));
    EXPECT_THAT(values.status().message(), HasSubstr("waiting for rank 3 of 4"));
    EXPECT_THAT(values.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", server->port())));
  });
}

TEST(StoreBootstrapTest, SeveralMissingRanksAreAllNamed) {
  auto server = StartLoopbackServer();
  RunRanks(*server, 6, {0, 3}, [&](int rank, StoreBootstrap& bootstrap) {
    auto values = bootstrap.AllGather("x", absl::Milliseconds(300));
    ASSERT_TRUE(absl::IsDeadlineExceeded(values.status())) << values.status();
    EXPECT_THAT(values.status().message(), HasSubstr("waiting for ranks 1, 2, 4, 5 of 6"));
  });
}

TEST(StoreBootstrapTest, RankZeroNamesARankThatNeverAcknowledged) {
  auto server = StartLoopbackServer();
  std::thread impostor([&] {
    // Rank 1 publishes and reads like a StoreBootstrap, then vanishes before acknowledging.
    auto client = ConnectClient(*server);
    auto session = client->Get(absl::StrCat(kPrefix, "/session/latest"), absl::Seconds(60));
    ASSERT_TRUE(session.ok()) << session.status();
    const std::string round = absl::StrCat(kPrefix, "/s", *session, "/0/data/");
    ASSERT_TRUE(client->Set(round + "1", "one").ok());
    ASSERT_TRUE(client->MultiGet({round + "0"}, absl::Seconds(60)).ok());
  });
  RunRanks(*server, 2, {0}, [&](int rank, StoreBootstrap& bootstrap) {
    auto values = bootstrap.AllGather("zero", absl::Milliseconds(500));
    ASSERT_TRUE(absl::IsDeadlineExceeded(values.status())) << values.status();
    EXPECT_THAT(values.status().message(), HasSubstr("waiting for acknowledgements from rank 1 of 2"));
  });
  impostor.join();
}

// Rank 0 hosts the server and destroys it as soon as its AllGather returns;
// every other rank must have its result by then.
TEST(StoreBootstrapTest, RankZeroMayDestroyTheServerRightAfterReturning) {
  constexpr int kSize = 5;
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto server = StartLoopbackServer();
    const uint16_t port = server->port();
    std::vector<std::thread> threads;
    for (int rank = 0; rank < kSize; ++rank) {
      threads.emplace_back([&, rank] {
        auto client = TcpStoreClient::Connect("127.0.0.1", port, absl::Seconds(10));
        ASSERT_TRUE(client.ok()) << client.status();
        StoreBootstrap bootstrap(std::shared_ptr<Store>(*std::move(client)), rank, kSize, kPrefix);
        auto values = bootstrap.AllGather(ValueOf(rank, attempt), absl::Seconds(60));
        ASSERT_TRUE(values.ok()) << "rank " << rank << ": " << values.status();
        EXPECT_EQ((*values)[kSize - 1], ValueOf(kSize - 1, attempt));
        if (rank == 0) server.reset();
      });
    }
    for (auto& thread : threads) thread.join();
  }
}

// A store kept across groups (one passed to init_process_group each time, an
// elastic agent's): ten groups in a row each gather their own values, though
// rank 0 joins each last and the others first find the previous group's session.
TEST(StoreBootstrapSessionTest, GroupsReCreatedOnOneStoreNeverSeeEachOther) {
  auto server = StartLoopbackServer();
  constexpr int kSize = 3;
  for (int group = 0; group < 10; ++group) {
    std::vector<std::thread> threads;
    for (int rank = 0; rank < kSize; ++rank) {
      threads.emplace_back([&, rank, group] {
        if (rank == 0) absl::SleepFor(absl::Milliseconds(20));
        StoreBootstrap bootstrap(ConnectClient(*server), rank, kSize, kPrefix);
        auto values = bootstrap.AllGather(ValueOf(rank, group), absl::Seconds(20));
        ASSERT_TRUE(values.ok()) << "group " << group << ", rank " << rank << ": " << values.status();
        for (int r = 0; r < kSize; ++r) EXPECT_EQ((*values)[r], ValueOf(r, group)) << "group " << group;
        EXPECT_EQ(bootstrap.session(), group + 1);
      });
    }
    for (auto& thread : threads) thread.join();
  }
}

// Rank 1 of a new group must not take the previous group's records, which
// are all still in the store: it waits until rank 0 opens the new session.
TEST(StoreBootstrapSessionTest, ARankAheadOfRankZeroWaitsForTheNewSession) {
  auto server = StartLoopbackServer();
  RunRanks(*server, 2, AllRanks(2), [&](int rank, StoreBootstrap& bootstrap) {
    ASSERT_TRUE(bootstrap.AllGather(ValueOf(rank, 0), absl::Seconds(20)).ok());
  });
  std::atomic<bool> rank_one_done{false};
  std::thread rank_one([&] {
    StoreBootstrap bootstrap(ConnectClient(*server), 1, 2, kPrefix);
    auto values = bootstrap.AllGather(ValueOf(1, 1), absl::Seconds(20));
    rank_one_done = true;
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ((*values)[0], ValueOf(0, 1));
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(rank_one_done) << "rank 1 returned before rank 0 joined: it read the previous group's records";
  StoreBootstrap zero(ConnectClient(*server), 0, 2, kPrefix);
  auto values = zero.AllGather(ValueOf(0, 1), absl::Seconds(20));
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ((*values)[1], ValueOf(1, 1));
  rank_one.join();
}

// Rank 0 gave up on a session (rank 1 was too late, as when a job restarts
// after a crash): a late rank 1 must not join that dead session and read
// rank 0's old record, but wait for rank 0's next one.
TEST(StoreBootstrapSessionTest, ALatecomerAfterRankZeroGaveUpJoinsTheNextSession) {
  auto server = StartLoopbackServer();
  {
    StoreBootstrap zero(ConnectClient(*server), 0, 2, kPrefix);
    EXPECT_TRUE(absl::IsDeadlineExceeded(zero.AllGather("dead 0", absl::Milliseconds(100)).status()));
  }
  absl::StatusOr<std::vector<std::string>> one_got;
  std::thread one([&] {
    StoreBootstrap bootstrap(ConnectClient(*server), 1, 2, kPrefix);
    one_got = bootstrap.AllGather("new 1", absl::Seconds(20));
  });
  absl::SleepFor(absl::Milliseconds(200));
  StoreBootstrap zero(ConnectClient(*server), 0, 2, kPrefix);
  auto zero_got = zero.AllGather("new 0", absl::Seconds(20));
  one.join();
  ASSERT_TRUE(zero_got.ok()) << zero_got.status();
  ASSERT_TRUE(one_got.ok()) << one_got.status();
  EXPECT_THAT(*one_got, ::testing::ElementsAre("new 0", "new 1"));
  EXPECT_EQ(zero.session(), 2);
}

TEST(StoreBootstrapSessionTest, WithoutRankZeroTheTimeoutSaysRankZeroIsAbsent) {
  auto server = StartLoopbackServer();
  StoreBootstrap bootstrap(ConnectClient(*server), 1, 2, kPrefix);
  auto values = bootstrap.AllGather("x", absl::Milliseconds(200));
  ASSERT_TRUE(absl::IsDeadlineExceeded(values.status())) << values.status();
  EXPECT_THAT(values.status().message(), HasSubstr("waiting for rank 0 to open the rendezvous"));
}

TEST(StoreBootstrapTest, InvalidRankIsAnErrorNotACrash) {
  auto server = StartLoopbackServer();
  StoreBootstrap bootstrap(ConnectClient(*server), 4, 4, kPrefix);
  auto values = bootstrap.AllGather("x", absl::Seconds(1));
  EXPECT_TRUE(absl::IsInvalidArgument(values.status())) << values.status();
}

// A store without MultiGet or Check of its own (like an adapted framework
// store) exercises the Store interface's default implementations.
class InProcessStore : public Store {
 public:
  absl::Status Set(const std::string& key, const std::string& value) override {
    absl::MutexLock lock(&mu_);
    data_[key] = value;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    auto has_key = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return data_.contains(key); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&has_key), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat("in-process store: get of key ", key, " timed out"));
    }
    return data_[key];
  }
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override {
    absl::MutexLock lock(&mu_);
    int64_t value = 0;
    if (data_.contains(key) && !absl::SimpleAtoi(data_[key], &value)) return absl::InternalError("not a number");
    data_[key] = absl::StrCat(value + delta);
    return value + delta;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
};

TEST(StoreBootstrapTest, WorksOverAnyStoreThroughTheDefaultMultiGetAndCheck) {
  auto store = std::make_shared<InProcessStore>();
  constexpr int kSize = 3;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kSize; ++rank) {
    threads.emplace_back([&, rank] {
      StoreBootstrap bootstrap(store, rank, kSize, kPrefix);
      auto values = bootstrap.AllGather(ValueOf(rank, 0), absl::Seconds(60));
      ASSERT_TRUE(values.ok()) << values.status();
      for (int r = 0; r < kSize; ++r) EXPECT_EQ((*values)[r], ValueOf(r, 0));
    });
  }
  for (auto& thread : threads) thread.join();
  // Only ranks 0 and 1 of a second group show up: rank 2 is named.
  std::thread zero([&] {
    StoreBootstrap bootstrap(store, 0, kSize, "other");
    EXPECT_TRUE(absl::IsDeadlineExceeded(bootstrap.AllGather("x", absl::Milliseconds(300)).status()));
  });
  StoreBootstrap lonely(store, 1, kSize, "other");
  auto values = lonely.AllGather("x", absl::Milliseconds(300));
  zero.join();
  ASSERT_TRUE(absl::IsDeadlineExceeded(values.status())) << values.status();
  EXPECT_THAT(values.status().message(), HasSubstr("waiting for rank 2 of 3 (store)"));
}

TEST(FormatRanksTest, ShortensRunsToRanges) {
  EXPECT_EQ(FormatRanks({}), "");
  EXPECT_EQ(FormatRanks({3}), "3");
  EXPECT_EQ(FormatRanks({2, 3}), "2, 3");
  EXPECT_EQ(FormatRanks({1, 2, 3, 5, 7, 8, 9, 10}), "1-3, 5, 7-10");
}

}  // namespace
}  // namespace silk::bootstrap
