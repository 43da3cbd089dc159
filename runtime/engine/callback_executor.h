// Where an engine's completion callbacks run: never on the engine's own
// threads, which must stay free to run the next operation.
//
// A callback may issue another collective on the same communicator and wait
// for it (PyTorch's PowerSGD hook does, as does any `fut.then(...)` that
// waits on a nested all-reduce). Run on the engine thread, that callback
// would wait for an operation only that thread could run: a deadlock that no
// deadline ends, since the nested operation never starts. Here it only
// occupies a callback thread, while the engine runs the nested operation and
// hands its completion to another callback thread.
//
// Tasks start in the order they were posted, on the "silk-callbacks" threads:
// one while callbacks are quick; another is started whenever a task is
// posted and every thread is still busy with an earlier one, so a callback
// that blocks never holds up the completions it waits for. Threads started
// that way end after a few seconds without work. New threads run on the CPUs
// of the thread that made the executor (the communicator's SILK_CPUS).
#pragma once

#include <functional>
#include <memory>

namespace silk {

class CallbackExecutor {
 public:
  CallbackExecutor();
  // Runs every task posted (also those posted meanwhile by running tasks),
  // then joins the threads. Called on one of its own threads (a callback that
  // dropped the last reference to the communicator), it leaves that thread to
  // end by itself.
  ~CallbackExecutor();
  CallbackExecutor(const CallbackExecutor&) = delete;
  CallbackExecutor& operator=(const CallbackExecutor&) = delete;

  void Post(std::function<void()> task);

  // True on any executor's callback thread.
  static bool OnCallbackThread();

 private:
  struct State;
  static void Loop(std::shared_ptr<State> state, bool first);
  void Start(bool first);  // with state_->mu held

  std::shared_ptr<State> state_;
};

}  // namespace silk
