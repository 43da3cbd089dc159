#include "frameworks/torch/backend/compressed_allreduce.h"

#include <memory>
#include <string>

#include <torch/csrc/utils/pybind.h>

#include "collectives/collectives.h"
#include "frameworks/torch/backend/process_group.h"

namespace py = pybind11;

namespace silk::pytorch {
namespace {

// One all-reduce in flight: holds the tensor (and the feedback's owner) until it ends.
struct CompressedWork {
  WorkPtr work;
  at::Tensor tensor;
  py::object feedback;  // keeps the Python ErrorFeedback alive while the engine uses it

  void Wait() {
    absl::Status s;
    {
      py::gil_scoped_release release;
      s = work->Wait();
    }
    if (!s.ok()) throw std::runtime_error("silk allreduce_compressed: " + s.ToString());
  }
};

std::shared_ptr<CompressedWork> AllreduceCompressed(ProcessGroupSilk& pg, at::Tensor tensor,
                                                    const std::string& compression, py::object feedback,
                                                    bool average) {
  absl::StatusOr<Compression> c = ParseCompression(compression);
  if (!c.ok()) throw py::value_error(std::string(c.status().message()));
  if (tensor.device().type() != c10::kCPU || tensor.scalar_type() != at::kFloat || !tensor.is_contiguous()) {
    throw py::value_error("allreduce_compressed: needs a contiguous CPU float32 tensor, got " +
                          std::string(tensor.toString()) + (tensor.is_contiguous() ? "" : " (not contiguous)"));
  }
  AllreduceOptions o;
  o.input = o.output = tensor.data_ptr();
  o.count = static_cast<size_t>(tensor.numel());
  o.op = average ? ReduceOp::kAvg : ReduceOp::kSum;
  o.wan_compression = *c;
  o.error_feedback = feedback.is_none() ? nullptr : feedback.cast<ErrorFeedback*>();
  o.may_overlap = true;  // a DDP bucket: disjoint from every other one in flight
  absl::StatusOr<WorkPtr> work;
  {
    py::gil_scoped_release release;
    work = AllreduceAsync(pg.communicator(), o);
  }
  if (!work.ok()) throw py::value_error("silk allreduce_compressed: " + work.status().ToString());
  return std::make_shared<CompressedWork>(CompressedWork{*work, tensor, feedback});
}

}  // namespace

void DefineCompressedAllreduce(py::module_& m) {
  py::class_<ErrorFeedback>(m, "ErrorFeedback",
                            "One buffer's carried quantisation error (collectives/compression/error_feedback.h).")
      .def(py::init<>())
      .def("reset", &ErrorFeedback::Reset, "Forgets the carried error.")
      .def_property_readonly("nbytes", &ErrorFeedback::bytes, "Bytes held (this rank's share).");
  py::class_<CompressedWork, std::shared_ptr<CompressedWork>>(m, "CompressedWork")
      .def("wait", &CompressedWork::Wait, "Waits (without the GIL); raises with Silk's message if it failed.")
      .def("is_completed", [](CompressedWork& w) { return w.work->Test(); });
  m.def("allreduce_compressed", &AllreduceCompressed, py::arg("group"), py::arg("tensor"), py::arg("compression"),
        py::arg("feedback") = py::none(), py::arg("average") = false,
        "In-place all-reduce of a contiguous CPU float32 tensor whose WAN hop is sent as `compression` "
        "(none, bf16, int8, int4, topk), with `feedback` (an ErrorFeedback kept per buffer, or None). Returns a "
        "CompressedWork at once.");
}

}  // namespace silk::pytorch
