// Membership agreement against a real coordinator (a TcpStoreServer), with
// other members played through the store directly: who is waited for, who is
// presumed lost, and a leader that dies while deciding.
#include "runtime/membership.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/bootstrap/tcp_store.h"

namespace silk {
namespace {

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = bootstrap::TcpStoreServer::Start("127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto client = bootstrap::TcpStoreClient::Connect("127.0.0.1", server_->port(), absl::Seconds(5));
    ASSERT_TRUE(client.ok()) << client.status();
    store_ = *std::move(client);
  }
  Config MemberConfig(int member, int world) const {
    Config c;
    c.elastic = true;
    c.master_addr = "127.0.0.1";
    c.store_port = server_->port();
    c.env_rank = member;
    c.env_world_size = world;
    c.elastic_dead_after = absl::Milliseconds(500);
    c.timeout = absl::Seconds(20);
    return c;
  }
  std::unique_ptr<Membership> Connect(int member, int world) {
    auto m = Membership::Connect(MemberConfig(member, world));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }
  static MembershipView View(std::vector<int> members) {
    MembershipView v;
    v.epoch = 1;
    v.members = std::move(members);
    return v;
  }
  std::unique_ptr<bootstrap::TcpStoreServer> server_;
  std::unique_ptr<bootstrap::TcpStoreClient> store_;
};

TEST_F(MembershipTest, FirstEpochWaitsForEveryMember) {
  auto a = Connect(0, 2), b = Connect(1, 2);
  absl::StatusOr<MembershipView> va;
  std::thread t([&] { va = a->Enter(absl::Seconds(10)); });
  absl::SleepFor(absl::Milliseconds(700));  // longer than dead_after: nobody is presumed lost at start-up
  absl::StatusOr<MembershipView> vb = b->Enter(absl::Seconds(10));
  t.join();
  ASSERT_TRUE(va.ok()) << va.status();
  ASSERT_TRUE(vb.ok()) << vb.status();
  EXPECT_EQ(va->members, (std::vector<int>{0, 1}));
  EXPECT_EQ(va->rank, 0);
  EXPECT_EQ(vb->rank, 1);
  EXPECT_EQ(va->epoch, 1u);
}

// Member 2 never registers and never beats: presumed lost after dead_after.
// Member 1 beats (it is alive, only slow): waited for.
TEST_F(MembershipTest, SilentMembersAreLostSlowOnesWaitedFor) {
  auto a = Connect(0, 3), b = Connect(1, 3);
  absl::StatusOr<MembershipView> va;
  const absl::Time start = absl::Now();
  std::thread t([&] { va = a->Next(View({0, 1, 2}), -1); });
  absl::SleepFor(absl::Seconds(1.5));  // member 1 is slow but its heartbeat runs
  absl::StatusOr<MembershipView> vb = b->Next(View({0, 1, 2}), -1);
  t.join();
  ASSERT_TRUE(va.ok()) << va.status();
  ASSERT_TRUE(vb.ok()) << vb.status();
  EXPECT_EQ(va->members, (std::vector<int>{0, 1}));
  EXPECT_EQ(va->lost, (std::vector<int>{2}));
  EXPECT_EQ(vb->rank, 1);
  EXPECT_GE(absl::Now() - start, absl::Seconds(1.5));
}

// The leader registered and then died before deciding: the others decide in its place.
TEST_F(MembershipTest, AMemberDecidesInPlaceOfADeadLeader) {
  ASSERT_TRUE(store_->Set("silk/elastic/hb/9", "0.0").ok());
  ASSERT_TRUE(store_->Set("silk/elastic/e2/reg/9", "0").ok());
  ASSERT_TRUE(store_->Add("silk/elastic/e2/lead", 1).ok());
  ASSERT_TRUE(store_->Set("silk/elastic/e2/leader", "9").ok());
  auto a = Connect(0, 2);
  absl::StatusOr<MembershipView> va = a->Next(View({0, 9}), -1);
  ASSERT_TRUE(va.ok()) << va.status();
  EXPECT_EQ(va->epoch, 2u);
  // It had registered: it stays in, and the next change drops it when it fails to come.
  EXPECT_EQ(va->members, (std::vector<int>{0, 9}));
}

// A member left out asks to join and is admitted by the next epoch that answers its request.
TEST_F(MembershipTest, ALeftOutMemberIsAdmittedByTheNextAnsweringEpoch) {
  ASSERT_TRUE(store_->Set("silk/elastic/epoch", "1").ok());  // the job runs: entering is a join request
  auto a = Connect(0, 2), b = Connect(1, 2);
  absl::StatusOr<MembershipView> joined;
  std::thread t([&] { joined = b->Enter(absl::Seconds(15)); });
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (a->join_requests_seen() < 1 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(a->join_requests_seen(), 1);
  absl::StatusOr<MembershipView> va = a->Next(View({0}), a->join_requests_seen());
  t.join();
  ASSERT_TRUE(va.ok()) << va.status();
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(va->members, (std::vector<int>{0, 1}));
  EXPECT_EQ(va->joined, (std::vector<int>{1}));
  EXPECT_EQ(va->answered_requests, 1);
  EXPECT_EQ(joined->rank, 1);
}

// Once the job is marked finished, a process waiting to join returns at once.
TEST_F(MembershipTest, WaitingToJoinEndsWhenTheJobFinished) {
  ASSERT_TRUE(store_->Set("silk/elastic/epoch", "1").ok());
  auto a = Connect(0, 2), b = Connect(1, 2);
  ASSERT_TRUE(a->MarkJobFinished().ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<MembershipView> joined = b->Enter(absl::Seconds(30));
  EXPECT_FALSE(joined.ok());
  EXPECT_NE(joined.status().message().find("finished"), std::string::npos) << joined.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace silk
