/* silk_comm_shrink on a communicator that was not launched elastically:
 * refused with a message, the communicator still usable (c_api_elastic_test.cc). */
#include <stdio.h>

#include "silk.h"

int main(void) {
  silk_comm_t* comm = NULL;
  if (silk_init_from_env(&comm) != SILK_SUCCESS) {
    fprintf(stderr, "init: %s\n", silk_last_error());
    return 1;
  }
  if (silk_comm_shrink(comm, NULL) != SILK_ERROR_INVALID_ARGUMENT) return 2;
  printf("refused: %s\n", silk_last_error());
  int one = 1, sum = 0;
  if (silk_allreduce(comm, &one, &sum, 1, SILK_INT32, SILK_SUM) != SILK_SUCCESS || sum != silk_comm_size(comm)) return 3;
  if (silk_comm_member(comm) != silk_comm_rank(comm) || silk_comm_epoch(comm) != 1) return 4;
  silk_finalize(comm);
  return 0;
}
