// silk.torch._C's compressed all-reduce for the DDP hooks (silk.torch.hooks):
// an in-place all-reduce of a float32 tensor with its WAN hop compressed
// (AllreduceOptions::wan_compression) and the caller's ErrorFeedback.
#pragma once

#include <pybind11/pybind11.h>

namespace silk::pytorch {

// Adds ErrorFeedback, CompressedWork and allreduce_compressed to the module.
void DefineCompressedAllreduce(pybind11::module_& m);

}  // namespace silk::pytorch
