/* Silk's C API: the stable surface that frameworks (PyTorch, JAX custom calls,
 * TensorFlow ops, Rust or Go bindings) link against.
 *
 * Ownership: every silk_comm_t from silk_init* is released with
 * silk_finalize; every silk_work_t from an *_async call is released with
 * silk_work_free (after it completed, or the communicator was finalized).
 * Buffers passed to an async call must stay valid until the work completes.
 * Buffers are host memory; counts are elements; count 0 is allowed.
 *
 * Threading: a communicator may be used from several threads, but every rank
 * must issue the same collectives in the same order (like NCCL). Collectives
 * run on the communicator's own engine and progress threads; the calling
 * thread only waits. Point-to-point calls (silk_send, silk_recv) involve two
 * ranks only and run beside the collectives, never queued behind them.
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
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SILK_VERSION_MAJOR 0
#define SILK_VERSION_MINOR 1
#define SILK_VERSION_PATCH 0
/* As NCCL_VERSION_CODE: major * 10000 + minor * 100 + patch. */
#define SILK_VERSION_CODE (SILK_VERSION_MAJOR * 10000 + SILK_VERSION_MINOR * 100 + SILK_VERSION_PATCH)

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

/* The library's SILK_VERSION_CODE (which may differ from the header's). */
silk_result_t silk_get_version(int* version);

/* ncclGetUniqueId / ncclCommInitRank: one process makes an id, hands it to
 * every rank out of band (MPI_Bcast, a file, the framework's store), and each
 * rank joins with it. The id names a rendezvous store that the process which
 * made it hosts (on every interface; SILK_SOCKET_IFNAME picks the address
 * written into the id): keep that process's communicator alive until every
 * rank has joined. One id per communicator. */
#define SILK_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[SILK_UNIQUE_ID_BYTES];
} silk_unique_id_t;
silk_result_t silk_get_unique_id(silk_unique_id_t* id);
/* Joins as `rank` of `nranks`; blocks until every rank has joined or the
 * start-up timeout (SILK_STARTUP_TIMEOUT, else SILK_TIMEOUT) passes. */
silk_result_t silk_comm_init_rank(silk_comm_t** comm, int nranks, silk_unique_id_t id, int rank);

/* ncclCommSplit: every rank of comm calls it (in its order of collectives);
 * ranks with one color form *newcomm, ordered by key (ties: rank in comm).
 * SILK_SPLIT_NOCOLOR (any negative color) gives *newcomm = NULL. The new
 * communicator reuses comm's connections (no handshake) and keeps each rank's
 * node and region; finalize it with silk_finalize, before or after comm. It
 * shares comm's connections and so its fate: a failure in one fails both. */
#define SILK_SPLIT_NOCOLOR (-1)
silk_result_t silk_comm_split(silk_comm_t* comm, int color, int key, silk_comm_t** newcomm);

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
/* Fails the job on every rank with `reason`; the communicator is still finalized. */
void silk_comm_abort(silk_comm_t* comm, const char* reason);
/* ncclCommAbort: frees this rank's communicator at once, failing its queued
 * and running operations (SILK_ERROR_ABORTED) instead of finishing them. The
 * peers are told, so their calls that need this rank fail instead of timing out. */
void silk_comm_abort_local(silk_comm_t* comm);
/* ncclCommGetAsyncError: *async_error is SILK_SUCCESS while healthy, else the
 * sticky error (message in silk_last_error()). Never blocks. */
silk_result_t silk_comm_get_async_error(const silk_comm_t* comm, silk_result_t* async_error);

/* Elastic jobs (SILK_ELASTIC=1, launched by `cluster/vcluster run --elastic`
 * or another launcher with a silk-coordinator; docs/reliability.md,
 * "Membership"): the communicator outlives lost ranks, like ncclCommShrink
 * but agreed by the ranks themselves. After a call fails because a peer was
 * lost (SILK_ERROR_NETWORK, SILK_ERROR_ABORTED from a peer, or a timeout),
 * every surviving rank calls silk_comm_shrink; they agree, through the
 * coordinator, on who is still here, and the same handle goes on as the
 * smaller communicator: ranks renumbered densely in member order, regions
 * recomputed, fresh connections. silk_comm_reconfigure(comm, n, ...) with an
 * n that every rank agreed on from silk_comm_join_requests (e.g. by an
 * allreduce with SILK_MAX) also admits processes that asked to join
 * (restarted ranks). No call may be in flight meanwhile; work handles of
 * the previous membership fail. The caller makes its own state equal again
 * (the C++ training::SyncState does that). Without an elastic launch these
 * return SILK_ERROR_INVALID_ARGUMENT. */
typedef struct {
  uint64_t epoch;   /* the membership's number, 1 for the first */
  int lost;         /* members gone since the previous membership */
  int joined;       /* members admitted */
  int rejoined;     /* 1: this process had been left out and was admitted again */
  double seconds;   /* how long the change took */
} silk_membership_change_t;
silk_result_t silk_comm_shrink(silk_comm_t* comm, silk_membership_change_t* change /* may be NULL */);
silk_result_t silk_comm_reconfigure(silk_comm_t* comm, int64_t admit_up_to, silk_membership_change_t* change);
/* This process's member id (RANK at launch, kept across restarts); the rank without an elastic launch. */
int silk_comm_member(const silk_comm_t* comm);
uint64_t silk_comm_epoch(const silk_comm_t* comm);
/* Join requests made in the job so far, and how many the current membership answered. */
int64_t silk_comm_join_requests(const silk_comm_t* comm);
int64_t silk_comm_answered_join_requests(const silk_comm_t* comm);

/* Counters since the communicator was made. Bytes are payload to and from
 * peers on this node, elsewhere in this region, and in other regions (the
 * WAN), per connection (communicators split from one another share them). */
typedef struct {
  uint64_t node_bytes_sent, node_bytes_received;
  uint64_t region_bytes_sent, region_bytes_received;
  uint64_t wan_bytes_sent, wan_bytes_received;
  uint64_t collectives;    /* completed, successfully or not */
  uint64_t point_to_point; /* sends, receives completed */
  uint64_t failed;
  double collective_seconds;     /* summed running time of the collectives */
  double point_to_point_seconds; /* summed waits of the point-to-point calls */
} silk_stats_t;
silk_result_t silk_comm_stats(const silk_comm_t* comm, silk_stats_t* stats);

/* Collectives, with NCCL's arguments and buffer layouts (collectives/README.md).
 * Each blocks until done; its _async form returns at once with *work. */

/* Every rank gets the reduction of every rank's `count` elements. In place: recvbuf == sendbuf. */
silk_result_t silk_allreduce(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                             silk_datatype_t type, silk_redop_t op);
silk_result_t silk_allreduce_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, silk_redop_t op, silk_work_t** work);

/* The all-reduce with its cross-region hop compressed (SILK_FLOAT32, SUM or AVG;
 * the phases inside a region stay exact): each region's partial sums are
 * quantised once, by their owner, in blocks of 256 values with one scale each,
 * and every rank reduces the same decoded values in the same order, so every
 * rank ends with the same bits. One region: the plain all-reduce. `feedback`
 * (may be NULL) carries this rank's quantisation error into the next call on
 * the same buffer; one per buffer (a training loop: per bucket), passed by
 * every rank or by none, used by one call at a time. Other types, ops or a
 * feedback reused for another buffer: SILK_ERROR_INVALID_ARGUMENT. */
typedef enum {
  SILK_WAN_COMPRESSION_NONE = 0,
  SILK_WAN_COMPRESSION_BF16 = 1, /* half the WAN bytes */
  SILK_WAN_COMPRESSION_INT8 = 2, /* a quarter, plus the scales */
  SILK_WAN_COMPRESSION_INT4 = 3, /* an eighth, plus the scales */
  SILK_WAN_COMPRESSION_TOPK = 4  /* the largest 1 in 32 of each block as int8, with their indices: about
                                    1/51; use it with feedback, which carries what it drops */
} silk_wan_compression_t;
typedef struct silk_error_feedback silk_error_feedback_t;
silk_result_t silk_error_feedback_create(silk_error_feedback_t** feedback);
/* Forgets the carried error (e.g. after the buffer's values were replaced). */
void silk_error_feedback_reset(silk_error_feedback_t* feedback);
void silk_error_feedback_free(silk_error_feedback_t* feedback); /* NULL: no-op; not while a call uses it */
silk_result_t silk_allreduce_compressed(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                        silk_datatype_t type, silk_redop_t op, silk_wan_compression_t compression,
                                        silk_error_feedback_t* feedback);
silk_result_t silk_allreduce_compressed_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                              silk_datatype_t type, silk_redop_t op,
                                              silk_wan_compression_t compression, silk_error_feedback_t* feedback,
                                              silk_work_t** work);

/* Every rank's recvbuf gets the root's sendbuf (read on the root only). In place: recvbuf == sendbuf. */
silk_result_t silk_broadcast(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                             silk_datatype_t type, int root);
silk_result_t silk_broadcast_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, int root, silk_work_t** work);

/* The root's recvbuf (written on the root only) gets the reduction. In place: recvbuf == sendbuf. */
silk_result_t silk_reduce(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                          silk_datatype_t type, silk_redop_t op, int root);
silk_result_t silk_reduce_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                silk_datatype_t type, silk_redop_t op, int root, silk_work_t** work);

/* recvbuf (size * sendcount) gets every rank's sendcount elements in rank order.
 * In place: sendbuf == recvbuf + rank * sendcount. */
silk_result_t silk_allgather(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t sendcount,
                             silk_datatype_t type);
silk_result_t silk_allgather_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t sendcount,
                                   silk_datatype_t type, silk_work_t** work);

/* sendbuf holds size blocks of recvcount; rank r's recvbuf gets block r of the
 * reduction. In place: recvbuf == sendbuf + rank * recvcount. */
silk_result_t silk_reduce_scatter(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t recvcount,
                                  silk_datatype_t type, silk_redop_t op);
silk_result_t silk_reduce_scatter_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t recvcount,
                                        silk_datatype_t type, silk_redop_t op, silk_work_t** work);

/* Block j (count elements) of rank r's sendbuf becomes block r of rank j's recvbuf. In place allowed. */
silk_result_t silk_alltoall(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                            silk_datatype_t type);
silk_result_t silk_alltoall_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                  silk_datatype_t type, silk_work_t** work);

/* Returns once every rank has entered the barrier. */
silk_result_t silk_barrier(silk_comm_t* comm);
silk_result_t silk_barrier_async(silk_comm_t* comm, silk_work_t** work);

/* Point-to-point (ncclSend/ncclRecv, with MPI's tag): the n-th send from a to b
 * with a tag matches b's n-th receive from a with that tag; count and type
 * must agree (else both fail, SILK_ERROR_MISMATCH). 0 <= tag <= SILK_TAG_UB. A send completes
 * once its bytes are on the network, a receive once they are in buf. Bad
 * arguments fail on the calling rank only (its peer's call then times out). */
#define SILK_TAG_UB 16777215 /* the largest tag (MPI_TAG_UB) */
silk_result_t silk_send(silk_comm_t* comm, const void* sendbuf, size_t count, silk_datatype_t type, int peer,
                        int tag);
silk_result_t silk_send_async(silk_comm_t* comm, const void* sendbuf, size_t count, silk_datatype_t type, int peer,
                              int tag, silk_work_t** work);
silk_result_t silk_recv(silk_comm_t* comm, void* recvbuf, size_t count, silk_datatype_t type, int peer, int tag);
silk_result_t silk_recv_async(silk_comm_t* comm, void* recvbuf, size_t count, silk_datatype_t type, int peer,
                              int tag, silk_work_t** work);

/* ncclGroupStart / ncclGroupEnd, per thread, nestable: calls between them are
 * issued at once and may overlap one another, so they must not depend on each
 * other's buffers (nor on earlier calls still running). A blocking call inside
 * a group returns at once (SILK_SUCCESS unless refused); silk_group_end waits
 * for all of them and returns the first error. _async calls in a group return
 * their work as usual. Every rank must still issue the same collectives in
 * the same order; a send and its receive may sit in one group (an exchange
 * with both neighbours cannot deadlock). */
silk_result_t silk_group_start(void);
silk_result_t silk_group_end(void);

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
