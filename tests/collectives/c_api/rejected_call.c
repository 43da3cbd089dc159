/* A call refused on one rank must fail on every rank, never pair with another:
 * rank 0 passes a NULL buffer to silk_allreduce (refused: INVALID_ARGUMENT);
 * every other rank's matching, valid call fails with MISMATCH instead of
 * pairing with rank 0's next all-reduce, and the communicator stays failed.
 * Prints "rank R: rejected call failed everywhere" on success. */
#include <stdio.h>
#include <string.h>

#include "silk.h"

int main(void) {
  silk_comm_t* comm = NULL;
  if (silk_init(&comm) != SILK_SUCCESS) {
    fprintf(stderr, "silk_init: %s\n", silk_last_error());
    return 1;
  }
  const int rank = silk_comm_rank(comm);
  float data[16];
  for (int i = 0; i < 16; ++i) data[i] = (float)rank;
  silk_result_t first, second;
  if (rank == 0) {
    first = silk_allreduce(comm, NULL, data, 16, SILK_FLOAT32, SILK_SUM);
    if (first != SILK_ERROR_INVALID_ARGUMENT) {
      fprintf(stderr, "rank 0: the NULL input gave %s\n", silk_result_string(first));
      return 1;
    }
    second = silk_allreduce(comm, data, data, 16, SILK_FLOAT32, SILK_SUM);
    if (second == SILK_SUCCESS) {
      fprintf(stderr, "rank 0: its next all-reduce succeeded: it paired with the others' refused call\n");
      return 1;
    }
  } else {
    first = silk_allreduce(comm, data, data, 16, SILK_FLOAT32, SILK_SUM);
    if (first != SILK_ERROR_MISMATCH || strstr(silk_last_error(), "rejected") == NULL) {
      fprintf(stderr, "rank %d: the call matching rank 0's refused one gave %s: %s\n", rank,
              silk_result_string(first), silk_last_error());
      return 1;
    }
  }
  if (silk_comm_status(comm) == SILK_SUCCESS) {
    fprintf(stderr, "rank %d: the communicator is still healthy\n", rank);
    return 1;
  }
  printf("rank %d: rejected call failed everywhere (%s)\n", rank, silk_last_error());
  silk_finalize(comm);
  return 0;
}
