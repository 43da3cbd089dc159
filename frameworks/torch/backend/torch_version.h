// The one place that knows which PyTorch the backend is built against.
//
// Up to 1.13 a third-party backend subclasses c10d::ProcessGroup. PyTorch 2.0
// split that class: ProcessGroup became the front that dispatches by device,
// and the per-device implementations subclass c10d::Backend, which has the
// same collective methods. The backend is written against `BackendBase` and
// compiles against either; only this header chooses. (The 2.x branch compiles
// by construction but is not tested here: Debian ships 1.13.)
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR < 1 || (TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR < 13)
#error "Silk's PyTorch backend needs PyTorch 1.13 or later (c10d::Work as a class of its own)"
#endif

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

namespace silk::pytorch {

#if TORCH_VERSION_MAJOR >= 2
using BackendBase = ::c10d::Backend;
inline constexpr bool kBackendIsProcessGroup = false;
#else
using BackendBase = ::c10d::ProcessGroup;
inline constexpr bool kBackendIsProcessGroup = true;
#endif

}  // namespace silk::pytorch
