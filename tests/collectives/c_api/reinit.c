/* Re-initialisation: ROUNDS times silk_init, an all-reduce, silk_finalize, on
 * one MASTER_PORT (or under mpirun). Rank 0, which hosts the rendezvous store,
 * leaves each round last, so the other ranks' next silk_init reaches the old
 * store before it closes: each must still join the new group, never the old
 * one's addresses. Prints "rank R: N rounds OK (slowest S s)".
 *
 *   c_api_reinit [ROUNDS]   (default 10) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "silk.h"

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 10;
  double slowest = 0;
  int rank = -1;
  for (int round = 0; round < rounds; ++round) {
    const double start = Now();
    silk_comm_t* comm = NULL;
    if (silk_init(&comm) != SILK_SUCCESS) {
      fprintf(stderr, "round %d: silk_init: %s\n", round, silk_last_error());
      return 1;
    }
    rank = silk_comm_rank(comm);
    const int size = silk_comm_size(comm);
    float data[64];
    for (int i = 0; i < 64; ++i) data[i] = (float)(rank + round);
    if (silk_allreduce(comm, data, data, 64, SILK_FLOAT32, SILK_SUM) != SILK_SUCCESS) {
      fprintf(stderr, "rank %d round %d: all-reduce: %s\n", rank, round, silk_last_error());
      return 1;
    }
    const float expected = (float)(size * (size - 1) / 2 + size * round);
    if (data[0] != expected || data[63] != expected) {
      fprintf(stderr, "rank %d round %d: got %g, expected %g\n", rank, round, data[0], expected);
      return 1;
    }
    if (rank == 0) usleep(200 * 1000);
    silk_finalize(comm);
    if (Now() - start > slowest) slowest = Now() - start;
  }
  printf("rank %d: %d rounds OK (slowest %.2f s)\n", rank, rounds, slowest);
  return 0;
}
