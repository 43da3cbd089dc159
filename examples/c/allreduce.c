/* A plain C program on Silk's C API: joins the job (mpirun or torchrun-style
 * environment), sums a vector across ranks twice (blocking, then async), checks
 * the result, and reports errors the way a framework binding would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silk.h"

#define CHECK(call)                                                                         \
  do {                                                                                      \
    silk_result_t result_ = (call);                                                         \
    if (result_ != SILK_SUCCESS) {                                                          \
      fprintf(stderr, "%s failed: %s: %s\n", #call, silk_result_string(result_), silk_last_error()); \
      return 1;                                                                             \
    }                                                                                       \
  } while (0)

int main(int argc, char** argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: mpirun -np N silk-c-example   (or with MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)\n"
           "Sums a float vector of 65536 elements across the ranks with silk_allreduce,\n"
           "then silk_allreduce_async, and checks both results; exits 1 on any error.\n"
           "Settings come from SILK_* variables (README.md, Configuration).\n");
    return 0;
  }
  silk_comm_t* comm = NULL;
  CHECK(silk_init(&comm));
  const int rank = silk_comm_rank(comm), size = silk_comm_size(comm);
  const size_t count = 1 << 16;
  float* data = malloc(count * sizeof(float));
  for (size_t i = 0; i < count; ++i) data[i] = (float)rank;

  CHECK(silk_allreduce(comm, data, data, count, SILK_FLOAT32, SILK_SUM));
  const float expected = (float)(size * (size - 1) / 2);
  for (size_t i = 0; i < count; ++i) {
    if (data[i] != expected) {
      fprintf(stderr, "rank %d: element %zu is %f, expected %f\n", rank, i, data[i], expected);
      return 1;
    }
  }

  silk_work_t* work = NULL;
  CHECK(silk_allreduce_async(comm, data, data, count, SILK_FLOAT32, SILK_AVG, &work));
  CHECK(silk_work_wait(work, -1.0));
  silk_work_free(work);
  if (data[0] != expected) {
    fprintf(stderr, "rank %d: average is %f, expected %f\n", rank, data[0], expected);
    return 1;
  }

  /* A bad argument is reported, and the communicator stays usable. */
  if (silk_allreduce(comm, NULL, data, 4, SILK_FLOAT32, SILK_SUM) != SILK_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "a null buffer was not rejected\n");
    return 1;
  }
  CHECK(silk_comm_status(comm));

  printf("rank %d/%d: C API all-reduce OK (%s)\n", rank, size, "blocking and async");
  free(data);
  silk_finalize(comm);
  return 0;
}
