// TcpStoreServer and TcpStoreClient over real loopback sockets.
#include <algorithm>
#include <atomic>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/bootstrap/store_protocol.h"
#include "runtime/bootstrap/tcp_store.h"
#include "tests/runtime/bootstrap/store_test_util.h"

namespace silk::bootstrap {
namespace {

using ::silk::bootstrap::testing::ConnectClient;
using ::silk::bootstrap::testing::StartLoopbackServer;
using ::silk::bootstrap::testing::UnusedLoopbackPort;
using ::testing::HasSubstr;

TEST(TcpStoreTest, SetThenGetReturnsTheValue) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  ASSERT_TRUE(client->Set("alpha", "one").ok());
  ASSERT_TRUE(client->Set("empty", "").ok());
  EXPECT_EQ(client->Get("alpha", absl::Seconds(5)).value(), "one");
  EXPECT_EQ(client->Get("empty", absl::Seconds(5)).value(), "");
  // A second Set overwrites.
  ASSERT_TRUE(client->Set("alpha", "two").ok());
  EXPECT_EQ(client->Get("alpha", absl::Seconds(5)).value(), "two");
  EXPECT_EQ(client->Describe(), absl::StrCat("tcp-store 127.0.0.1:", server->port()));
}

TEST(TcpStoreTest, BinaryValuesSurviveTheRoundTrip) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  std::string key("key\0with\xffnul", 12);
  ASSERT_TRUE(client->Set(key, value).ok());
  EXPECT_EQ(client->Get(key, absl::Seconds(5)).value(), value);
}

TEST(TcpStoreTest, GetWaitsForALaterSetFromAnotherClient) {
  auto server = StartLoopbackServer();
  auto waiter = ConnectClient(*server);
  auto setter = ConnectClient(*server);
  std::thread later([&] {
    absl::SleepFor(absl::Milliseconds(200));
    ASSERT_TRUE(setter->Set("late", "arrived").ok());
  });
  absl::StatusOr<std::string> value = waiter->Get("late", absl::Seconds(30));
  later.join();
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "arrived");
}

TEST(TcpStoreTest, GetTimesOutWithAMessageNamingTheKeyAndStore) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  absl::StatusOr<std::string> value = client->Get("never/set", absl::Milliseconds(200));
  ASSERT_TRUE(absl::IsDeadlineExceeded(value.status())) << value.status();
  EXPECT_THAT(value.status().message(), HasSubstr("\"never/set\""));
  EXPECT_THAT(value.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", server->port())));
  // The connection is still good after a timeout the server reported.
  ASSERT_TRUE(client->Set("never/set", "now").ok());
  EXPECT_EQ(client->Get("never/set", absl::Seconds(5)).value(), "now");
}

TEST(TcpStoreTest, MultiGetWaitsForAllAndNamesTheMissingOnTimeout) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  auto setter = ConnectClient(*server);
  ASSERT_TRUE(client->Set("k0", "v0").ok());
  std::thread later([&] {
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(setter->Set("k2", "v2").ok());
    ASSERT_TRUE(setter->Set("k1", "v1").ok());
  });
  auto values = client->MultiGet({"k0", "k1", "k2"}, absl::Seconds(30));
  later.join();
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_THAT(*values, ::testing::ElementsAre("v0", "v1", "v2"));

  auto partial = client->MultiGet({"k0", "x1", "k1", "x2"}, absl::Milliseconds(100));
  ASSERT_TRUE(absl::IsDeadlineExceeded(partial.status())) << partial.status();
  EXPECT_THAT(partial.status().message(), HasSubstr("missing \"x1\", \"x2\""));
}

TEST(TcpStoreTest, CheckReportsWhichKeysExist) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  ASSERT_TRUE(client->Set("present", "1").ok());
  auto exists = client->Check({"present", "absent"});
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_THAT(*exists, ::testing::ElementsAre(true, false));
}

TEST(TcpStoreTest, AddCountsFromZeroAndStoresDecimalText) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  EXPECT_EQ(client->Add("counter", 5).value(), 5);
  EXPECT_EQ(client->Add("counter", -7).value(), -2);
  EXPECT_EQ(client->Get("counter", absl::Seconds(5)).value(), "-2");
  ASSERT_TRUE(client->Set("text", "not a number").ok());
  absl::StatusOr<int64_t> bad = client->Add("text", 1);
  ASSERT_TRUE(absl::IsFailedPrecondition(bad.status())) << bad.status();
  EXPECT_THAT(bad.status().message(), HasSubstr("not an integer"));
  EXPECT_THAT(bad.status().message(), HasSubstr("\"text\""));
}

TEST(TcpStoreTest, AddIsAtomicUnderConcurrentClients) {
  auto server = StartLoopbackServer();
  constexpr int kThreads = 8;
  constexpr int kAddsPerThread = 200;
  std::vector<std::vector<int64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = ConnectClient(*server);
      for (int i = 0; i < kAddsPerThread; ++i) {
        absl::StatusOr<int64_t> value = client->Add("shared", 1);
        ASSERT_TRUE(value.ok()) << value.status();
        seen[t].push_back(*value);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // Every increment returned a distinct value: together exactly 1..N.
  std::vector<int64_t> all;
  for (const auto& values : seen) all.insert(all.end(), values.begin(), values.end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(kThreads * kAddsPerThread);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(all, expected);
}

TEST(TcpStoreTest, OneClientSharedByThreadsTakesTurns) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string key = absl::StrCat("t", t, "/", i);
        ASSERT_TRUE(client->Set(key, key + "!").ok());
        ASSERT_EQ(client->Get(key, absl::Seconds(5)).value(), key + "!");
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

TEST(TcpStoreTest, LargeValuesRoundTrip) {
  auto server = StartLoopbackServer();
  auto writer = ConnectClient(*server);
  auto reader = ConnectClient(*server);
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  ASSERT_TRUE(writer->Set("big", big).ok());
  absl::StatusOr<std::string> value = reader->Get("big", absl::Seconds(30));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_TRUE(*value == big) << "8 MiB value came back different (size " << value->size() << ")";
}

TEST(TcpStoreTest, ConcurrentReadersOfLargeAndSmallValuesInOneReply) {
  auto server = StartLoopbackServer();
  auto writer = ConnectClient(*server);
  const std::vector<std::string> keys = {"a", "b", "c", "d"};
  const std::vector<std::string> expected = {std::string(3 << 20, 'a'), "", "c", std::string(5 << 20, 'd')};
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_TRUE(writer->Set(keys[i], expected[i]).ok());
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      auto reader = ConnectClient(*server);
      for (int round = 0; round < 3; ++round) {
        auto values = reader->MultiGet(keys, absl::Seconds(30));
        ASSERT_TRUE(values.ok()) << values.status();
        ASSERT_TRUE(*values == expected) << "values came back different";
      }
    });
  }
  // Overwriting a value while replies still stream the old one must not disturb them.
  ASSERT_TRUE(writer->Set("a", std::string(3 << 20, 'a')).ok());
  for (auto& reader : readers) reader.join();
}

TEST(TcpStoreTest, ClientRejectsKeysAndValuesOverTheLimits) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  absl::Status long_key = client->Set(std::string(wire::kMaxKeyBytes + 1, 'k'), "v");
  EXPECT_TRUE(absl::IsInvalidArgument(long_key)) << long_key;
  absl::Status huge_value = client->Set("k", std::string(wire::kMaxValueBytes + 1, 'v'));
  EXPECT_TRUE(absl::IsInvalidArgument(huge_value)) << huge_value;
  EXPECT_THAT(huge_value.message(), HasSubstr("over the limit"));
  std::vector<std::string> many_long_keys(20000, std::string(wire::kMaxKeyBytes, 'k'));
  auto too_big = client->MultiGet(many_long_keys, absl::Seconds(1));
  EXPECT_TRUE(absl::IsInvalidArgument(too_big.status())) << too_big.status();
  // Nothing was sent, so the connection still works.
  ASSERT_TRUE(client->Set(std::string(wire::kMaxKeyBytes, 'k'), "v").ok());
}

TEST(TcpStoreTest, ManyClientsGatherEachOthersKeys) {
  auto server = StartLoopbackServer();
  constexpr int kClients = 48;
  std::vector<std::string> keys;
  for (int i = 0; i < kClients; ++i) keys.push_back(absl::StrCat("client/", i));
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto client = ConnectClient(*server);
      ASSERT_NE(client, nullptr);
      ASSERT_TRUE(client->Set(keys[i], absl::StrCat("value ", i)).ok());
      auto values = client->MultiGet(keys, absl::Seconds(60));
      ASSERT_TRUE(values.ok()) << values.status();
      for (int j = 0; j < kClients; ++j) ASSERT_EQ((*values)[j], absl::StrCat("value ", j));
    });
  }
  for (auto& thread : threads) thread.join();
}

TEST(TcpStoreTest, ConnectGivesUpAtItsDeadlineNamingTheAddress) {
  const uint16_t port = UnusedLoopbackPort();
  auto client = TcpStoreClient::Connect("127.0.0.1", port, absl::Milliseconds(300));
  ASSERT_TRUE(absl::IsDeadlineExceeded(client.status())) << client.status();
  EXPECT_THAT(client.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", port)));
  EXPECT_THAT(client.status().message(), HasSubstr("refused"));
}

TEST(TcpStoreTest, ClientWaitsForAServerThatStartsLater) {
  const uint16_t port = UnusedLoopbackPort();
  absl::StatusOr<std::unique_ptr<TcpStoreClient>> client;
  std::thread connecting([&] { client = TcpStoreClient::Connect("127.0.0.1", port, absl::Seconds(30)); });
  absl::SleepFor(absl::Milliseconds(300));
  auto server = TcpStoreServer::Start("127.0.0.1", port);
  connecting.join();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Set("k", "v").ok());
}

TEST(TcpStoreTest, ServerShutdownEndsAWaitingGetAndBreaksTheClient) {
  auto server = StartLoopbackServer();
  auto client = ConnectClient(*server);
  absl::StatusOr<std::string> value;
  std::thread waiting([&] { value = client->Get("never", absl::Minutes(10)); });
  absl::SleepFor(absl::Milliseconds(200));
  server.reset();  // must not wait for the parked get
  waiting.join();
  ASSERT_TRUE(absl::IsUnavailable(value.status())) << value.status();
  EXPECT_THAT(value.status().message(), HasSubstr("get of key \"never\": the store server shut down"));
  absl::Status later = client->Set("k", "v");
  EXPECT_TRUE(absl::IsFailedPrecondition(later)) << later;
  EXPECT_THAT(later.message(), HasSubstr("earlier error"));
}

TEST(TcpStoreTest, ServerRefusesAPortInUse) {
  auto first = StartLoopbackServer();
  auto second = TcpStoreServer::Start("127.0.0.1", first->port());
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", first->port())));
}

}  // namespace
}  // namespace silk::bootstrap
