#include "runtime/engine/callback_executor.h"

#include <pthread.h>

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/core/cpu_set.h"
#include "runtime/core/log.h"

namespace silk {
namespace {

// How long a thread beyond the first waits for work before it ends.
constexpr absl::Duration kLinger = absl::Seconds(5);

thread_local bool on_callback_thread = false;

}  // namespace

// Shared with the threads, so that a thread left to end by itself (see the
// destructor) never touches freed memory.
struct CallbackExecutor::State {
  absl::Mutex mu;
  std::deque<std::function<void()>> tasks ABSL_GUARDED_BY(mu);
  std::vector<std::thread> threads ABSL_GUARDED_BY(mu);
  std::vector<std::thread::id> ended ABSL_GUARDED_BY(mu);  // left their loop: join them
  int waiting ABSL_GUARDED_BY(mu) = 0;   // threads waiting for a task
  int starting ABSL_GUARDED_BY(mu) = 0;  // threads started that have not looked for one yet
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::vector<int> cpus;  // set once, before any thread starts

  // Joins the threads that have ended (they are past their last use of `mu`
  // but for the unlock, which join waits out).
  void JoinEnded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (std::thread::id id : ended) {
      auto it = std::find_if(threads.begin(), threads.end(), [id](const std::thread& t) { return t.get_id() == id; });
      if (it == threads.end()) continue;
      it->join();
      threads.erase(it);
    }
    ended.clear();
  }
};

CallbackExecutor::CallbackExecutor() : state_(std::make_shared<State>()) {
  state_->cpus = ThisThreadCpus();
  absl::MutexLock lock(&state_->mu);
  Start(/*first=*/true);
}

CallbackExecutor::~CallbackExecutor() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
    // Every thread drains the queue before it ends, and a task posted now
    // still starts a thread if none is free. (The condition may be evaluated
    // on another thread: read the thread-local here.)
    const size_t self = on_callback_thread ? 1 : 0;
    auto all_ended = [this, self]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
      return state_->threads.size() - state_->ended.size() <= self && state_->tasks.empty();
    };
    state_->mu.Await(absl::Condition(&all_ended));
    state_->JoinEnded();
    threads.swap(state_->threads);
  }
  for (std::thread& thread : threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // the callback that is destroying us: it ends when it returns
    } else {
      thread.join();
    }
  }
}

bool CallbackExecutor::OnCallbackThread() { return on_callback_thread; }

void CallbackExecutor::Post(std::function<void()> task) {
  absl::MutexLock lock(&state_->mu);
  state_->tasks.push_back(std::move(task));
  // Each waiting (or starting) thread takes one task; any task beyond them
  // would wait behind a running callback that may be waiting for it.
  if (state_->tasks.size() > static_cast<size_t>(state_->waiting + state_->starting)) Start(/*first=*/false);
}

void CallbackExecutor::Start(bool first) {
  state_->JoinEnded();
  state_->starting++;
  state_->threads.emplace_back([state = state_, first] { Loop(state, first); });
}

void CallbackExecutor::Loop(std::shared_ptr<State> state, bool first) {
  pthread_setname_np(pthread_self(), "silk-callbacks");
  on_callback_thread = true;
  if (!first && !state->cpus.empty()) {
    // Started from whichever thread posted; run where the first one does.
    absl::Status pinned = PinThisThread(state->cpus);
    if (!pinned.ok()) Log(LogLevel::kWarning, "callback thread: %s", pinned.message());
  }
  absl::MutexLock lock(&state->mu);
  state->starting--;
  auto has_work = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return !state->tasks.empty() || state->stopping;
  };
  while (true) {
    if (state->tasks.empty()) {
      if (state->stopping) break;
      state->waiting++;
      bool woken = first ? (state->mu.Await(absl::Condition(&has_work)), true)
                         : state->mu.AwaitWithTimeout(absl::Condition(&has_work), kLinger);
      state->waiting--;
      if (!woken) break;  // idle for kLinger: not needed now
      continue;
    }
    std::function<void()> task = std::move(state->tasks.front());
    state->tasks.pop_front();
    state->mu.Unlock();
    task();
    task = nullptr;  // what it captured goes before the lock is taken again
    state->mu.Lock();
  }
  state->ended.push_back(std::this_thread::get_id());
}

}  // namespace silk
