/* Silk's C API: the stable surface that frameworks (PyTorch, JAX custom calls,
 * TensorFlow ops, Rust or Go bindings) link against.
 *
 * Ownership: every silk_comm_t from silk_init* is released with
 * silk_finalize; every silk_work_t from an *_async call is released with
 * silk_work_free (after it completed, or the communicator was finalized).
 * Buffers passed to an async call must stay valid until the work completes.
 *
 * Threading: a communicator may be used from several threads, but every rank
 * must issue the same collectives in the same order (like NCCL). Collectives
 * run on the communicator's own engine and progress threads; the calling
 * thread only waits.
 *
 * Errors: functions return SILK_SUCCESS or a silk_result_t error code;
 * silk_last_error() returns the message of the last failure on the calling
 * thread (valid until that thread's next Silk call). After a network failure,
 * a timeout or a mismatched call, the communicator's error is sticky: every
 * later call returns it at once. No call blocks without bound: each operation
 * fails after its timeout (SILK_TIMEOUT, default 5 minutes). */
#ifndef SILK_SILK_H_
#define SILK_SILK_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SILK_VERSION_MAJOR 0
#define SILK_VERSION_MINOR 1

typedef struct silk_comm silk_comm_t;
typedef struct silk_work silk_work_t;

typedef enum {
  SILK_SUCCESS = 0,
  SILK_ERROR_INVALID_ARGUMENT = 1, /* bad argument; the call was refused, nothing of it sent: it still takes
                                      its place in the sequence of calls, so the other ranks' matching call
                                      fails (SILK_ERROR_MISMATCH) unless they refused the same call */
  SILK_ERROR_TIMEOUT = 2,          /* an operation or wait ran out of time */
  SILK_ERROR_MISMATCH = 3,         /* ranks called different collectives */
  SILK_ERROR_NETWORK = 4,          /* a peer died or left, a connection broke, or a peer broke the protocol */
  SILK_ERROR_ABORTED = 5,          /* a rank aborted the job */
  SILK_ERROR_INTERNAL = 6
} silk_result_t;

/* Values match the C++ silk::DataType and silk::ReduceOp. */
typedef enum {
  SILK_FLOAT32 = 0,
  SILK_FLOAT64 = 1,
  SILK_FLOAT16 = 2,
  SILK_BFLOAT16 = 3,
  SILK_INT8 = 4,
  SILK_UINT8 = 5,
  SILK_INT32 = 6,
  SILK_INT64 = 7
} silk_datatype_t;

typedef enum { SILK_SUM = 0, SILK_PROD = 1, SILK_MIN = 2, SILK_MAX = 3, SILK_AVG = 4 } silk_redop_t;

/* Joins the job: through MPI under mpirun, from MASTER_ADDR/MASTER_PORT/RANK/
 * WORLD_SIZE otherwise (silk_init), or explicitly. Settings come from SILK_*
 * environment variables. */
silk_result_t silk_init(silk_comm_t** comm);
silk_result_t silk_init_from_mpi(silk_comm_t** comm);
silk_result_t silk_init_from_env(silk_comm_t** comm);
/* Finishes queued operations, says goodbye to the peers and frees the communicator. */
void silk_finalize(silk_comm_t* comm);

int silk_comm_rank(const silk_comm_t* comm);
int silk_comm_size(const silk_comm_t* comm);
int silk_comm_local_rank(const silk_comm_t* comm);
/* SILK_SUCCESS while healthy, else the sticky error (message in silk_last_error()). */
silk_result_t silk_comm_status(const silk_comm_t* comm);
/* Fails the job on every rank with `reason`. */
void silk_comm_abort(silk_comm_t* comm, const char* reason);

/* recvbuf may equal sendbuf (in place). */
silk_result_t silk_allreduce(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                             silk_datatype_t type, silk_redop_t op);
silk_result_t silk_allreduce_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, silk_redop_t op, silk_work_t** work);

/* Waits at most timeout_seconds (negative: until the operation itself completes
 * or times out). SILK_ERROR_TIMEOUT from a bounded wait leaves the work running. */
silk_result_t silk_work_wait(silk_work_t* work, double timeout_seconds);
/* 1 when complete (then silk_work_wait returns at once), 0 while running. */
int silk_work_test(const silk_work_t* work);
void silk_work_free(silk_work_t* work);

const char* silk_last_error(void);
const char* silk_result_string(silk_result_t result);

#ifdef __cplusplus
}
#endif

#endif /* SILK_SILK_H_ */
