/*
 * analyze_join.c: the analysis join and its statistics in C, the fast engine of
 * `svtrace report` (src/analyze/native.ts drives it; src/analyze/join.ts and
 * stats.ts are the DuckDB reference it must agree with, figure for figure).
 *
 * Rows come from DuckDB itself: one streaming query per record (Parquet or CSV
 * segments, as recordSql reads them) returning (code, smp_cnt, t_ns[, iter])
 * with code = stream * points + point. DuckDB's C API is loaded at run time
 * from the libduckdb.so that @duckdb/node-bindings ships (the library the
 * Node binding itself runs on); without it the engine is unavailable and the
 * reference runs.
 *
 * The join is a merge: the records' rows are interleaved by time, each row's
 * sample number k = S * rate + smpCnt (S: its second, from its own time or
 * its iter) lands in a ring of W samples per stream, keeping the earliest
 * time per point; a sample leaves the ring, complete, when a row W samples
 * later arrives. Rows are in time order in a record up to small disorder; a
 * row older than the ring stops the engine (AJ_DISORDER) and the caller runs
 * the reference instead. Memory: the rings, the fine histograms and a few
 * counters; nothing grows with the run but the per-second maxima.
 *
 * Every sample leaving the ring updates, per point, coverage and pacing, and
 * per segment (to − from), count/min/max/sums, thresholds, the fine
 * histogram (the buckets of histogram.ts), the per-second max, the worst
 * samples and the longest run of late samples; its latency is appended to a
 * spill file. Exact percentiles are a second pass over the spill files that
 * counts only the values of the buckets holding the ranks (ajPercentiles).
 *
 * JS: ajRun(opts) -> Promise<handle>; ajResult(handle) -> object;
 *     ajPercentiles(handle, Float64Array [seg, stream, bucket, rank]*) -> Float64Array;
 *     ajClose(handle) (removes the spill files).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the few DuckDB C API entry points used (stable C API, declared here) ---- */
typedef uint64_t idx_t;
typedef void *ddb_handle; /* duckdb_database, _connection, _prepared_statement, _pending_result, _data_chunk, _vector */
typedef struct {
  idx_t column_count, row_count, rows_changed;
  void *columns;
  char *error_message;
  void *internal_data;
} ddb_result; /* duckdb_result: passed by value to duckdb_fetch_chunk */

static struct {
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
} ddb;

enum { DDB_TYPE_INTEGER = 4, DDB_TYPE_BIGINT = 5, DDB_TYPE_UBIGINT = 9 };

static pthread_mutex_t ddb_lock = PTHREAD_MUTEX_INITIALIZER;

static int ddb_load_locked(const char *path, char *err, size_t errcap);
static int ddb_load(const char *path, char *err, size_t errcap) {
  pthread_mutex_lock(&ddb_lock);
  int r = ddb_load_locked(path, err, errcap);
  pthread_mutex_unlock(&ddb_lock);
  return r;
}

static int ddb_load_locked(const char *path, char *err, size_t errcap) {
  if (ddb.loaded) return 0;
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errcap, "cannot load %s: %s", path, dlerror());
    return -1;
  }
  struct {
    const char *name;
    void **slot;
  } syms[] = {
      {"duckdb_open", (void **)&ddb.open},
      {"duckdb_close", (void **)&ddb.close},
      {"duckdb_connect", (void **)&ddb.connect},
      {"duckdb_disconnect", (void **)&ddb.disconnect},
      {"duckdb_query", (void **)&ddb.query},
      {"duckdb_destroy_result", (void **)&ddb.destroy_result},
      {"duckdb_result_error", (void **)&ddb.result_error},
      {"duckdb_prepare", (void **)&ddb.prepare},
      {"duckdb_prepare_error", (void **)&ddb.prepare_error},
      {"duckdb_destroy_prepare", (void **)&ddb.destroy_prepare},
      {"duckdb_pending_prepared_streaming", (void **)&ddb.pending_prepared_streaming},
      {"duckdb_pending_error", (void **)&ddb.pending_error},
      {"duckdb_destroy_pending", (void **)&ddb.destroy_pending},
      {"duckdb_execute_pending", (void **)&ddb.execute_pending},
      {"duckdb_fetch_chunk", (void **)&ddb.fetch_chunk},
      {"duckdb_data_chunk_get_size", (void **)&ddb.chunk_size},
      {"duckdb_data_chunk_get_column_count", (void **)&ddb.chunk_columns},
      {"duckdb_data_chunk_get_vector", (void **)&ddb.chunk_vector},
      {"duckdb_vector_get_data", (void **)&ddb.vector_data},
      {"duckdb_vector_get_validity", (void **)&ddb.vector_validity},
      {"duckdb_destroy_data_chunk", (void **)&ddb.destroy_chunk},
      {"duckdb_column_count", (void **)&ddb.column_count},
      {"duckdb_column_type", (void **)&ddb.column_type},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(lib, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(err, errcap, "%s has no %s", path, syms[i].name);
      return -1;
    }
  }
  ddb.loaded = 1;
  return 0;
}

/* ---- fine buckets: the rule of src/analyze/histogram.ts ---- */
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
/* The values [lo, hi] of bucket b (signed). */
static void bucket_range(int32_t b, int64_t *lo, int64_t *hi) {
  int32_t a = b < 0 ? -b : b;
  int64_t l, h;
  if (a < 100) {
    l = h = a;
  } else {
    int d = a / 1000, m = a - d * 1000;
    l = (int64_t)m * P10[d - 2];
    h = l + P10[d - 2] - 1;
  }
  if (b < 0) {
    *lo = -h;
    *hi = -l;
  } else {
    *lo = l;
    *hi = h;
  }
}

/* ---- the engine ---- */
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

static void fail(aj_ctx *c, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void fail(aj_ctx *c, const char *code, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = 1;
  snprintf(c->err_code, sizeof c->err_code, "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
}

static inline int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Writes one block: header {stream, count, 4 or 2 bytes per value}, then the values. */
static void spill_flush(aj_ctx *c, int i, int s, int narrow) {
  seg_acc *a = &c->segs[(size_t)i * (c->ns + 1) + s];
  int n = narrow ? a->spill16_len : a->spill_len;
  if (n == 0) return;
  int32_t *hdr = narrow ? (int32_t *)a->spill16 - 3 : a->spill - 3;
  hdr[0] = s;
  hdr[1] = n;
  hdr[2] = narrow ? 2 : 4;
  size_t bytes = 3 * sizeof(int32_t) + (size_t)n * (size_t)hdr[2];
  const char *p = (const char *)hdr;
  while (bytes > 0 && !c->failed) {
    ssize_t w = write(c->spill_fd[i], p, bytes);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(c, "ANALYZE_TMP_FAILED", "cannot write %s: %s", c->spill_path[i], strerror(errno));
      break;
    }
    p += w;
    bytes -= (size_t)w;
  }
  if (narrow)
    a->spill16_len = 0;
  else
    a->spill_len = 0;
}

/* Worst order: v desc, then stream, sec, smpCnt ascending (the reference's ORDER BY). */
static inline int worse_than(int64_t v, int32_t s, int64_t sec, int64_t smp, const worst_row *w) {
  if (v != w->v) return v > w->v;
  if (s != w->stream) return s < w->stream;
  if (sec != w->sec) return sec < w->sec;
  return smp < w->smp;
}

static void seg_sample(aj_ctx *c, int i, int s, int64_t sec, int64_t smp, int64_t k, int64_t v, const int64_t *t) {
  seg_acc *a = &c->segs[(size_t)i * (c->ns + 1) + s];
  if (a->n == 0 || v < a->min) a->min = v;
  if (a->n == 0 || v > a->max) a->max = v;
  a->n++;
  a->sum += v;
  if (v > -(1LL << 46) && v < (1LL << 46))
    a->sumsq += (__int128)v * v;
  else
    a->sumsq_big += (double)v * (double)v;
  if (v < 0) a->neg++;
  for (int j = 0; j < c->nthr && v > c->thr_ns[j]; j++) a->above[j]++;
  a->hist[bucket_of(v) + NB_HALF]++;
  /* per second */
  int64_t rel = sec - c->sec_lo;
  if (rel >= 0 && rel < c->n_pages * SEC_PAGE) {
    int64_t **pages = c->sec_pages[i];
    int64_t *pg = pages[rel / SEC_PAGE];
    if (!pg) {
      pg = pages[rel / SEC_PAGE] = calloc(2 * SEC_PAGE, sizeof(int64_t));
      if (!pg) {
        fail(c, "ANALYZE_NATIVE_FAILED", "out of memory");
        return;
      }
    }
    int64_t *e = pg + 2 * (rel % SEC_PAGE);
    if (e[1] == 0 || v > e[0]) e[0] = v;
    e[1]++;
  }
  /* worst */
  if (c->worst_n > 0) {
    worst_row *w = c->worst + (size_t)i * c->worst_n;
    int n = c->worst_count[i];
    if (n < c->worst_n || worse_than(v, s, sec, smp, &w[n - 1])) {
      int pos = n < c->worst_n ? n : n - 1;
      int64_t *keep = w[pos].t; /* the slot that falls off (or the free one) is reused */
      while (pos > 0 && worse_than(v, s, sec, smp, &w[pos - 1])) {
        w[pos] = w[pos - 1];
        pos--;
      }
      w[pos].v = v;
      w[pos].stream = s;
      w[pos].sec = sec;
      w[pos].smp = smp;
      w[pos].t = keep;
      memcpy(keep, t, sizeof(int64_t) * c->np);
      if (n < c->worst_n) c->worst_count[i] = n + 1;
    }
  }
  /* longest run of late samples */
  if (c->late_ns[i] != INT64_MIN && v > c->late_ns[i]) {
    late_acc *L = &c->late[(size_t)i * c->ns + s];
    if (L->cur_len > 0 && k == L->last_k + 1) {
      L->cur_len++;
    } else {
      L->cur_len = 1;
      L->cur_start = k;
    }
    L->last_k = k;
    if (L->cur_len > L->best_len) {
      L->best_len = L->cur_len;
      L->best_start = L->cur_start;
    }
  }
  /* spill for the exact percentiles: blocks of one stream's int32 latencies */
  if (v >= 0 && v < 65536) {
    a->spill16[a->spill16_len++] = (uint16_t)v;
    if (a->spill16_len == SPILL_BLOCK) spill_flush(c, i, s, 1);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    a->spill[a->spill_len++] = (int32_t)v;
    if (a->spill_len == SPILL_BLOCK) spill_flush(c, i, s, 0);
  } else {
    if (c->big_len[i] + 2 > c->big_cap[i]) {
      int64_t cap = c->big_cap[i] ? c->big_cap[i] * 2 : 64;
      int64_t *nb = realloc(c->big[i], (size_t)cap * sizeof(int64_t));
      if (!nb) {
        fail(c, "ANALYZE_NATIVE_FAILED", "out of memory");
        return;
      }
      c->big[i] = nb;
      c->big_cap[i] = cap;
    }
    c->big[i][c->big_len[i]++] = s;
    c->big[i][c->big_len[i]++] = v;
  }
}

/* A complete sample leaves the ring (per stream in ascending k). */
static void emit(aj_ctx *c, int s, int64_t k, const int64_t *t) {
  ring *R = &c->rings[s];
  int64_t r = c->rate[s];
  int64_t sec = floordiv(k, r), smp = k - sec * r;
  c->samples[s]++;
  int consecutive = R->prev_k == k - 1;
  double period = 1e9 / (double)r;
  for (int p = 0; p < c->np; p++) {
    if (t[p] == ABSENT) continue;
    point_acc *a = &c->pts[(size_t)s * c->np + p];
    if (a->seen == 0) a->lok = k;
    a->hik = k;
    a->seen++;
    if (consecutive && R->prev_t[p] != ABSENT) {
      int64_t g = t[p] - R->prev_t[p];
      if (a->n == 0 || g < a->gmin) a->gmin = g;
      if (a->n == 0 || g > a->gmax) a->gmax = g;
      a->n++;
      a->gsum += g;
      if (g > -(1LL << 40) && g < (1LL << 40))
        a->g2sum += (__int128)g * g;
      else
        a->g2big += (double)g * (double)g;
      double j = fabs((double)g - period);
      if (j > a->maxj) a->maxj = j;
      a->sumj += j;
      if (g < 0) a->reordered++;
    }
  }
  R->prev_k = k;
  memcpy(R->prev_t, t, sizeof(int64_t) * c->np);
  for (int i = 0; i < c->nseg; i++) {
    int64_t a = t[c->seg_from[i]], b = t[c->seg_to[i]];
    if (a == ABSENT || b == ABSENT) continue;
    seg_sample(c, i, s, sec, smp, k, b - a, t);
  }
}

/* Emits every sample of stream s below k = upto (at most the whole ring). */
static void flush_until(aj_ctx *c, int s, int64_t upto) {
  ring *R = &c->rings[s];
  int64_t W = (int64_t)c->wmask[s] + 1, stride = 1 + c->np;
  int64_t end = upto - R->lo > W ? R->lo + W : upto;
  for (int64_t kk = R->lo; kk < end; kk++) {
    int64_t *slot = R->slots + (kk & c->wmask[s]) * stride;
    if (slot[0] != kk) continue;
    emit(c, s, kk, slot + 1);
    slot[0] = ABSENT;
  }
  R->lo = upto;
}

static inline void place(aj_ctx *c, int s, int p, int64_t k, int64_t t) {
  ring *R = &c->rings[s];
  int64_t W = (int64_t)c->wmask[s] + 1;
  if (!R->started) {
    R->started = 1;
    R->lo = k - W / 2;
  }
  if (k < R->lo) {
    fail(c, "AJ_DISORDER", "a row of sample %lld of stream %d came after rows of samples %lld or more later (%.1f s)", (long long)k, s,
         (long long)(R->lo - k), (double)(R->lo - k) / (double)c->rate[s]);
    return;
  }
  if (k >= R->lo + W) flush_until(c, s, k - W + 1);
  int64_t *slot = R->slots + (k & c->wmask[s]) * (1 + c->np);
  if (slot[0] != k) {
    slot[0] = k;
    for (int q = 0; q < c->np; q++) slot[1 + q] = ABSENT;
  }
  if (slot[1 + p] == ABSENT || t < slot[1 + p]) slot[1 + p] = t;
}

#define VALID(m, i) (!(m) || (((m)[(i) >> 6] >> ((i) & 63)) & 1))

static inline void process_row(aj_ctx *c, const reader *rd, idx_t i) {
  if (!VALID(rd->valid[0], i) || !VALID(rd->valid[1], i) || !VALID(rd->valid[2], i) || (c->mode_iter && !VALID(rd->valid[3], i))) {
    c->rows_dropped++;
    return;
  }
  uint64_t key = rd->key[i];
  uint32_t h = (uint32_t)(key ^ (key >> 32)) & c->kmask;
  while (c->ktab[h].code >= 0 && c->ktab[h].key != key) h = (h + 1) & c->kmask;
  int32_t code = c->ktab[h].code;
  if (code < 0) {
    fail(c, "AJ_BAD_ROW", "a row's (svID, point) is not among those discovered");
    return;
  }
  int s = code / c->np, p = code - s * c->np;
  int64_t r = c->rate[s], smp = rd->smp[i], t = rd->t[i], sec;
  if (smp < 0 || smp >= r) {
    fail(c, "AJ_BAD_ROW", "smpCnt %lld outside 0..%lld", (long long)smp, (long long)r - 1);
    return;
  }
  if (c->mode_iter) {
    sec = rd->iter[i];
    if (sec > (1LL << 40) || sec < -(1LL << 40)) {
      fail(c, "AJ_UNAVAILABLE", "iter %lld is beyond the native engine", (long long)sec);
      return;
    }
  } else {
    /* S = floor(((t - base) * r - smp * 1e9 + 0.5e9 * r) / (1e9 * r)), without overflow */
    int64_t rel = t - c->base_ns;
    int64_t s0 = floordiv(rel, 1000000000LL), rem = rel - s0 * 1000000000LL;
    int64_t x = rem * r - smp * 1000000000LL + 500000000LL * r, d = 1000000000LL * r;
    sec = s0 + (x < 0 ? -1 : x >= d ? 1 : 0);
  }
  if (sec < c->sec_lo || sec >= c->sec_hi) {
    c->rows_dropped++;
    return;
  }
  place(c, s, p, sec * r + smp, t);
}

static void *reader_produce(void *arg) {
  reader *rd = arg;
  for (;;) {
    pthread_mutex_lock(&rd->mu);
    while (rd->qlen == QCAP && !rd->stop) pthread_cond_wait(&rd->not_full, &rd->mu);
    int stop = rd->stop;
    pthread_mutex_unlock(&rd->mu);
    if (stop) break;
    ddb_handle chunk = ddb.fetch_chunk(rd->res);
    pthread_mutex_lock(&rd->mu);
    if (!chunk) {
      const char *e = ddb.result_error(&rd->res);
      if (e && *e) snprintf(rd->error, sizeof rd->error, "%s", e);
      rd->eof = 1;
      pthread_cond_signal(&rd->not_empty);
      pthread_mutex_unlock(&rd->mu);
      break;
    }
    rd->queue[(rd->qhead + rd->qlen) % QCAP] = chunk;
    rd->qlen++;
    pthread_cond_signal(&rd->not_empty);
    pthread_mutex_unlock(&rd->mu);
  }
  return NULL;
}

static int reader_next_chunk(aj_ctx *c, reader *rd) {
  for (;;) {
    if (rd->chunk) ddb.destroy_chunk(&rd->chunk);
    rd->chunk = NULL;
    pthread_mutex_lock(&rd->mu);
    while (rd->qlen == 0 && !rd->eof) pthread_cond_wait(&rd->not_empty, &rd->mu);
    if (rd->qlen > 0) {
      rd->chunk = rd->queue[rd->qhead];
      rd->qhead = (rd->qhead + 1) % QCAP;
      rd->qlen--;
      pthread_cond_signal(&rd->not_full);
    }
    pthread_mutex_unlock(&rd->mu);
    if (!rd->chunk) {
      if (rd->error[0]) fail(c, "ANALYZE_QUERY_FAILED", "reading a record: %s", rd->error);
      rd->done = 1;
      return 0;
    }
    idx_t n = ddb.chunk_size(rd->chunk);
    if (n == 0) continue;
    idx_t cols = ddb.chunk_columns(rd->chunk);
    if (cols < (idx_t)(c->mode_iter ? 4 : 3)) {
      fail(c, "AJ_BAD_QUERY", "a chunk has %llu columns", (unsigned long long)cols);
      rd->done = 1;
      return 0;
    }
    ddb_handle v[4] = {NULL, NULL, NULL, NULL};
    for (idx_t j = 0; j < cols && j < 4; j++) v[j] = ddb.chunk_vector(rd->chunk, j);
    rd->key = ddb.vector_data(v[0]);
    rd->smp = ddb.vector_data(v[1]);
    rd->t = ddb.vector_data(v[2]);
    rd->iter = cols > 3 ? ddb.vector_data(v[3]) : NULL;
    for (idx_t j = 0; j < 4; j++) rd->valid[j] = j < cols ? ddb.vector_validity(v[j]) : NULL;
    rd->n = n;
    rd->pos = 0;
    c->rows_read += n;
    return 1;
  }
}

static int run_sql(aj_ctx *c, ddb_handle con, const char *sql) {
  ddb_result res;
  memset(&res, 0, sizeof res);
  int st = ddb.query(con, sql, &res);
  if (st != 0) fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.result_error(&res) ? ddb.result_error(&res) : "query failed");
  ddb.destroy_result(&res);
  return st == 0 ? 0 : -1;
}

static int reader_open(aj_ctx *c, ddb_handle db, reader *rd, const char *sql) {
  if (ddb.connect(db, &rd->con) != 0) {
    fail(c, "ANALYZE_DB_FAILED", "cannot connect to DuckDB");
    return -1;
  }
  ddb_handle prep = NULL, pend = NULL;
  if (ddb.prepare(rd->con, sql, &prep) != 0) {
    fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.prepare_error(prep) ? ddb.prepare_error(prep) : "prepare failed");
    ddb.destroy_prepare(&prep);
    return -1;
  }
  if (ddb.pending_prepared_streaming(prep, &pend) != 0) {
    fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.pending_error(pend) ? ddb.pending_error(pend) : "pending failed");
    ddb.destroy_pending(&pend);
    ddb.destroy_prepare(&prep);
    return -1;
  }
  memset(&rd->res, 0, sizeof rd->res);
  int st = ddb.execute_pending(pend, &rd->res);
  rd->has_res = 1;
  ddb.destroy_pending(&pend);
  ddb.destroy_prepare(&prep);
  if (st != 0) {
    fail(c, "ANALYZE_QUERY_FAILED", "%s", ddb.result_error(&rd->res) ? ddb.result_error(&rd->res) : "execute failed");
    return -1;
  }
  idx_t cols = ddb.column_count(&rd->res);
  int want[4] = {DDB_TYPE_UBIGINT, DDB_TYPE_INTEGER, DDB_TYPE_BIGINT, DDB_TYPE_BIGINT};
  if (cols != (idx_t)(c->mode_iter ? 4 : 3)) {
    fail(c, "AJ_BAD_QUERY", "the record query returns %llu columns", (unsigned long long)cols);
    return -1;
  }
  for (idx_t j = 0; j < cols; j++) {
    if (ddb.column_type(&rd->res, j) != want[j]) {
      fail(c, "AJ_BAD_QUERY", "column %llu of the record query has type %d", (unsigned long long)j, ddb.column_type(&rd->res, j));
      return -1;
    }
  }
  pthread_mutex_init(&rd->mu, NULL);
  pthread_cond_init(&rd->not_empty, NULL);
  pthread_cond_init(&rd->not_full, NULL);
  if (pthread_create(&rd->thread, NULL, reader_produce, rd) != 0) {
    fail(c, "ANALYZE_NATIVE_FAILED", "cannot start a reader thread");
    return -1;
  }
  rd->thread_started = 1;
  reader_next_chunk(c, rd);
  return 0;
}

static void reader_close(reader *rd) {
  if (rd->thread_started) {
    pthread_mutex_lock(&rd->mu);
    rd->stop = 1;
    pthread_cond_signal(&rd->not_full);
    pthread_mutex_unlock(&rd->mu);
    pthread_join(rd->thread, NULL);
    while (rd->qlen > 0) {
      ddb.destroy_chunk(&rd->queue[rd->qhead]);
      rd->qhead = (rd->qhead + 1) % QCAP;
      rd->qlen--;
    }
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->not_empty);
    pthread_cond_destroy(&rd->not_full);
  }
  if (rd->chunk) ddb.destroy_chunk(&rd->chunk);
  if (rd->has_res) ddb.destroy_result(&rd->res);
  if (rd->con) ddb.disconnect(&rd->con);
}

static int alloc_state(aj_ctx *c) {
  int ns = c->ns, np = c->np;
  c->rings = calloc(ns, sizeof(ring));
  c->wmask = calloc(ns, sizeof(uint32_t));
  c->pts = calloc((size_t)ns * np, sizeof(point_acc));
  c->samples = calloc(ns, sizeof(uint64_t));
  c->segs = calloc((size_t)c->nseg * (ns + 1), sizeof(seg_acc));
  c->late = calloc((size_t)c->nseg * ns, sizeof(late_acc));
  c->worst = calloc((size_t)c->nseg * (c->worst_n > 0 ? c->worst_n : 1), sizeof(worst_row));
  c->worst_count = calloc(c->nseg + 1, sizeof(int));
  c->sec_pages = calloc(c->nseg + 1, sizeof(int64_t **));
  c->spill_fd = calloc(c->nseg + 1, sizeof(int));
  for (int i = 0; c->spill_fd && i <= c->nseg; i++) c->spill_fd[i] = -1;
  c->spill_path = calloc(c->nseg + 1, sizeof(char *));
  c->big = calloc(c->nseg + 1, sizeof(int64_t *));
  c->big_len = calloc(c->nseg + 1, sizeof(int64_t));
  c->big_cap = calloc(c->nseg + 1, sizeof(int64_t));
  if (!c->rings || !c->wmask || !c->pts || !c->samples || !c->segs || !c->late || !c->worst || !c->worst_count ||
      !c->sec_pages || !c->spill_fd || !c->spill_path || !c->big || !c->big_len || !c->big_cap)
    return -1;
  uint32_t kn = 16;
  while (kn < 4u * (uint32_t)(ns * np)) kn <<= 1;
  c->ktab = malloc(kn * sizeof *c->ktab);
  if (!c->ktab) return -1;
  c->kmask = kn - 1;
  for (uint32_t j = 0; j < kn; j++) c->ktab[j].code = -1;
  for (int code = 0; code < ns * np; code++) {
    uint64_t key = c->keys[code];
    uint32_t h = (uint32_t)(key ^ (key >> 32)) & c->kmask;
    while (c->ktab[h].code >= 0) {
      if (c->ktab[h].key == key) return -2; /* two (svID, point) pairs with one hash */
      h = (h + 1) & c->kmask;
    }
    c->ktab[h].key = key;
    c->ktab[h].code = code;
  }
  for (int s = 0; s < ns; s++) {
    uint64_t want = (uint64_t)c->window_seconds * (uint64_t)c->rate[s], w = 1024;
    while (w < want) w <<= 1;
    c->wmask[s] = (uint32_t)(w - 1);
    c->rings[s].slots = malloc(w * (1 + np) * sizeof(int64_t));
    c->rings[s].prev_t = malloc(np * sizeof(int64_t));
    if (!c->rings[s].slots || !c->rings[s].prev_t) return -1;
    for (uint64_t j = 0; j < w; j++) c->rings[s].slots[j * (1 + np)] = ABSENT;
    c->rings[s].prev_k = ABSENT;
  }
  /* One block for every histogram, each staggered by 272 bytes: page-aligned arrays would put their busy
   * buckets in the same cache sets. */
  size_t nh = (size_t)c->nseg * (ns + 1), hstride = NB + 68;
  c->hist_block = calloc(nh * hstride + 1, sizeof(uint32_t));
  if (!c->hist_block) return -1;
  for (size_t j = 0; j < nh; j++) {
    c->segs[j].above = calloc(c->nthr + 1, sizeof(uint64_t));
    c->segs[j].hist = c->hist_block + j * hstride;
    if (!c->segs[j].above) return -1;
    if (j % (ns + 1) != (size_t)ns) {
      int32_t *b = malloc((SPILL_BLOCK + 3) * sizeof(int32_t)), *b16 = malloc(SPILL_BLOCK * sizeof(uint16_t) + 3 * sizeof(int32_t));
      if (!b || !b16) return -1;
      c->segs[j].spill = b + 3;
      c->segs[j].spill16 = (uint16_t *)(b16 + 3);
    }
  }
  for (int i = 0; i < c->nseg; i++) {
    for (int w = 0; w < c->worst_n; w++) {
      c->worst[(size_t)i * c->worst_n + w].t = calloc(np, sizeof(int64_t));
      if (!c->worst[(size_t)i * c->worst_n + w].t) return -1;
    }
  }
  c->n_pages = (c->sec_hi - c->sec_lo + SEC_PAGE - 1) / SEC_PAGE;
  for (int i = 0; i < c->nseg; i++) {
    c->sec_pages[i] = calloc(c->n_pages + 1, sizeof(int64_t *));
    c->spill_fd[i] = -1;
    if (!c->sec_pages[i]) return -1;
  }
  return 0;
}

static void execute(napi_env env, void *data) {
  (void)env;
  aj_ctx *c = data;
  char err[512];
  if (ddb_load(c->lib_path, err, sizeof err) != 0) {
    fail(c, "AJ_UNAVAILABLE", "%s", err);
    return;
  }
  if (c->np > MAX_POINTS || c->ns < 1 || c->np < 1 || c->ns > 65535 || c->ns * c->np > INT32_MAX / 2) {
    fail(c, "AJ_UNAVAILABLE", "%d streams and %d points are beyond the native engine", c->ns, c->np);
    return;
  }
  int st = alloc_state(c);
  if (st == -2) {
    fail(c, "AJ_UNAVAILABLE", "two (svID, point) pairs share a hash");
    return;
  }
  if (st != 0) {
    fail(c, "ANALYZE_NATIVE_FAILED", "out of memory");
    return;
  }
  for (int i = 0; i < c->nseg; i++) {
    size_t len = strlen(c->spill_dir) + 32;
    c->spill_path[i] = malloc(len);
    snprintf(c->spill_path[i], len, "%s/latency-%d.bin", c->spill_dir, i);
    c->spill_fd[i] = open(c->spill_path[i], O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    if (c->spill_fd[i] < 0) {
      fail(c, "ANALYZE_TMP_FAILED", "cannot create %s: %s", c->spill_path[i], strerror(errno));
      return;
    }
  }
  ddb_handle db = NULL, con = NULL;
  if (ddb.open(NULL, &db) != 0) {
    fail(c, "ANALYZE_DB_FAILED", "cannot open an in-memory DuckDB");
    return;
  }
  reader *rds = calloc(c->n_query + 1, sizeof(reader));
  if (!rds || ddb.connect(db, &con) != 0) {
    fail(c, "ANALYZE_DB_FAILED", "cannot connect to DuckDB");
    goto out;
  }
  char set[96];
  snprintf(set, sizeof set, "SET threads = %d", c->threads);
  if (run_sql(c, con, set) != 0) goto out;
  snprintf(set, sizeof set, "SET memory_limit = '%s'", c->memory_limit);
  if (run_sql(c, con, set) != 0) goto out;
  for (int i = 0; i < c->n_setup; i++)
    if (run_sql(c, con, c->setup_sql[i]) != 0) goto out;
  for (int i = 0; i < c->n_query; i++)
    if (reader_open(c, db, &rds[i], c->query_sql[i]) != 0) goto out;

  /* The merge: rows of the record furthest behind in time, until it passes the next one. */
  while (!c->failed) {
    reader *best = NULL;
    int64_t best_t = 0, second_t = INT64_MAX;
    for (int i = 0; i < c->n_query; i++) {
      reader *rd = &rds[i];
      if (rd->done) continue;
      int64_t h = rd->t[rd->pos];
      if (!best || h < best_t) {
        if (best) second_t = best_t;
        best = rd;
        best_t = h;
      } else if (h < second_t) {
        second_t = h;
      }
    }
    if (!best) break;
    int64_t limit = second_t > INT64_MAX - MERGE_SLACK_NS ? INT64_MAX : second_t + MERGE_SLACK_NS;
    int moved = 0;
    while (!c->failed) {
      idx_t i = best->pos, n = best->n;
      const int64_t *t = best->t;
      while (i < n && (t[i] <= limit || !moved)) {
        process_row(c, best, i);
        i++;
        moved = 1;
      }
      best->pos = i;
      if (i < n) break;
      if (!reader_next_chunk(c, best)) break;
    }
  }
  for (int s = 0; s < c->ns && !c->failed; s++)
    if (c->rings[s].started) flush_until(c, s, c->rings[s].lo + (int64_t)c->wmask[s] + 1);
  for (int i = 0; i < c->nseg && !c->failed; i++)
    for (int s = 0; s < c->ns; s++) {
      spill_flush(c, i, s, 0);
      spill_flush(c, i, s, 1);
    }
  /* all streams: the sum of every stream's accumulators */
  for (int i = 0; i < c->nseg && !c->failed; i++) {
    seg_acc *all = &c->segs[(size_t)i * (c->ns + 1) + c->ns];
    for (int s = 0; s < c->ns; s++) {
      seg_acc *a = &c->segs[(size_t)i * (c->ns + 1) + s];
      if (a->n == 0) continue;
      if (all->n == 0 || a->min < all->min) all->min = a->min;
      if (all->n == 0 || a->max > all->max) all->max = a->max;
      all->n += a->n;
      all->neg += a->neg;
      all->sum += a->sum;
      all->sumsq += a->sumsq;
      all->sumsq_big += a->sumsq_big;
      for (int j = 0; j < c->nthr; j++) all->above[j] += a->above[j];
      for (int b = 0; b < NB; b++) all->hist[b] += a->hist[b];
    }
  }
out:
  for (int i = 0; i < c->n_query && rds; i++) reader_close(&rds[i]);
  free(rds);
  if (con) ddb.disconnect(&con);
  ddb.close(&db);
}

/* ---- N-API ---- */
static void ctx_free(aj_ctx *c) {
  if (!c) return;
  for (int i = 0; i < c->nseg; i++) {
    if (c->spill_fd && c->spill_fd[i] >= 0) close(c->spill_fd[i]);
    if (c->spill_path && c->spill_path[i]) {
      unlink(c->spill_path[i]);
      free(c->spill_path[i]);
    }
    if (c->big) free(c->big[i]);
    if (c->sec_pages && c->sec_pages[i]) {
      for (int64_t p = 0; p < c->n_pages; p++) free(c->sec_pages[i][p]);
      free(c->sec_pages[i]);
    }
    for (int w = 0; c->worst && w < c->worst_n; w++) free(c->worst[(size_t)i * c->worst_n + w].t);
  }
  if (c->segs)
    for (size_t j = 0; j < (size_t)c->nseg * (c->ns + 1); j++) {
      free(c->segs[j].above);
      if (c->segs[j].spill) free(c->segs[j].spill - 3);
      if (c->segs[j].spill16) free((int32_t *)c->segs[j].spill16 - 3);
    }
  if (c->rings)
    for (int s = 0; s < c->ns; s++) {
      free(c->rings[s].slots);
      free(c->rings[s].prev_t);
    }
  for (int i = 0; i < c->n_setup; i++) free(c->setup_sql[i]);
  for (int i = 0; i < c->n_query; i++) free(c->query_sql[i]);
  free(c->setup_sql);
  free(c->query_sql);
  free(c->lib_path);
  free(c->spill_dir);
  free(c->rate);
  free(c->keys);
  free(c->ktab);
  free(c->seg_from);
  free(c->seg_to);
  free(c->thr_ns);
  free(c->late_ns);
  free(c->rings);
  free(c->wmask);
  free(c->pts);
  free(c->samples);
  free(c->segs);
  free(c->hist_block);
  free(c->late);
  free(c->worst);
  free(c->worst_count);
  free(c->sec_pages);
  free(c->spill_fd);
  free(c->spill_path);
  free(c->big);
  free(c->big_len);
  free(c->big_cap);
  free(c);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ctx_free(data);
}

static napi_value throw_err(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value make_error(napi_env env, const char *code, const char *msg) {
  napi_value m, cd, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &cd);
  napi_create_error(env, cd, m, &e);
  napi_set_named_property(env, e, "code", cd);
  return e;
}

static void complete(napi_env env, napi_status status, void *data) {
  aj_ctx *c = data;
  napi_delete_async_work(env, c->work);
  if (c->failed || status != napi_ok) {
    napi_reject_deferred(env, c->deferred, make_error(env, c->failed ? c->err_code : "ANALYZE_NATIVE_FAILED", c->failed ? c->err : "cancelled"));
    ctx_free(c);
    return;
  }
  napi_value h;
  napi_create_external(env, c, finalize_handle, NULL, &h);
  napi_resolve_deferred(env, c->deferred, h);
}

static int get_prop(napi_env env, napi_value o, const char *name, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, o, name, &has) != napi_ok || !has) return -1;
  return napi_get_named_property(env, o, name, out) == napi_ok ? 0 : -1;
}
static int get_int(napi_env env, napi_value o, const char *name, int64_t *out) {
  napi_value v;
  if (get_prop(env, o, name, &v) != 0) return -1;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok && lossless ? 0 : -1;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != floor(d)) return -1;
  *out = (int64_t)d;
  return 0;
}
static char *get_str(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s) napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}
static char **get_str_array(napi_env env, napi_value o, const char *name, int *n) {
  napi_value a;
  uint32_t len;
  if (get_prop(env, o, name, &a) != 0 || napi_get_array_length(env, a, &len) != napi_ok) return NULL;
  char **out = calloc(len + 1, sizeof(char *));
  for (uint32_t i = 0; out && i < len; i++) {
    napi_value e;
    napi_get_element(env, a, i, &e);
    out[i] = get_str(env, e);
    if (!out[i]) return NULL;
  }
  *n = (int)len;
  return out;
}
/* A Float64Array of integers as int64 (or int32 when narrow). */
static int64_t *get_int_list(napi_env env, napi_value o, const char *name, int *n) {
  napi_value a;
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (get_prop(env, o, name, &a) != 0 || napi_get_typedarray_info(env, a, &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array) return NULL;
  int64_t *out = calloc(len + 1, sizeof(int64_t));
  for (size_t i = 0; out && i < len; i++) {
    double d = ((double *)data)[i];
    out[i] = isnan(d) ? INT64_MIN : (int64_t)d;
  }
  *n = (int)len;
  return out;
}

static napi_value js_run(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return throw_err(env, "AJ_BAD_ARGUMENT", "ajRun(options)");
  aj_ctx *c = calloc(1, sizeof(aj_ctx));
  if (!c) return throw_err(env, "AJ_BAD_ARGUMENT", "out of memory");
  napi_value o = argv[0], v;
  int64_t x;
  int nsg = 0, nl = 0;
  const char *bad = NULL;
  if (get_prop(env, o, "libPath", &v) != 0 || !(c->lib_path = get_str(env, v))) bad = "libPath";
  else if (get_prop(env, o, "spillDir", &v) != 0 || !(c->spill_dir = get_str(env, v))) bad = "spillDir";
  else if (!(c->setup_sql = get_str_array(env, o, "setupSql", &c->n_setup))) bad = "setupSql";
  else if (!(c->query_sql = get_str_array(env, o, "querySql", &c->n_query))) bad = "querySql";
  else if (get_int(env, o, "iterMode", &x) != 0) bad = "iterMode";
  if (!bad) {
    c->mode_iter = x != 0;
    int64_t *rates = NULL, *segs = NULL;
    if (get_int(env, o, "baseNs", &c->base_ns) != 0) bad = "baseNs";
    else if (get_int(env, o, "secLo", &c->sec_lo) != 0) bad = "secLo";
    else if (get_int(env, o, "secHi", &c->sec_hi) != 0 || c->sec_hi <= c->sec_lo) bad = "secHi";
    else if (get_int(env, o, "points", &x) != 0) bad = "points";
    else if ((c->np = (int)x), !(rates = get_int_list(env, o, "rates", &c->ns))) bad = "rates";
    else if (!(segs = get_int_list(env, o, "segments", &nsg)) || nsg % 2) bad = "segments";
    else if (!(c->thr_ns = get_int_list(env, o, "thresholdsNs", &c->nthr))) bad = "thresholdsNs";
    else if (!(c->late_ns = get_int_list(env, o, "lateNs", &nl))) bad = "lateNs";
    else if (get_int(env, o, "worstN", &x) != 0 || x < 0 || x > 10000) bad = "worstN";
    else if ((c->worst_n = (int)x), get_int(env, o, "windowSeconds", &x) != 0 || x < 1 || x > 3600) bad = "windowSeconds";
    else if ((c->window_seconds = (int)x), get_int(env, o, "threads", &x) != 0 || x < 1 || x > 256) bad = "threads";
    else if ((c->threads = (int)x), get_prop(env, o, "memoryLimit", &v) != 0) bad = "memoryLimit";
    if (!bad) {
      char *ml = get_str(env, v);
      if (!ml || strlen(ml) >= sizeof c->memory_limit || strspn(ml, "0123456789.KMGTiB ") != strlen(ml)) bad = "memoryLimit";
      else snprintf(c->memory_limit, sizeof c->memory_limit, "%s", ml);
      free(ml);
    }
    if (!bad) {
      c->nseg = nsg / 2;
      c->rate = calloc(c->ns + 1, sizeof(int32_t));
      c->seg_from = calloc(c->nseg + 1, sizeof(int32_t));
      c->seg_to = calloc(c->nseg + 1, sizeof(int32_t));
      for (int s = 0; s < c->ns; s++) {
        if (rates[s] < 1 || rates[s] > 1000000) bad = "rates";
        c->rate[s] = (int32_t)rates[s];
      }
      for (int i = 0; i < c->nseg; i++) {
        c->seg_from[i] = (int32_t)segs[2 * i];
        c->seg_to[i] = (int32_t)segs[2 * i + 1];
        if (c->seg_from[i] < 0 || c->seg_from[i] >= c->np || c->seg_to[i] < 0 || c->seg_to[i] >= c->np) bad = "segments";
      }
      for (int j = 1; j < c->nthr; j++)
        if (c->thr_ns[j] < c->thr_ns[j - 1]) bad = "thresholdsNs (ascending)";
      if (nl != c->nseg) bad = "lateNs";
    }
    if (!bad) {
      napi_value ka;
      napi_typedarray_type kt;
      size_t klen;
      void *kd;
      if (get_prop(env, o, "keys", &ka) != 0 || napi_get_typedarray_info(env, ka, &kt, &klen, &kd, NULL, NULL) != napi_ok ||
          kt != napi_biguint64_array || klen != (size_t)c->ns * (size_t)c->np)
        bad = "keys";
      else if ((c->keys = malloc(klen * sizeof(uint64_t) + 8)))
        memcpy(c->keys, kd, klen * sizeof(uint64_t));
    }
    free(rates);
    free(segs);
  }
  if (bad) {
    ctx_free(c);
    char msg[96];
    snprintf(msg, sizeof msg, "ajRun: bad option %s", bad);
    return throw_err(env, "AJ_BAD_ARGUMENT", msg);
  }
  napi_value name;
  napi_create_string_utf8(env, "svtrace-analyze-join", NAPI_AUTO_LENGTH, &name);
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_async_work(env, NULL, name, execute, complete, c, &c->work);
  napi_queue_async_work(env, c->work);
  return promise;
}

static aj_ctx *get_ctx(napi_env env, napi_value v) {
  void *d = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &d) != napi_ok) return NULL;
  return d;
}

static napi_value f64(napi_env env, size_t n, double **data) {
  napi_value ab, arr;
  void *p;
  napi_create_arraybuffer(env, n * sizeof(double), &p, &ab);
  napi_create_typedarray(env, napi_float64_array, n, ab, 0, &arr);
  *data = p;
  return arr;
}

static napi_value js_result(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, arr;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  aj_ctx *c = argc ? get_ctx(env, argv[0]) : NULL;
  if (!c) return throw_err(env, "AJ_BAD_ARGUMENT", "ajResult(handle)");
  napi_create_object(env, &out);
  double *d;
  int ns = c->ns, np = c->np, nt = c->nthr;

  arr = f64(env, ns, &d);
  for (int s = 0; s < ns; s++) d[s] = (double)c->samples[s];
  napi_set_named_property(env, out, "samples", arr);

  /* per stream and point: seen, loK, hiK, pairs, mean gap, m2, min, max, max|jitter|, sum|jitter|, reordered */
  arr = f64(env, (size_t)ns * np * 11, &d);
  for (int j = 0; j < ns * np; j++) {
    point_acc *a = &c->pts[j];
    double *e = d + (size_t)j * 11;
    e[0] = (double)a->seen;
    e[1] = a->seen ? (double)a->lok : NAN;
    e[2] = a->seen ? (double)a->hik : NAN;
    e[3] = (double)a->n;
    long double mean = a->n ? (long double)a->gsum / (long double)a->n : 0;
    e[4] = (double)mean;
    long double m2 = a->n ? (long double)a->g2sum + a->g2big - (long double)a->gsum * mean : 0;
    e[5] = m2 < 0 ? 0 : (double)m2;
    e[6] = (double)a->gmin;
    e[7] = (double)a->gmax;
    e[8] = a->maxj;
    e[9] = a->sumj;
    e[10] = (double)a->reordered;
  }
  napi_set_named_property(env, out, "points", arr);

  /* per segment and stream (stream ns = all): count, min, max, mean, sd, negative, above[nt] */
  int mw = 6 + nt;
  arr = f64(env, (size_t)c->nseg * (ns + 1) * mw, &d);
  napi_value hists;
  napi_create_array(env, &hists);
  for (int j = 0; j < c->nseg * (ns + 1); j++) {
    seg_acc *a = &c->segs[j];
    double *e = d + (size_t)j * mw;
    e[0] = (double)a->n;
    e[1] = a->n ? (double)a->min : NAN;
    e[2] = a->n ? (double)a->max : NAN;
    double mean = a->n ? (double)a->sum / (double)a->n : NAN;
    e[3] = mean;
    e[4] = a->n ? sqrt(fmax(0, ((double)a->sumsq + a->sumsq_big) / (double)a->n - mean * mean)) : NAN;
    e[5] = (double)a->neg;
    for (int k = 0; k < nt; k++) e[6 + k] = (double)a->above[k];
    size_t nz = 0;
    for (int b = 0; b < NB; b++) nz += a->hist[b] != 0;
    double *h;
    napi_value ha = f64(env, nz * 2, &h);
    size_t q = 0;
    for (int b = 0; b < NB; b++) {
      if (!a->hist[b]) continue;
      h[q++] = b - NB_HALF;
      h[q++] = a->hist[b];
    }
    napi_set_element(env, hists, j, ha);
  }
  napi_set_named_property(env, out, "moments", arr);
  napi_set_named_property(env, out, "hist", hists);

  /* per segment: [sec, max, count]* of the seconds with samples; worst rows; late runs */
  napi_value secs, worst;
  napi_create_array(env, &secs);
  napi_create_array(env, &worst);
  for (int i = 0; i < c->nseg; i++) {
    size_t nz = 0;
    for (int64_t p = 0; p < c->n_pages; p++)
      if (c->sec_pages[i][p])
        for (int q = 0; q < SEC_PAGE; q++) nz += c->sec_pages[i][p][2 * q + 1] != 0;
    napi_value sa = f64(env, nz * 3, &d);
    size_t q3 = 0;
    for (int64_t p = 0; p < c->n_pages; p++) {
      int64_t *pg = c->sec_pages[i][p];
      if (!pg) continue;
      for (int q = 0; q < SEC_PAGE; q++) {
        if (!pg[2 * q + 1]) continue;
        d[q3++] = (double)(c->sec_lo + p * SEC_PAGE + q);
        d[q3++] = (double)pg[2 * q];
        d[q3++] = (double)pg[2 * q + 1];
      }
    }
    napi_set_element(env, secs, i, sa);
    napi_value wl;
    napi_create_array(env, &wl);
    for (int w = 0; w < c->worst_count[i]; w++) {
      worst_row *r = &c->worst[(size_t)i * c->worst_n + w];
      napi_value ro, ts, num;
      napi_create_object(env, &ro);
      napi_create_double(env, r->stream, &num);
      napi_set_named_property(env, ro, "stream", num);
      napi_create_double(env, (double)r->sec, &num);
      napi_set_named_property(env, ro, "sec", num);
      napi_create_double(env, (double)r->smp, &num);
      napi_set_named_property(env, ro, "smpCnt", num);
      napi_create_double(env, (double)r->v, &num);
      napi_set_named_property(env, ro, "latencyNs", num);
      napi_create_array_with_length(env, np, &ts);
      for (int p = 0; p < np; p++) {
        napi_value tv;
        if (r->t[p] == ABSENT)
          napi_get_null(env, &tv);
        else
          napi_create_bigint_int64(env, r->t[p], &tv);
        napi_set_element(env, ts, p, tv);
      }
      napi_set_named_property(env, ro, "t", ts);
      napi_set_element(env, wl, w, ro);
    }
    napi_set_element(env, worst, i, wl);
  }
  napi_set_named_property(env, out, "seconds", secs);
  napi_set_named_property(env, out, "worst", worst);
  arr = f64(env, (size_t)c->nseg * ns * 3, &d);
  for (int i = 0; i < c->nseg; i++)
    for (int s = 0; s < ns; s++) {
      late_acc *L = &c->late[(size_t)i * ns + s];
      double *e = d + ((size_t)i * ns + s) * 3;
      int64_t r = c->rate[s], sec = floordiv(L->best_start, r);
      e[0] = (double)L->best_len;
      e[1] = L->best_len ? (double)sec : NAN;
      e[2] = L->best_len ? (double)(L->best_start - sec * r) : NAN;
    }
  napi_set_named_property(env, out, "late", arr);
  arr = f64(env, 2, &d);
  d[0] = (double)c->rows_read;
  d[1] = (double)c->rows_dropped;
  napi_set_named_property(env, out, "rows", arr);
  return out;
}

/* Exact percentiles: targets [seg, stream (-1 all), bucket, rank in bucket]*; returns the value of each (NaN if absent). */
typedef struct {
  int seg, stream;
  int32_t bucket;
  int64_t rank, lo, hi;
  uint32_t *counts; /* hi - lo + 1 when narrow */
  int64_t *vals;    /* when wide */
  int64_t nvals, cap;
  int next; /* next target of the same (seg, bucket) */
} pct_target;

/* 1: read all `len` bytes; 0: end of file before any; -1: error or a partial read */
static int read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, (char *)buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      if (got == 0) return 0;
      errno = EIO;
      return -1;
    }
    got += (size_t)r;
  }
  return 1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void pct_add(pct_target *t, int64_t v) {
  if (t->counts) {
    t->counts[v - t->lo]++;
    return;
  }
  if (t->nvals == t->cap) {
    int64_t cap = t->cap ? t->cap * 2 : 1024;
    int64_t *nv = realloc(t->vals, (size_t)cap * sizeof(int64_t));
    if (!nv) return;
    t->vals = nv;
    t->cap = cap;
  }
  t->vals[t->nvals++] = v;
}

static napi_value js_percentiles(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  aj_ctx *c = argc == 2 ? get_ctx(env, argv[0]) : NULL;
  napi_typedarray_type tt;
  size_t len;
  void *data;
  if (!c || napi_get_typedarray_info(env, argv[1], &tt, &len, &data, NULL, NULL) != napi_ok || tt != napi_float64_array || len % 4)
    return throw_err(env, "AJ_BAD_ARGUMENT", "ajPercentiles(handle, Float64Array)");
  const double *in = data;
  int nt = (int)(len / 4);
  pct_target *ts = calloc(nt + 1, sizeof(pct_target));
  int *head = malloc((size_t)(c->nseg + 1) * NB * sizeof(int));
  if (!ts || !head) {
    free(ts);
    free(head);
    return throw_err(env, "ANALYZE_NATIVE_FAILED", "out of memory");
  }
  for (size_t j = 0; j < (size_t)(c->nseg + 1) * NB; j++) head[j] = -1;
  for (int j = 0; j < nt; j++) {
    pct_target *t = &ts[j];
    t->seg = (int)in[4 * j];
    t->stream = (int)in[4 * j + 1];
    t->bucket = (int32_t)in[4 * j + 2];
    t->rank = (int64_t)in[4 * j + 3];
    if (t->seg < 0 || t->seg >= c->nseg || t->bucket < -NB_HALF || t->bucket > NB_HALF || t->rank < 1) {
      t->seg = -1;
      continue;
    }
    bucket_range(t->bucket, &t->lo, &t->hi);
    if (t->hi - t->lo < (1 << 20)) t->counts = calloc((size_t)(t->hi - t->lo + 1), sizeof(uint32_t));
    int *h = &head[(size_t)t->seg * NB + t->bucket + NB_HALF];
    t->next = *h;
    *h = j;
  }
  int32_t *buf = malloc((SPILL_BLOCK + 2) * sizeof(int32_t));
  const char *err = NULL;
  for (int i = 0; i < c->nseg && buf && !err; i++) {
    const int *hs = &head[(size_t)i * NB];
    if (lseek(c->spill_fd[i], 0, SEEK_SET) < 0) err = strerror(errno);
    for (;;) {
      int32_t hdr[3];
      int r = read_full(c->spill_fd[i], hdr, sizeof hdr);
      if (r < 0) err = strerror(errno);
      if (r <= 0) break;
      int s = hdr[0], n = hdr[1], width = hdr[2];
      if (n < 1 || n > SPILL_BLOCK || s < 0 || s >= c->ns || (width != 2 && width != 4) ||
          read_full(c->spill_fd[i], buf, (size_t)n * (size_t)width) != 1) {
        err = "the latency spill file is damaged";
        break;
      }
      const uint16_t *b16 = (const uint16_t *)buf;
      for (int q = 0; q < n; q++) {
        int64_t v = width == 2 ? (int64_t)b16[q] : (int64_t)buf[q];
        for (int j = hs[bucket_of(v) + NB_HALF]; j >= 0; j = ts[j].next)
          if (ts[j].stream < 0 || ts[j].stream == s) pct_add(&ts[j], v);
      }
    }
    for (int64_t q = 0; q + 1 < c->big_len[i]; q += 2) {
      int s = (int)c->big[i][q];
      int64_t v = c->big[i][q + 1];
      for (int j = hs[bucket_of(v) + NB_HALF]; j >= 0; j = ts[j].next)
        if (ts[j].stream < 0 || ts[j].stream == s) pct_add(&ts[j], v);
    }
  }
  double *d;
  napi_value out = f64(env, nt, &d);
  for (int j = 0; j < nt; j++) {
    pct_target *t = &ts[j];
    d[j] = NAN;
    if (t->seg < 0) continue;
    if (t->counts) {
      int64_t acc = 0;
      for (int64_t x = 0; x <= t->hi - t->lo; x++) {
        acc += t->counts[x];
        if (acc >= t->rank) {
          d[j] = (double)(t->lo + x);
          break;
        }
      }
      free(t->counts);
    } else {
      if (t->nvals >= t->rank) {
        qsort(t->vals, (size_t)t->nvals, sizeof(int64_t), cmp_i64);
        d[j] = (double)t->vals[t->rank - 1];
      }
      free(t->vals);
    }
  }
  free(ts);
  free(head);
  free(buf);
  if (err) return throw_err(env, "ANALYZE_TMP_FAILED", err);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  aj_ctx *c = argc ? get_ctx(env, argv[0]) : NULL;
  if (!c) return NULL;
  /* Free the big parts now; the external keeps the (emptied) context until GC. */
  for (int i = 0; i < c->nseg; i++) {
    if (c->spill_fd[i] >= 0) close(c->spill_fd[i]);
    c->spill_fd[i] = -1;
    if (c->spill_path[i]) unlink(c->spill_path[i]);
  }
  return NULL;
}

void analyze_join_register(napi_env env, napi_value exports) {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"ajRun", js_run}, {"ajResult", js_result}, {"ajPercentiles", js_percentiles}, {"ajClose", js_close}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
}
