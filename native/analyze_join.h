/*
 * analyze_join.h: shared declarations of the native analysis engine
 * (analyze_join.c: the merge and the statistics; analyze_join_duckdb.c: DuckDB's
 * C API and the record readers; analyze_join_napi.c: the Node-API face and the
 * exact percentiles). See analyze_join.c for the design.
 */
#ifndef SVTRACE_ANALYZE_JOIN_H
#define SVTRACE_ANALYZE_JOIN_H
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

/* ---- the few DuckDB C API entry points used (stable C API, declared here) ---- */
typedef uint64_t idx_t;
typedef void *ddb_handle; /* duckdb_database, _connection, _prepared_statement, _pending_result, _data_chunk, _vector */
typedef struct {
  idx_t column_count, row_count, rows_changed;
  void *columns;
  char *error_message;
  void *internal_data;
} ddb_result; /* duckdb_result: passed by value to duckdb_fetch_chunk */

typedef struct {
  int loaded;
  int (*open)(const char *, ddb_handle *);
  void (*close)(ddb_handle *);
  int (*connect)(ddb_handle, ddb_handle *);
  void (*disconnect)(ddb_handle *);
  int (*query)(ddb_handle, const char *, ddb_result *);
  void (*destroy_result)(ddb_result *);
  const char *(*result_error)(ddb_result *);
  int (*prepare)(ddb_handle, const char *, ddb_handle *);
  const char *(*prepare_error)(ddb_handle);
  void (*destroy_prepare)(ddb_handle *);
  int (*pending_prepared_streaming)(ddb_handle, ddb_handle *);
  const char *(*pending_error)(ddb_handle);
  void (*destroy_pending)(ddb_handle *);
  int (*execute_pending)(ddb_handle, ddb_result *);
  ddb_handle (*fetch_chunk)(ddb_result);
  idx_t (*chunk_size)(ddb_handle);
  idx_t (*chunk_columns)(ddb_handle);
  ddb_handle (*chunk_vector)(ddb_handle, idx_t);
  void *(*vector_data)(ddb_handle);
  uint64_t *(*vector_validity)(ddb_handle);
  void (*destroy_chunk)(ddb_handle *);
  idx_t (*column_count)(ddb_result *);
  int (*column_type)(ddb_result *, idx_t);
} ddb_api;
extern ddb_api ddb;
enum { DDB_TYPE_INTEGER = 4, DDB_TYPE_BIGINT = 5, DDB_TYPE_UBIGINT = 9 };
int ddb_load(const char *path, char *err, size_t errcap);

/* fine buckets: the rule of src/analyze/histogram.ts */
#define NB_HALF 19000
#define NB (2 * NB_HALF + 1)
static const int64_t P10[20] = {1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
                                1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
                                100000000000000LL, 1000000000000000LL, 10000000000000000LL,
                                100000000000000000LL, 1000000000000000000LL, 0};

static inline int32_t bucket_pos(uint64_t x) {
  if (x < 100) return (int32_t)x;
  if (x < 1000) return 2000 + (int32_t)x;
  if (x < 10000) return 3000 + (int32_t)(x / 10);
  if (x < 100000) return 4000 + (int32_t)(x / 100);
  if (x < 1000000) return 5000 + (int32_t)(x / 1000);
  if (x < 10000000) return 6000 + (int32_t)(x / 10000);
  for (int d = 7; d <= 17; d++)
    if (x < (uint64_t)P10[d + 1]) return d * 1000 + (int32_t)(x / (uint64_t)P10[d - 2]);
  return 18000 + (int32_t)(x / (uint64_t)P10[16]); /* x < 10^19 always for int64 */
}
static inline int32_t bucket_of(int64_t v) {
  return v >= 0 ? bucket_pos((uint64_t)v) : -bucket_pos((uint64_t)0 - (uint64_t)v);
}
void bucket_range(int32_t b, int64_t *lo, int64_t *hi);

/* the engine */
#define ABSENT INT64_MIN
#define MAX_POINTS 64
#define SPILL_BLOCK 16384
#define SEC_PAGE 1024
#define MERGE_SLACK_NS 20000000LL /* a record may run this far ahead of another before we switch */

typedef struct {
  uint64_t seen, n, reordered;
  int64_t lok, hik, gmin, gmax;
  __int128 gsum, g2sum;
  double g2big; /* g² of |g| ≥ 2^40 */
  double maxj, sumj;
} point_acc;

typedef struct {
  uint64_t n, neg;
  int64_t min, max;
  __int128 sum, sumsq;
  double sumsq_big; /* v² of |v| ≥ 2^46, which could overflow sumsq */
  uint64_t *above;  /* per threshold */
  uint32_t *hist;   /* NB buckets, index bucket + NB_HALF */
  int32_t *spill;   /* latencies not yet written (a block of SPILL_BLOCK) */
  int spill_len;
  uint16_t *spill16; /* the same for 0 <= v < 65536, two bytes each */
  int spill16_len;
} seg_acc;

typedef struct {
  int64_t cur_len, cur_start, last_k, best_len, best_start;
} late_acc;

typedef struct {
  int64_t v, sec, smp;
  int32_t stream;
  int64_t *t; /* npoints */
} worst_row;

typedef struct {
  int64_t lo;
  int started;
  int64_t *slots; /* W * (1 + npoints): k, then t per point */
  int64_t prev_k;
  int64_t *prev_t;
} ring;

typedef struct {
  ddb_handle con;
  ddb_result res;
  int has_res;
  ddb_handle chunk;
  const uint64_t *key;
  const int32_t *smp;
  const int64_t *t, *iter;
  const uint64_t *valid[4];
  idx_t n, pos;
  int done;
  /* A producer thread fetches chunks (DuckDB decodes in it) while the merge runs: a queue of QCAP. */
  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  ddb_handle queue[16];
  int qhead, qlen, eof, stop;
  char error[512];
} reader;
#define QCAP 16

typedef struct {
  /* configuration */
  char *lib_path, *spill_dir;
  char **setup_sql;
  int n_setup;
  char **query_sql;
  int n_query;
  int mode_iter;
  int64_t base_ns, sec_lo, sec_hi;
  int ns, np, nseg, nthr, worst_n, window_seconds, threads;
  char memory_limit[32];
  int32_t *rate;
  uint64_t *keys; /* hash(sv_id, point) of code = stream * np + point */
  struct kslot {
    uint64_t key;
    int32_t code;
  } *ktab;
  uint32_t kmask;
  int32_t *seg_from, *seg_to;
  int64_t *thr_ns;
  int64_t *late_ns; /* per seg; INT64_MIN: none */
  /* state */
  ring *rings;
  uint32_t *wmask; /* per stream */
  point_acc *pts;  /* ns * np */
  uint64_t *samples;
  seg_acc *segs; /* nseg * (ns + 1): stream ns = all streams (filled at the end) */
  uint32_t *hist_block;
  late_acc *late;
  worst_row *worst; /* nseg * worst_n */
  int *worst_count;
  int64_t ***sec_pages; /* [seg][page] -> 2*SEC_PAGE int64: max, count */
  int64_t n_pages;
  int *spill_fd;
  char **spill_path;
  int64_t **big;  /* per seg: (stream, v) pairs whose |v| ≥ 2^46 */
  int64_t *big_len, *big_cap;
  uint64_t rows_read, rows_dropped;
  /* outcome */
  int failed;
  char err_code[32];
  char err[1024];
  /* N-API */
  napi_async_work work;
  napi_deferred deferred;
  double elapsed_read_ms;
} aj_ctx;

void fail(aj_ctx *c, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
/* analyze_join_duckdb.c */
int run_sql(aj_ctx *c, ddb_handle con, const char *sql);
int reader_open(aj_ctx *c, ddb_handle db, reader *rd, const char *sql);
int reader_next_chunk(aj_ctx *c, reader *rd);
void reader_close(reader *rd);
/* analyze_join.c */
void aj_execute(napi_env env, void *data);
void aj_free(aj_ctx *c);
#endif
