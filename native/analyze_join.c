/*
 * analyze_join.c: the analysis join and its statistics in C, the fast engine of
 * `svtrace report` (src/analyze/native.ts drives it; src/analyze/join.ts and
 * stats.ts are the DuckDB reference it must agree with, figure for figure).
 *
 * Rows come from DuckDB itself: one streaming query per record (Parquet or CSV
 * segments, as recordSql reads them) returning (hash(sv_id, point), smp_cnt,
 * t_ns[, iter]); a small table maps the hash back to code = stream * points +
 * point. DuckDB's C API is loaded at run time from the libduckdb.so that
 * @duckdb/node-bindings ships (the library the Node binding itself runs on;
 * analyze_join_duckdb.c); without it the engine is unavailable and the
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
 * Files: analyze_join.h (shared declarations), this file (the merge and the
 * statistics), analyze_join_duckdb.c (DuckDB's C API, the record readers),
 * analyze_join_napi.c (ajRun, ajResult, ajPercentiles, ajClose).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze_join.h"

/* The values [lo, hi] of bucket b (signed). */
void bucket_range(int32_t b, int64_t *lo, int64_t *hi) {
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

void fail(aj_ctx *c, const char *code, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = 1;
  snprintf(c->err_code, sizeof c->err_code, "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
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

void aj_execute(napi_env env, void *data) {
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

void aj_free(aj_ctx *c) {
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
