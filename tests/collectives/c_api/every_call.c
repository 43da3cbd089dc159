/* Every function of silk.h from a C program, under mpirun (MPI only carries
 * the unique id): version, unique id and init_rank, each collective blocking
 * and _async, in and out of place, every type, counts 0, 1 and uneven; send
 * and receive by tag in and out of order and in a group; groups of
 * collectives; a mismatched receive seen by silk_comm_get_async_error on every
 * rank; silk_comm_abort_local failing the peers' barrier at once. Prints
 * "rank R: every call passed" on success. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "silk.h"

static int rank, size, failures;

#define CHECK(call)                                                                                     \
  do {                                                                                                  \
    silk_result_t r_ = (call);                                                                          \
    if (r_ != SILK_SUCCESS) {                                                                           \
      fprintf(stderr, "rank %d: %s: %s: %s\n", rank, #call, silk_result_string(r_), silk_last_error()); \
      exit(1);                                                                                          \
    }                                                                                                   \
  } while (0)
#define EXPECT(cond, ...)                        \
  do {                                           \
    if (!(cond)) {                               \
      fprintf(stderr, "rank %d: ", rank);        \
      fprintf(stderr, __VA_ARGS__);              \
      fprintf(stderr, " (line %d)\n", __LINE__); \
      failures++;                                \
    }                                            \
  } while (0)

static const silk_datatype_t kTypes[] = {SILK_FLOAT32, SILK_FLOAT64, SILK_INT8,    SILK_UINT8,
                                         SILK_INT32,   SILK_INT64,   SILK_FLOAT16, SILK_BFLOAT16};
static const size_t kCounts[] = {0, 1, 13, 1031};

static size_t Size(silk_datatype_t t) {
  switch (t) {
    case SILK_FLOAT64: case SILK_INT64: return 8;
    case SILK_FLOAT32: case SILK_INT32: return 4;
    case SILK_FLOAT16: case SILK_BFLOAT16: return 2;
    default: return 1;
  }
}
static int Arithmetic(silk_datatype_t t) { return t != SILK_FLOAT16 && t != SILK_BFLOAT16; }

/* Element i of a buffer as a double, and back (small integers: exact in every type). */
static double Get(silk_datatype_t t, const void* b, size_t i) {
  switch (t) {
    case SILK_FLOAT32: return ((const float*)b)[i];
    case SILK_FLOAT64: return ((const double*)b)[i];
    case SILK_INT8: return ((const int8_t*)b)[i];
    case SILK_UINT8: return ((const uint8_t*)b)[i];
    case SILK_INT32: return ((const int32_t*)b)[i];
    case SILK_INT64: return (double)((const int64_t*)b)[i];
    default: return ((const uint16_t*)b)[i]; /* 16-bit floats: moved as bit patterns */
  }
}
static void Put(silk_datatype_t t, void* b, size_t i, double v) {
  switch (t) {
    case SILK_FLOAT32: ((float*)b)[i] = (float)v; break;
    case SILK_FLOAT64: ((double*)b)[i] = v; break;
    case SILK_INT8: ((int8_t*)b)[i] = (int8_t)v; break;
    case SILK_UINT8: ((uint8_t*)b)[i] = (uint8_t)v; break;
    case SILK_INT32: ((int32_t*)b)[i] = (int32_t)v; break;
    case SILK_INT64: ((int64_t*)b)[i] = (int64_t)v; break;
    default: ((uint16_t*)b)[i] = (uint16_t)v; break;
  }
}

/* Rank r's element i: 1..3, so sums, products (<= 3^4) and extremes are exact. */
static double Value(int r, size_t i) { return (double)((r + i) % 3 + 1); }

static void Fill(silk_datatype_t t, void* b, size_t n, int r, size_t offset) {
  for (size_t i = 0; i < n; ++i) Put(t, b, i, Value(r, i + offset));
}

static double Reduced(silk_redop_t op, size_t i) {
  double acc = Value(0, i);
  for (int r = 1; r < size; ++r) {
    double v = Value(r, i);
    acc = op == SILK_SUM ? acc + v : op == SILK_PROD ? acc * v : op == SILK_MIN ? (v < acc ? v : acc) : (v > acc ? v : acc);
  }
  return acc;
}

/* Runs a blocking call, or its _async form and a wait, alternately. */
static int call_number;
#define RUN(blocking, async_call)                       \
  do {                                                  \
    if (call_number++ % 2 == 0) {                       \
      CHECK(blocking);                                  \
    } else {                                            \
      silk_work_t* work_ = NULL;                        \
      CHECK(async_call);                                \
      CHECK(silk_work_wait(work_, -1));                 \
      EXPECT(silk_work_test(work_) == 1, "work not complete after wait"); \
      silk_work_free(work_);                            \
    }                                                   \
  } while (0)

static void Reductions(silk_comm_t* comm, silk_datatype_t t, size_t n, int in_place) {
  const size_t e = Size(t);
  char* in = malloc(n * size * e + 8);
  char* out = malloc(n * size * e + 8);
  const silk_redop_t ops[] = {SILK_SUM, SILK_PROD, SILK_MIN, SILK_MAX};
  for (int k = 0; k < 4; ++k) {
    silk_redop_t op = ops[k];
    Fill(t, in, n, rank, 0);
    char* dst = in_place ? in : out;
    RUN(silk_allreduce(comm, in, dst, n, t, op), silk_allreduce_async(comm, in, dst, n, t, op, &work_));
    for (size_t i = 0; i < n; ++i) EXPECT(Get(t, dst, i) == Reduced(op, i), "allreduce op %d type %d [%zu]", op, t, i);

    const int root = size - 1;
    Fill(t, in, n, rank, 0);
    RUN(silk_reduce(comm, in, dst, n, t, op, root), silk_reduce_async(comm, in, dst, n, t, op, root, &work_));
    if (rank == root) {
      for (size_t i = 0; i < n; ++i) EXPECT(Get(t, dst, i) == Reduced(op, i), "reduce op %d type %d [%zu]", op, t, i);
    }

    /* reduce_scatter: block b of rank r holds Value(r, b * n + i). */
    Fill(t, in, n * size, rank, 0);
    char* block = in_place ? in + (size_t)rank * n * e : out;
    RUN(silk_reduce_scatter(comm, in, block, n, t, op), silk_reduce_scatter_async(comm, in, block, n, t, op, &work_));
    for (size_t i = 0; i < n; ++i) {
      EXPECT(Get(t, block, i) == Reduced(op, rank * n + i), "reduce_scatter op %d type %d [%zu]", op, t, i);
    }
  }
  free(in);
  free(out);
}

static void Movement(silk_comm_t* comm, silk_datatype_t t, size_t n, int in_place) {
  const size_t e = Size(t);
  char* in = malloc(n * size * e + 8);
  char* out = malloc(n * size * e + 8);
  const int root = size / 2;
  Fill(t, in, n, rank == root ? 7 : rank, 0);
  char* dst = in_place ? in : out;
  RUN(silk_broadcast(comm, in, dst, n, t, root), silk_broadcast_async(comm, in, dst, n, t, root, &work_));
  for (size_t i = 0; i < n; ++i) EXPECT(Get(t, dst, i) == Value(7, i), "broadcast type %d [%zu]", t, i);

  char* mine = in_place ? out + (size_t)rank * n * e : in;
  Fill(t, mine, n, rank, 0);
  RUN(silk_allgather(comm, mine, out, n, t), silk_allgather_async(comm, mine, out, n, t, &work_));
  for (int r = 0; r < size; ++r) {
    for (size_t i = 0; i < n; ++i) EXPECT(Get(t, out, r * n + i) == Value(r, i), "allgather type %d", t);
  }

  /* alltoall: block j of rank r holds Value(r, j * n + i). */
  Fill(t, in, n * size, rank, 0);
  RUN(silk_alltoall(comm, in, dst, n, t), silk_alltoall_async(comm, in, dst, n, t, &work_));
  for (int r = 0; r < size; ++r) {
    for (size_t i = 0; i < n; ++i) EXPECT(Get(t, dst, r * n + i) == Value(r, rank * n + i), "alltoall type %d", t);
  }
  free(in);
  free(out);
}

/* A ring exchange in one group (blocking calls), then tags received out of order. */
static void PointToPoint(silk_comm_t* comm, silk_datatype_t t, size_t n) {
  const size_t e = Size(t);
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;
  char* a = malloc(n * e + 8);
  char* b = malloc(n * e + 8);
  char* c = malloc(n * e + 8);
  Fill(t, a, n, rank, 0);
  CHECK(silk_group_start());
  CHECK(silk_recv(comm, b, n, t, left, 5));
  CHECK(silk_send(comm, a, n, t, right, 5));
  CHECK(silk_group_end());
  for (size_t i = 0; i < n; ++i) EXPECT(Get(t, b, i) == Value(left, i), "ring recv type %d [%zu]", t, i);

  /* Tag 2 is received first but sent second; two sends with tag 1 arrive in order. */
  silk_work_t *r2, *r1a, *r1b, *s1a, *s1b, *s2;
  CHECK(silk_recv_async(comm, c, n, t, left, 2, &r2));
  CHECK(silk_recv_async(comm, b, n, t, left, 1, &r1a));
  Fill(t, a, n, rank, 1);
  CHECK(silk_send_async(comm, a, n, t, right, 1, &s1a));
  char* a2 = malloc(n * e + 8);
  char* a3 = malloc(n * e + 8);
  Fill(t, a2, n, rank, 2);
  Fill(t, a3, n, rank, 3);
  CHECK(silk_send_async(comm, a2, n, t, right, 1, &s1b));
  CHECK(silk_send_async(comm, a3, n, t, right, 2, &s2));
  CHECK(silk_work_wait(r1a, 30));
  char* d = malloc(n * e + 8);
  CHECK(silk_recv_async(comm, d, n, t, left, 1, &r1b));
  silk_work_t* all[] = {r2, r1b, s1a, s1b, s2};
  for (int k = 0; k < 5; ++k) CHECK(silk_work_wait(all[k], 30));
  for (size_t i = 0; i < n; ++i) {
    EXPECT(Get(t, b, i) == Value(left, i + 1), "first tag-1 message type %d [%zu]", t, i);
    EXPECT(Get(t, d, i) == Value(left, i + 2), "second tag-1 message type %d [%zu]", t, i);
    EXPECT(Get(t, c, i) == Value(left, i + 3), "tag-2 message type %d [%zu]", t, i);
  }
  silk_work_free(r1a);
  for (int k = 0; k < 5; ++k) silk_work_free(all[k]);
  free(a), free(a2), free(a3), free(b), free(c), free(d);
}

/* Even and odd ranks, in reverse order (the last of 3+ ranks takes no part),
 * each half's all-reduce running beside one on the whole communicator. */
static void Split(silk_comm_t* comm) {
  const int left_out = size > 2 ? size - 1 : -1;
  const int color = rank == left_out ? SILK_SPLIT_NOCOLOR : rank % 2;
  silk_comm_t* half = NULL;
  CHECK(silk_comm_split(comm, color, -rank, &half));
  float whole = (float)rank, part = (float)rank;
  silk_work_t *w_whole = NULL, *w_part = NULL;
  CHECK(silk_allreduce_async(comm, &whole, &whole, 1, SILK_FLOAT32, SILK_SUM, &w_whole));
  if (color == SILK_SPLIT_NOCOLOR) {
    EXPECT(half == NULL, "split: no color, yet a communicator");
  } else {
    int members = 0, above = 0;
    float sum = 0;
    for (int r = 0; r < size; ++r) {
      if (r % 2 != color || r == left_out) continue;
      members++, above += r > rank, sum += (float)r;
    }
    EXPECT(half != NULL && silk_comm_size(half) == members && silk_comm_rank(half) == above,
           "split: rank %d of %d, expected %d of %d", silk_comm_rank(half), silk_comm_size(half), above, members);
    CHECK(silk_allreduce_async(half, &part, &part, 1, SILK_FLOAT32, SILK_SUM, &w_part));
    CHECK(silk_work_wait(w_part, 30));
    silk_work_free(w_part);
    EXPECT(part == sum, "split all-reduce: %g, expected %g", part, sum);
    silk_finalize(half);
  }
  CHECK(silk_work_wait(w_whole, 30));
  silk_work_free(w_whole);
  EXPECT(whole == (float)(size * (size - 1) / 2), "all-reduce beside the split: %g", whole);
}

static silk_comm_t* NewComm(void) {
  silk_unique_id_t id;
  if (rank == 0) CHECK(silk_get_unique_id(&id));
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  silk_comm_t* comm = NULL;
  CHECK(silk_comm_init_rank(&comm, size, id, rank));
  EXPECT(silk_comm_rank(comm) == rank && silk_comm_size(comm) == size, "init_rank: rank %d of %d",
         silk_comm_rank(comm), silk_comm_size(comm));
  return comm;
}

static silk_result_t AsyncErrorWithin(silk_comm_t* comm, double seconds) {
  silk_result_t error = SILK_SUCCESS;
  for (int i = 0; i < seconds * 100; ++i) {
    CHECK(silk_comm_get_async_error(comm, &error));
    if (error != SILK_SUCCESS) break;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  return error;
}

/* The compressed all-reduce: in one region it is the plain one (only a WAN hop is compressed),
 * blocking and async, with and without error feedback; what it refuses, every rank refuses. */
static void Compressed(silk_comm_t* comm) {
  float v[300], w[300];
  silk_error_feedback_t* feedback = NULL;
  CHECK(silk_error_feedback_create(&feedback));
  for (int c = SILK_WAN_COMPRESSION_NONE; c <= SILK_WAN_COMPRESSION_TOPK; ++c) {
    for (int i = 0; i < 300; ++i) v[i] = (float)(rank + i);
    silk_error_feedback_t* f = c == SILK_WAN_COMPRESSION_NONE ? NULL : feedback;
    CHECK(silk_allreduce_compressed(comm, v, w, 300, SILK_FLOAT32, SILK_SUM, (silk_wan_compression_t)c, f));
    silk_work_t* work = NULL;
    CHECK(silk_allreduce_compressed_async(comm, v, v, 300, SILK_FLOAT32, SILK_SUM, (silk_wan_compression_t)c, f,
                                          &work));
    CHECK(silk_work_wait(work, 30));
    silk_work_free(work);
    const float want = (float)(size * (size - 1) / 2) + (float)size * 7;
    EXPECT(w[7] == want && v[7] == want, "compressed %d: %g and %g, not %g", c, w[7], v[7], want);
    silk_error_feedback_reset(feedback);
  }
  int32_t n[4] = {0};
  EXPECT(silk_allreduce_compressed(comm, n, n, 4, SILK_INT32, SILK_SUM, SILK_WAN_COMPRESSION_INT8, NULL) ==
             SILK_ERROR_INVALID_ARGUMENT, "int8 compression of int32 accepted");
  EXPECT(silk_allreduce_compressed(comm, v, v, 4, SILK_FLOAT32, SILK_MAX, SILK_WAN_COMPRESSION_BF16, NULL) ==
             SILK_ERROR_INVALID_ARGUMENT, "bf16 compression of a max accepted");
  EXPECT(silk_allreduce_compressed(comm, v, v, 4, SILK_FLOAT32, SILK_SUM, SILK_WAN_COMPRESSION_NONE, feedback) ==
             SILK_ERROR_INVALID_ARGUMENT, "error feedback without compression accepted");
  silk_error_feedback_free(feedback);
  silk_error_feedback_free(NULL);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int version = 0;
  CHECK(silk_get_version(&version));
  EXPECT(version == SILK_VERSION_CODE, "library version %d, header %d", version, SILK_VERSION_CODE);

  silk_comm_t* comm = NewComm();
  for (int k = 0; k < 8; ++k) {
    for (int c = 0; c < 4; ++c) {
      for (int in_place = 0; in_place < 2; ++in_place) {
        if (Arithmetic(kTypes[k])) Reductions(comm, kTypes[k], kCounts[c], in_place);
        Movement(comm, kTypes[k], kCounts[c], in_place);
      }
      PointToPoint(comm, kTypes[k], kCounts[c]);
    }
  }
  /* A group of independent collectives: blocking calls return at once, group_end waits. */
  float x[3] = {1, 2, 3}, y = (float)rank;
  CHECK(silk_group_start());
  CHECK(silk_allreduce(comm, x, x, 3, SILK_FLOAT32, SILK_SUM));
  CHECK(silk_broadcast(comm, &y, &y, 1, SILK_FLOAT32, 0));
  CHECK(silk_group_end());
  EXPECT(x[0] == size && x[2] == 3 * size && y == 0, "group: %g %g %g", x[0], x[2], y);
  Split(comm);
  Compressed(comm);
  CHECK(silk_barrier(comm));
  silk_work_t* work = NULL;
  CHECK(silk_barrier_async(comm, &work));
  CHECK(silk_work_wait(work, 30));
  silk_work_free(work);
  /* Refused on every rank alike: the communicator stays healthy. */
  EXPECT(silk_allreduce(comm, NULL, x, 3, SILK_FLOAT32, SILK_SUM) == SILK_ERROR_INVALID_ARGUMENT,
         "a null buffer was accepted");
  EXPECT(silk_send(comm, x, 1, SILK_FLOAT32, size, 0) == SILK_ERROR_INVALID_ARGUMENT, "send to rank %d", size);
  EXPECT(silk_recv(comm, x, 1, SILK_FLOAT32, 0, -1) == SILK_ERROR_INVALID_ARGUMENT, "negative tag");
  CHECK(silk_allreduce(comm, x, x, 3, SILK_FLOAT32, SILK_SUM));
  silk_stats_t stats;
  CHECK(silk_comm_stats(comm, &stats));
  EXPECT(stats.collectives > 500 && stats.point_to_point > 100 && stats.failed == 0, "stats: %llu %llu %llu",
         (unsigned long long)stats.collectives, (unsigned long long)stats.point_to_point,
         (unsigned long long)stats.failed);
  EXPECT(size == 1 || (stats.node_bytes_sent > 0 && stats.node_bytes_received > 0 && stats.wan_bytes_sent == 0),
         "stats: node bytes %llu/%llu, WAN %llu", (unsigned long long)stats.node_bytes_sent,
         (unsigned long long)stats.node_bytes_received, (unsigned long long)stats.wan_bytes_sent);
  silk_result_t healthy = SILK_ERROR_INTERNAL;
  CHECK(silk_comm_get_async_error(comm, &healthy));
  EXPECT(healthy == SILK_SUCCESS, "async error on a healthy communicator");
  silk_finalize(comm);

  if (size >= 2) {
    /* A receive that expects more than is sent: its rank fails, and every rank hears of it. */
    silk_comm_t* bad = NewComm();
    float v[5] = {0};
    if (rank == 0) silk_send(bad, v, 4, SILK_FLOAT32, 1, 0);
    if (rank == 1) {
      EXPECT(silk_recv(bad, v, 5, SILK_FLOAT32, 0, 0) == SILK_ERROR_MISMATCH, "mismatched recv: %s", silk_last_error());
    }
    EXPECT(AsyncErrorWithin(bad, 20) != SILK_SUCCESS, "no async error after a peer's mismatch");
    silk_finalize(bad);

    /* abort_local on the last rank: the others' barrier fails at once instead of timing out. */
    silk_comm_t* doomed = NewComm();
    if (rank == size - 1) {
      silk_comm_abort_local(doomed);
    } else {
      const double start = MPI_Wtime();
      silk_result_t r = silk_barrier(doomed);
      EXPECT(r == SILK_ERROR_ABORTED || r == SILK_ERROR_NETWORK, "barrier after a peer's abort_local: %s",
             silk_result_string(r));
      EXPECT(MPI_Wtime() - start < 20, "barrier took %.1f s to fail", MPI_Wtime() - start);
      silk_finalize(doomed);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (failures == 0) printf("rank %d: every call passed\n", rank);
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}
