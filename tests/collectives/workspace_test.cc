// Scratch memory: buffers are reused within an operation once released, and
// across operations once an operation has succeeded; a failed operation's
// buffers are never handed out again.
#include "collectives/algorithms/workspace.h"

#include <cstring>

#include "gtest/gtest.h"

namespace silk::algorithms {
namespace {

constexpr size_t kMb = 1 << 20;

TEST(ScratchPool, GivesBackWhatItWasGivenOnlyForFittingRequests) {
  ScratchPool pool(64 * kMb);
  ScratchPool::Buffer a = pool.Take(4 * kMb);
  char* address = a.data.get();
  pool.Give(std::move(a));
  EXPECT_EQ(pool.idle_bytes(), 4 * kMb);
  // Twice as small would waste half of it: a fresh buffer instead.
  ScratchPool::Buffer small = pool.Take(kMb);
  EXPECT_NE(small.data.get(), address);
  ScratchPool::Buffer again = pool.Take(3 * kMb);
  EXPECT_EQ(again.data.get(), address);
  EXPECT_EQ(again.capacity, 4 * kMb);
  EXPECT_EQ(pool.idle_bytes(), 0u);
}

TEST(ScratchPool, KeepsNoMoreThanItsBoundAndNoSmallBuffers) {
  ScratchPool pool(6 * kMb);
  pool.Give(pool.Take(4 * kMb));
  pool.Give(pool.Take(4 * kMb + 1));  // would exceed the bound: freed
  EXPECT_EQ(pool.idle_bytes(), 4 * kMb);
  pool.Give(pool.Take(1024));
  EXPECT_EQ(pool.idle_bytes(), 4 * kMb);
}

TEST(Workspace, ReleasedBuffersServeLaterAllocationsOfTheSameOperation) {
  ScratchPool pool(64 * kMb);
  Workspace ws(pool);
  char* a = ws.Allocate(2 * kMb);
  char* b = ws.Allocate(2 * kMb);
  EXPECT_NE(a, b);
  std::memset(a, 1, 2 * kMb);  // really usable
  ws.Release(a);
  EXPECT_EQ(ws.Allocate(2 * kMb - 100), a);
  EXPECT_NE(ws.Allocate(2 * kMb), b);  // b is still in use
}

TEST(Workspace, OnlyASucceededOperationReturnsItsBuffersToThePool) {
  ScratchPool pool(64 * kMb);
  char* kept;
  {
    Workspace ok(pool);
    kept = ok.Allocate(8 * kMb);
    ok.Recycle();
  }
  EXPECT_EQ(pool.idle_bytes(), 8 * kMb);
  {
    Workspace next(pool);
    EXPECT_EQ(next.Allocate(8 * kMb), kept);
    // Not recycled (the operation failed): its buffers are freed, never pooled.
  }
  EXPECT_EQ(pool.idle_bytes(), 0u);
}

}  // namespace
}  // namespace silk::algorithms
