// RegionAllgather: one payload per region, gathered everywhere (see collectives.h).
#include <memory>

#include "collectives/algorithms/region_allgather.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchRegionAllgather(Communicator& comm, const RegionAllgatherOptions& options) {
  auto topology = std::make_shared<const Topology>(Topology::FromPlacements(comm.placements()));
  const int regions = topology->num_regions();
  SILK_ASSIGN_OR_RETURN(const size_t output_bytes, BufferBytes(options.bytes, regions, DataType::kUint8,
                                                               "region_allgather"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, options.bytes, "region_allgather input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, output_bytes, "region_allgather output"));
  const char* own = static_cast<const char*>(options.output) +
                    static_cast<size_t>(topology->region_of(comm.rank())) * options.bytes;
  SILK_RETURN_IF_ERROR(ValidateBlockPlacement(options.input, options.bytes, options.output, output_bytes, own,
                                              "region_allgather input"));
  LaunchOptions launch;
  // The hierarchical flag: its messages cross regions, so ranks that called
  // this and ranks that called a flat operation of the same count disagree.
  launch.descriptor = MakeDescriptor(CollectiveKind::kRegionAllgather, DataType::kUint8, ReduceOp::kSum, -1,
                                     options.bytes, algorithms::Algorithm::kHierarchical);
  launch.timeout = options.timeout;
  launch.may_overlap = options.may_overlap;
  const size_t chunk_bytes = comm.config().chunk_bytes;
  return Launch(comm, std::move(launch),
                [o = options, topology, chunk_bytes](OpContext& ctx, algorithms::Workspace&) {
                  return algorithms::RegionAllgather(ctx, *topology, o.input, o.output, o.bytes, chunk_bytes);
                });
}

}  // namespace

absl::StatusOr<WorkPtr> RegionAllgatherAsync(Communicator& comm, const RegionAllgatherOptions& options) {
  return RejectOnError(comm, CollectiveKind::kRegionAllgather, LaunchRegionAllgather(comm, options));
}

absl::Status RegionAllgather(Communicator& comm, const RegionAllgatherOptions& options) {
  return WaitFor(RegionAllgatherAsync(comm, options));
}

}  // namespace silk
