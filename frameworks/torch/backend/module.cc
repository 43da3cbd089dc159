// silk.torch._C: the Python face of ProcessGroupSilk. silk/torch/__init__.py
// registers create_process_group with torch.distributed as backend "silk".
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>  // c10::intrusive_ptr as a holder type

#include "frameworks/torch/backend/compressed_allreduce.h"
#include "frameworks/torch/backend/process_group.h"

namespace py = pybind11;

namespace silk::pytorch {
namespace {

void WaitWithoutGil(const std::function<void()>& wait) {
  if (Py_IsInitialized() && PyGILState_Check()) {
    py::gil_scoped_release release;
    wait();
  } else {
    wait();
  }
}

c10::intrusive_ptr<ProcessGroupSilk> CreateProcessGroup(const c10::intrusive_ptr<::c10d::Store>& store, int rank,
                                                        int size, std::chrono::milliseconds timeout) {
  return ProcessGroupSilk::Create(store, rank, size, timeout);
}

}  // namespace
}  // namespace silk::pytorch

PYBIND11_MODULE(_C, m) {
  using silk::pytorch::BackendBase;
  using silk::pytorch::ProcessGroupSilk;
  m.doc() = "Silk's torch.distributed backend (import silk.torch to register it as \"silk\")";
  ProcessGroupSilk::SetBlockingRegion(&silk::pytorch::WaitWithoutGil);

  py::class_<ProcessGroupSilk, BackendBase, c10::intrusive_ptr<ProcessGroupSilk>>(
      m, "ProcessGroupSilk",
      "A torch.distributed process group whose collectives run on a Silk communicator.\n"
      "Usually made by init_process_group(backend=\"silk\") or new_group(backend=\"silk\").")
      .def(py::init(&silk::pytorch::CreateProcessGroup), py::arg("store"), py::arg("rank"), py::arg("size"),
           py::arg("timeout"), py::call_guard<py::gil_scoped_release>())
      .def_property_readonly(
          "region", [](ProcessGroupSilk& pg) { return pg.communicator().region(); },
          "This rank's region (SILK_REGION).")
      .def_property_readonly(
          "node", [](ProcessGroupSilk& pg) { return pg.communicator().node(); }, "This rank's node (SILK_NODE).")
      .def_property_readonly(
          "silk_status",
          [](ProcessGroupSilk& pg) {
            absl::Status status = pg.communicator().status();
            return status.ok() ? std::string("OK") : std::string(status.ToString());
          },
          "\"OK\", or the communicator's sticky error.")
      .def(
          "stats",
          [](ProcessGroupSilk& pg) {
            const silk::CommStats s = pg.communicator().Stats();
            py::dict d;
            for (auto [name, tier] : {std::pair{"node", s.node}, {"region", s.region}, {"wan", s.wan}}) {
              d[py::str(std::string(name) + "_bytes_sent")] = tier.bytes_sent;
              d[py::str(std::string(name) + "_bytes_received")] = tier.bytes_received;
            }
            d["collectives"] = s.collectives;
            d["point_to_point"] = s.point_to_point;
            d["failed"] = s.failed;
            d["collective_seconds"] = absl::ToDoubleSeconds(s.collective_time);
            d["point_to_point_seconds"] = absl::ToDoubleSeconds(s.point_to_point_time);
            return d;
          },
          "Counters since the group was made (silk.torch.stats).");

  m.def("create_process_group", &silk::pytorch::CreateProcessGroup, py::arg("store"), py::arg("rank"),
        py::arg("size"), py::arg("timeout"), py::call_guard<py::gil_scoped_release>(),
        "The creator torch.distributed calls for backend \"silk\": joins the group's rendezvous over `store`.");
  m.def(
      "_shutdown_all",
      [](double grace_seconds) { ProcessGroupSilk::ShutdownAll(absl::Seconds(grace_seconds)); },
      py::arg("grace_seconds"), py::call_guard<py::gil_scoped_release>(),
      "Waits for every silk group's operations in flight (aborting those still running after the grace "
      "period), then closes its communicator with a goodbye to every peer. Registered with atexit: no future "
      "callback may need the GIL once the interpreter finalizes, and the peers must see an orderly end.");
  m.def(
      "reconfigure",
      [](const c10::intrusive_ptr<ProcessGroupSilk>& group, int64_t admit_up_to) {
        silk::Communicator::Reconfiguration r;
        c10::intrusive_ptr<ProcessGroupSilk> fresh;
        {
          py::gil_scoped_release release;
          fresh = ProcessGroupSilk::Reconfigure(group, admit_up_to, &r);
        }
        return py::make_tuple(fresh, r.epoch, r.lost, r.joined, r.rejoined, absl::ToDoubleSeconds(r.took));
      },
      py::arg("group"), py::arg("admit_up_to"),
      "Elastic jobs: agrees on the new membership; returns (new group, epoch, lost members, joined members, "
      "rejoined, seconds). See silk.torch.reconfigure.");
  m.def(
      "membership",
      [](ProcessGroupSilk& group) {
        std::shared_ptr<silk::Communicator> comm = group.Comm("membership");
        py::dict d;
        d["elastic"] = comm->elastic();
        d["member"] = comm->member();
        d["epoch"] = comm->epoch();
        d["members"] = comm->members();
        d["join_requests"] = comm->JoinRequests();
        d["answered_join_requests"] = comm->AnsweredJoinRequests();
        return d;
      },
      py::arg("group"), "Elastic jobs: this process's member id, the epoch, its members and join requests.");
  m.def(
      "mark_job_finished",
      [](ProcessGroupSilk& group) {
        absl::Status s = group.Comm("mark_job_finished")->MarkJobFinished();
        if (!s.ok()) throw std::runtime_error(std::string(s.message()));
      },
      py::arg("group"), py::call_guard<py::gil_scoped_release>(),
      "Elastic jobs: the job is over; processes still waiting to rejoin are told so.");
  silk::pytorch::DefineCompressedAllreduce(m);
  m.attr("torch_version") = TORCH_VERSION;
  m.attr("backend_is_process_group") = silk::pytorch::kBackendIsProcessGroup;
}
