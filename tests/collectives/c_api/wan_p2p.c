/* Point-to-point across regions through the C API, for the virtual cluster
 * (tests/collectives/vcluster_p2p_test.py): rank 0 and the last rank (placed
 * in the other region) ping-pong 8 bytes 20 times, then rank 0 sends 64 MiB,
 * checked; meanwhile every rank exchanges with both ring neighbours in one
 * group. Prints "wan_p2p: rtt_ms=... mib_per_s=... wan_bytes_sent=..." from
 * rank 0 and "rank R: wan p2p passed" from each rank. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "silk.h"

#define CHECK(call)                                                                                      \
  do {                                                                                                   \
    silk_result_t r_ = (call);                                                                           \
    if (r_ != SILK_SUCCESS) {                                                                            \
      fprintf(stderr, "rank %d: %s: %s: %s\n", rank, #call, silk_result_string(r_), silk_last_error()); \
      return 1;                                                                                          \
    }                                                                                                    \
  } while (0)

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int CompareDoubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  int rank = -1;
  silk_comm_t* comm = NULL;
  CHECK(silk_init(&comm));
  rank = silk_comm_rank(comm);
  const int size = silk_comm_size(comm), last = size - 1;
  if (size < 2) {
    fprintf(stderr, "wan_p2p needs two ranks or more\n");
    return 1;
  }
  /* Both ring neighbours at once: any pair, no deadlock. */
  int to_right = 1000 + rank, from_left = -1;
  CHECK(silk_group_start());
  CHECK(silk_recv(comm, &from_left, 1, SILK_INT32, (rank + size - 1) % size, 7));
  CHECK(silk_send(comm, &to_right, 1, SILK_INT32, (rank + 1) % size, 7));
  CHECK(silk_group_end());
  if (from_left != 1000 + (rank + size - 1) % size) {
    fprintf(stderr, "rank %d: ring neighbour sent %d\n", rank, from_left);
    return 1;
  }
  if (rank == 0 || rank == last) {
    const int peer = rank == 0 ? last : 0;
    double rtt[20];
    long ping = 0;
    for (int i = 0; i < 20; ++i) {
      const double start = Now();
      if (rank == 0) {
        CHECK(silk_send(comm, &ping, 1, SILK_INT64, peer, 1));
        CHECK(silk_recv(comm, &ping, 1, SILK_INT64, peer, 2));
      } else {
        CHECK(silk_recv(comm, &ping, 1, SILK_INT64, peer, 1));
        ping++;
        CHECK(silk_send(comm, &ping, 1, SILK_INT64, peer, 2));
      }
      rtt[i] = Now() - start;
    }
    const size_t count = (size_t)16 << 20; /* 64 MiB of float32 */
    float* data = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; ++i) data[i] = rank == 0 ? (float)(i % 1000003) : -1.0f;
    const double start = Now();
    if (rank == 0) {
      CHECK(silk_send(comm, data, count, SILK_FLOAT32, peer, 3));
      CHECK(silk_recv(comm, &ping, 1, SILK_INT64, peer, 4)); /* the peer has it all */
    } else {
      CHECK(silk_recv(comm, data, count, SILK_FLOAT32, peer, 3));
      CHECK(silk_send(comm, &ping, 1, SILK_INT64, peer, 4));
      for (size_t i = 0; i < count; ++i) {
        if (data[i] != (float)(i % 1000003)) {
          fprintf(stderr, "rank %d: element %zu is %f\n", rank, i, data[i]);
          return 1;
        }
      }
    }
    const double seconds = Now() - start;
    free(data);
    if (rank == 0) {
      silk_stats_t stats;
      CHECK(silk_comm_stats(comm, &stats));
      qsort(rtt, 20, sizeof rtt[0], CompareDoubles);
      printf("wan_p2p: rtt_ms=%.2f mib_per_s=%.1f wan_bytes_sent=%llu ping=%ld\n", rtt[10] * 1e3,
             64.0 / seconds, (unsigned long long)stats.wan_bytes_sent, ping);
    }
  }
  CHECK(silk_barrier(comm));
  printf("rank %d: wan p2p passed\n", rank);
  silk_finalize(comm);
  return 0;
}
