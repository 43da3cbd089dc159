/* An elastic job's member through the C API (c_api_elastic_test.cc): a loop
 * of checked all-reduces; member 2 dies at step 5 and the others shrink
 * (silk_comm_shrink) and finish. Prints "RESULT member=<m> size=<n> epoch=<e>". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silk.h"

int main(void) {
  silk_comm_t* comm = NULL;
  if (silk_init_from_env(&comm) != SILK_SUCCESS) {
    fprintf(stderr, "init: %s\n", silk_last_error());
    return 1;
  }
  const int member = silk_comm_member(comm);
  const char* incarnation = getenv("SILK_ELASTIC_INCARNATION");
  const int first_life = incarnation == NULL || strcmp(incarnation, "0") == 0;
  int shrinks = 0;
  for (int step = 0; step < 20;) {
    if (member == 2 && first_life && step == 5) raise(SIGKILL);
    /* Each member's id, gathered: the expected sum follows the membership. */
    int64_t mine = member, ids[64] = {0}, in = member + 1, sum = 0;
    const int size = silk_comm_size(comm);
    silk_result_t r = silk_allgather(comm, &mine, ids, 1, SILK_INT64);
    if (r == SILK_SUCCESS) r = silk_allreduce(comm, &in, &sum, 1, SILK_INT64, SILK_SUM);
    if (r != SILK_SUCCESS) {
      fprintf(stderr, "member %d: step %d failed (%s); shrinking\n", member, step, silk_last_error());
      silk_membership_change_t change;
      if (silk_comm_shrink(comm, &change) != SILK_SUCCESS) {
        fprintf(stderr, "shrink: %s\n", silk_last_error());
        return 1;
      }
      fprintf(stderr, "member %d: epoch %llu, %d lost, %.3f s\n", member, (unsigned long long)change.epoch,
              change.lost, change.seconds);
      ++shrinks;
      continue;
    }
    int64_t expected = 0;
    for (int i = 0; i < size; ++i) expected += ids[i] + 1;
    if (sum != expected) {
      fprintf(stderr, "member %d: step %d: sum %lld, expected %lld\n", member, step, (long long)sum, (long long)expected);
      return 1;
    }
    ++step;
  }
  printf("RESULT member=%d size=%d epoch=%llu shrinks=%d\n", member, silk_comm_size(comm),
         (unsigned long long)silk_comm_epoch(comm), shrinks);
  silk_finalize(comm);
  return 0;
}
