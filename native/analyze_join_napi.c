/*
 * analyze_join_napi.c: the Node-API face of the native analysis engine
 * (src/analyze/native.ts is its only user) and the exact percentiles.
 *   ajRun(opts) -> Promise<handle>   the join and statistics, on Node's thread pool
 *   ajResult(handle) -> object       counts, moments, histograms, seconds, worst, late runs
 *   ajPercentiles(handle, Float64Array [seg, stream, bucket, rank]*) -> Float64Array
 *   ajClose(handle)                  removes the spill files
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze_join.h"

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aj_free(data);
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
    aj_free(c);
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
    aj_free(c);
    char msg[96];
    snprintf(msg, sizeof msg, "ajRun: bad option %s", bad);
    return throw_err(env, "AJ_BAD_ARGUMENT", msg);
  }
  napi_value name;
  napi_create_string_utf8(env, "svtrace-analyze-join", NAPI_AUTO_LENGTH, &name);
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_async_work(env, NULL, name, aj_execute, complete, c, &c->work);
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
