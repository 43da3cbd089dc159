// Send/Recv (every pair, tags, async, batches, beside collectives), Gather,
// Scatter and Alltoallv (every type, uneven counts, 1 to 7 ranks, in and out
// of place), and their mismatches, on in-process ranks over TCP and shared memory.
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "collectives/gather_scatter.h"
#include "collectives/point_to_point.h"
#include "gtest/gtest.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

const DataType kTypes[] = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16,
                           DataType::kInt8,    DataType::kUint8,   DataType::kInt32,   DataType::kInt64};

// Rank r's byte i of message `salt`: every block is recognisable.
uint8_t Byte(int r, size_t i, int salt) { return static_cast<uint8_t>(r * 37 + i * 11 + salt * 5 + 1); }
std::vector<uint8_t> Bytes(int r, size_t n, int salt, size_t skip = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = Byte(r, i + skip, salt);
  return v;
}

Config ConfigFor(bool shm) {
  Config config = testing::TestConfig(2, absl::Seconds(20));
  config.shm = shm;
  return config;
}

class PointToPointTest : public ::testing::TestWithParam<bool> {};  // shared memory or TCP
INSTANTIATE_TEST_SUITE_P(Transports, PointToPointTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "shm" : "tcp"; });

TEST_P(PointToPointTest, EveryPairEveryTypeAsyncAndOutOfOrderTags) {
  for (int n : {1, 2, 3, 5}) {
    SCOPED_TRACE(absl::StrFormat("%d ranks", n));
    ASSERT_TRUE(testing::RunRanks(n, ConfigFor(GetParam()), [n](Communicator& comm) -> absl::Status {
      const int me = comm.rank();
      for (DataType type : kTypes) {
        const size_t count = 1031, bytes = count * DataTypeSize(type);
        // Every pair, both ways (self included): tag = sender, received in reverse order of tags.
        std::vector<std::vector<uint8_t>> in(n, std::vector<uint8_t>(bytes));
        std::vector<WorkPtr> works;
        for (int peer = n - 1; peer >= 0; --peer) {
          auto w = RecvAsync(comm, {in[peer].data(), count, type, peer, /*tag=*/peer});
          if (!w.ok()) return w.status();
          works.push_back(*w);
        }
        const std::vector<uint8_t> out = Bytes(me, bytes, static_cast<int>(type));
        for (int peer = 0; peer < n; ++peer) {
          auto w = SendAsync(comm, {out.data(), count, type, peer, /*tag=*/me});
          if (!w.ok()) return w.status();
          works.push_back(*w);
        }
        for (auto& w : works) {
          if (absl::Status s = w->Wait(); !s.ok()) return s;
        }
        for (int peer = 0; peer < n; ++peer) {
          if (in[peer] != Bytes(peer, bytes, static_cast<int>(type))) {
            return absl::InternalError(absl::StrFormat("rank %d: wrong bytes from %d (%s)", me, peer, DataTypeName(type)));
          }
        }
      }
      // Two sends with one tag arrive in order; 0 elements are fine.
      const int right = (me + 1) % n, left = (me + n - 1) % n;
      int32_t a = 1000 + me, b = 2000 + me, x = 0, y = 0;
      PointToPointBatch batch;
      batch.sends = {{&a, 1, DataType::kInt32, right, 7}, {&b, 1, DataType::kInt32, right, 7},
                     {nullptr, 0, DataType::kInt32, right, 8}};
      batch.recvs = {{&x, 1, DataType::kInt32, left, 7}, {&y, 1, DataType::kInt32, left, 7},
                     {nullptr, 0, DataType::kInt32, left, 8}};
      auto w = SendRecvAsync(comm, batch);
      if (!w.ok()) return w.status();
      if (absl::Status s = (*w)->Wait(); !s.ok()) return s;
      if (x != 1000 + left || y != 2000 + left) return absl::InternalError("same-tag messages out of order");
      return absl::OkStatus();
    }).ok());
  }
}

// A receive whose send comes after a collective must not hold that collective up.
TEST_P(PointToPointTest, ReceiveWaitingForItsSendDoesNotBlockCollectives) {
  ASSERT_TRUE(testing::RunRanks(2, ConfigFor(GetParam()), [](Communicator& comm) -> absl::Status {
    float v = 1, sum = 0, got = 0;
    AllreduceOptions all;
    all.input = &v, all.output = &sum, all.count = 1;
    if (comm.rank() == 0) {
      auto recv = RecvAsync(comm, {&got, 1, DataType::kFloat32, 1, 0});
      if (!recv.ok()) return recv.status();
      if (absl::Status s = Allreduce(comm, all); !s.ok()) return s;
      if (absl::Status s = (*recv)->Wait(); !s.ok()) return s;
      if (got != 42) return absl::InternalError("wrong value");
    } else {
      if (absl::Status s = Allreduce(comm, all); !s.ok()) return s;
      float answer = 42;
      if (absl::Status s = Send(comm, {&answer, 1, DataType::kFloat32, 0, 0}); !s.ok()) return s;
    }
    return sum == 2 ? absl::OkStatus() : absl::InternalError("wrong sum");
  }).ok());
}

TEST_P(PointToPointTest, MismatchedCountFailsBothRanksNamingTheCalls) {
  auto comms = testing::CreateCommunicators(2, ConfigFor(GetParam()));
  ASSERT_TRUE(comms.ok()) << comms.status();
  const absl::Time start = absl::Now();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    float data[5] = {};
    absl::Status s = comm.rank() == 0 ? Send(comm, {data, 4, DataType::kFloat32, 1, 3})
                                      : Recv(comm, {data, 5, DataType::kFloat32, 0, 3});
    return s.ok() ? Barrier(comm) : s;
  });
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  for (int r = 0; r < 2; ++r) {
    ASSERT_FALSE(results[r].ok()) << "rank " << r;
    EXPECT_NE(results[r].message().find("sendrecv(count=4"), std::string::npos) << results[r];
  }
}

TEST_P(PointToPointTest, UnmatchedReceiveTimesOutNamingThePeer) {
  auto comms = testing::CreateCommunicators(2, ConfigFor(GetParam()));
  ASSERT_TRUE(comms.ok()) << comms.status();
  float data = 0;
  RecvOptions recv{&data, 1, DataType::kFloat32, 1, 9};
  recv.timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  absl::Status s = Recv(*(*comms)[0], recv);
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_NE(s.message().find("rank 1"), std::string::npos) << s;
  // A bad argument fails at once on its rank only, and the communicator was already failed by the timeout.
  EXPECT_TRUE(absl::IsInvalidArgument(Send(*(*comms)[1], {&data, 1, DataType::kFloat32, 2, 0})));
}

// memcpy and memcmp with empty blocks: an empty vector's data() may be null, which they must not get.
void Copy(void* to, const void* from, size_t bytes) {
  if (bytes > 0) std::memcpy(to, from, bytes);
}
bool Same(const void* a, const void* b, size_t bytes) { return bytes == 0 || std::memcmp(a, b, bytes) == 0; }

TEST_P(PointToPointTest, GatherScatterEveryRootTypeAndPlacement) {
  for (int n : {1, 2, 3, 4, 7}) {
    SCOPED_TRACE(absl::StrFormat("%d ranks", n));
    ASSERT_TRUE(testing::RunRanks(n, ConfigFor(GetParam()), [n](Communicator& comm) -> absl::Status {
      const int me = comm.rank();
      for (DataType type : kTypes) {
        for (size_t count : {size_t{0}, size_t{1}, size_t{257}}) {
          const size_t block = count * DataTypeSize(type);
          for (int root = 0; root < n; ++root) {
            for (bool in_place : {false, true}) {
              // Gather: the root ends with every rank's block in rank order.
              std::vector<uint8_t> all(block * n, 0xEE), mine = Bytes(me, block, root);
              const void* input = mine.data();
              if (in_place && me == root) {
                Copy(all.data() + root * block, mine.data(), block);
                input = all.data() + root * block;
              }
              if (absl::Status s = Gather(comm, {input, all.data(), count, type, root}); !s.ok()) return s;
              for (int r = 0; me == root && r < n; ++r) {
                if (!Same(all.data() + r * block, Bytes(r, block, root).data(), block)) {
                  return absl::InternalError(absl::StrFormat("gather: block %d wrong at root %d", r, root));
                }
              }
              // Scatter: rank r ends with block r of the root's input.
              std::vector<uint8_t> source(block * n), out(block, 0xEE);
              for (int r = 0; r < n; ++r) Copy(source.data() + r * block, Bytes(r, block, 100 + root).data(), block);
              void* output = in_place && me == root ? source.data() + root * block : out.data();
              if (absl::Status s = Scatter(comm, {source.data(), output, count, type, root}); !s.ok()) return s;
              if (!Same(output, Bytes(me, block, 100 + root).data(), block)) {
                return absl::InternalError(absl::StrFormat("scatter: rank %d's block wrong, root %d", me, root));
              }
            }
          }
        }
      }
      return absl::OkStatus();
    }).ok());
  }
}

// Rank i sends (i + j) % 4 elements to rank j: uneven, some empty.
size_t Split(int from, int to) { return static_cast<size_t>((from + to) % 4); }

TEST_P(PointToPointTest, AlltoallvUnevenSplitsEveryType) {
  for (int n : {1, 2, 3, 5, 7}) {
    SCOPED_TRACE(absl::StrFormat("%d ranks", n));
    ASSERT_TRUE(testing::RunRanks(n, ConfigFor(GetParam()), [n](Communicator& comm) -> absl::Status {
      const int me = comm.rank();
      for (DataType type : kTypes) {
        const size_t e = DataTypeSize(type);
        AlltoallvOptions o;
        o.type = type;
        size_t in_total = 0, out_total = 0;
        for (int j = 0; j < n; ++j) {
          o.send_counts.push_back(Split(me, j));
          o.recv_counts.push_back(Split(j, me));
          in_total += Split(me, j), out_total += Split(j, me);
        }
        std::vector<uint8_t> in, out(out_total * e + 3, 0xEE);
        for (int j = 0; j < n; ++j) {
          auto b = Bytes(me, Split(me, j) * e, j);
          in.insert(in.end(), b.begin(), b.end());
        }
        o.input = in.data(), o.output = out.data();
        if (absl::Status s = Alltoallv(comm, o); !s.ok()) return s;
        size_t at = 0;
        for (int j = 0; j < n; ++j) {
          const size_t bytes = Split(j, me) * e;
          if (!Same(out.data() + at, Bytes(j, bytes, me).data(), bytes)) {
            return absl::InternalError(absl::StrFormat("alltoallv: block from %d wrong (%s)", j, DataTypeName(type)));
          }
          at += bytes;
        }
        if (out[at] != 0xEE) return absl::InternalError("alltoallv wrote past its output");
      }
      return absl::OkStatus();
    }).ok());
  }
}

TEST_P(PointToPointTest, AlltoallvDisagreeingSplitsAndGatherRootsFailEveryRank) {
  for (int which = 0; which < 2; ++which) {
    auto comms = testing::CreateCommunicators(3, ConfigFor(GetParam()));
    ASSERT_TRUE(comms.ok()) << comms.status();
    auto results = testing::RunOnRanks(*comms, [which](Communicator& comm) -> absl::Status {
      std::vector<float> in(8, 1), out(8);
      absl::Status s;
      if (which == 0) {
        AlltoallvOptions o;
        o.input = in.data(), o.output = out.data();
        o.send_counts = {1, 1, 1};
        o.recv_counts = {1, 1, 1};
        if (comm.rank() == 0) o.send_counts[1] = 2;  // rank 1 expects 1 from rank 0
        s = Alltoallv(comm, o);
      } else {
        s = Gather(comm, {in.data(), out.data(), 2, DataType::kFloat32, comm.rank() == 2 ? 1 : 0});
      }
      return s.ok() ? Barrier(comm) : s;
    });
    for (int r = 0; r < 3; ++r) {
      EXPECT_FALSE(results[r].ok()) << "case " << which << " rank " << r;
      EXPECT_FALSE(absl::IsDeadlineExceeded(results[r])) << results[r];
    }
  }
}

}  // namespace
}  // namespace silk
