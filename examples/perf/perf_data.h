// allreduce_perf's data: where one row's elements live (Layout), the inputs
// each rank fills in, and the check of the result (wrong elements, or under
// --wan-compression the error against a float64 reference).
#pragma once

#include <cstddef>
#include <cstdint>

#include "examples/perf/perf_flags.h"

namespace silk_perf {

// Where one row's data lives, in elements, as nccl-tests lays it out: `count`
// is the argument of the call, the in-place offsets point into one buffer.
struct Layout {
  size_t count = 0;
  size_t send = 0, recv = 0;
  size_t in_place_send = 0, in_place_recv = 0;
};

Layout LayoutFor(Collective c, size_t bytes, size_t elem, int n, int rank);

// This rank's input for the row: small integers, or real values under --wan-compression.
void FillInput(const Flags& f, int n, int rank, const Layout& l, void* input);

// The all-reduce's error against the float64 reference, on this rank.
struct ErrorStats {
  double max_err = 0, max_ref = 0, sum_err2 = 0, sum_ref2 = 0;
  uint64_t hash = 14695981039346656037ull;  // FNV-1a of the result's bytes
};

ErrorStats MeasureError(const Flags& f, int n, const Layout& l, const void* output);

// Wrong elements in this rank's output.
int64_t CountWrong(const Flags& f, int n, int rank, const Layout& l, const void* output);

}  // namespace silk_perf
