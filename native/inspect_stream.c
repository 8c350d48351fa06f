/*
 * inspect_stream.c: per-stream aggregation of the native inspect engine, a
 * line-by-line port of the per-frame part of src/capture/inspect.ts, of
 * src/subscribe/sequence.ts (observe, learnWrap, fillGap) and of the pacing
 * figures. Floating-point steps are the same IEEE operations in the same
 * order as the TypeScript (no FMA contraction: x86-64's baseline has none),
 * so the figures are bit-identical; Math.round is reproduced exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inspect_scan.h"

static const int64_t USUAL_WRAPS[] = {4000, 4800, 12800, 15360, 65536};

static void oom(is_ctx *c) {
  c->error = "out of memory";
  if (!c->fallback) c->fallback = "out of memory";
}

/* ---- sequence.ts ---- */

static int seen_get(const is_seq *s, int64_t k) { return s->seen[(k % IS_WINDOW) >> 3] >> (k & 7) & 1; }
static void seen_set(is_seq *s, int64_t k) { s->seen[(k % IS_WINDOW) >> 3] |= (uint8_t)(1u << (k & 7)); }
static void seen_clear(is_seq *s, int64_t k) { s->seen[(k % IS_WINDOW) >> 3] &= (uint8_t) ~(1u << (k & 7)); }

static int seq_init(is_seq *s, int64_t wrap_at) {
  memset(s, 0, sizeof *s);
  s->wrap = wrap_at ? wrap_at : USUAL_WRAPS[0];
  s->wrap_fixed = wrap_at != 0;
  s->highest = s->first = -1;
  s->confrev = -1;
  s->min_smp = INT64_MAX;
  s->max_smp = INT64_MIN;
  s->seen = calloc(IS_WINDOW / 8, 1);
  return s->seen ? 0 : -1;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void learn_wrap(is_seq *s, int64_t smp) {
  if (smp < s->wrap || s->wrap_fixed) return;
  int64_t next = smp + 1;
  for (size_t i = 0; i < sizeof USUAL_WRAPS / sizeof USUAL_WRAPS[0]; i++)
    if (USUAL_WRAPS[i] > smp) {
      next = USUAL_WRAPS[i];
      break;
    }
  int64_t iter = floor_div(s->highest, s->wrap);
  int64_t last = s->highest - iter * s->wrap;
  s->wrap = next;
  if (s->highest >= 0) {
    memset(s->seen, 0, IS_WINDOW / 8);
    s->highest = iter * next + last;
    seen_set(s, s->highest);
  }
}

static void fill_gap(is_seq *s, int64_t abs) {
  int64_t w = s->wrap;
  for (int g = s->ngaps - 1; g >= 0; g--) {
    is_gap *gap = &s->gaps[g];
    int64_t from = gap->iter * w + gap->from_smp, to = from + gap->size - 1;
    if (abs >= from && abs <= to) {
      if (--gap->missing == 0) {
        memmove(&s->gaps[g], &s->gaps[g + 1], (size_t)(s->ngaps - g - 1) * sizeof *gap);
        s->ngaps--;
      }
      return;
    }
    if (to < abs) return;
  }
}

static int observe(is_seq *s, int64_t smp, int64_t confrev) {
  learn_wrap(s, smp);
  if (confrev >= 0) {
    if (s->confrev >= 0 && confrev != s->confrev) s->confrev_changes++;
    s->confrev = confrev;
  }
  s->samples++;
  if (smp < s->min_smp) s->min_smp = smp;
  if (smp > s->max_smp) s->max_smp = smp;
  int64_t w = s->wrap;
  if (s->highest < 0) {
    s->highest = s->first = smp;
    seen_set(s, smp);
    return 0;
  }
  int64_t target = s->highest + 1;
  int64_t abs = floor_div(target, w) * w + smp;
  /* abs - target > w / 2 with w / 2 a real number: 2·(abs - target) > w */
  if (2 * (abs - target) > w) abs -= w;
  else if (2 * (target - abs) > w) abs += w;
  if (abs < 0) abs += w;
  int64_t d = abs - s->highest;
  if (d >= 1) {
    int64_t ia = floor_div(abs, w), ih = floor_div(s->highest, w);
    if (ia > ih) s->wraps += ia - ih;
    if (d > (int64_t)IS_WINDOW) memset(s->seen, 0, IS_WINDOW / 8);
    else
      for (int64_t k = s->highest + 1; k < abs; k++) seen_clear(s, k);
    if (d > 1) {
      s->missing += d - 1;
      int64_t from = s->highest + 1;
      if (s->ngaps < IS_MAX_GAPS) {
        if (!s->gaps && !(s->gaps = malloc(IS_MAX_GAPS * sizeof *s->gaps))) return -1;
        s->gaps[s->ngaps++] = (is_gap){from % w, (abs - 1) % w, floor_div(from, w), d - 1, d - 1};
      } else {
        s->gaps_dropped++;
      }
    }
    seen_set(s, abs);
    s->highest = abs;
  } else if (s->highest - abs < (int64_t)IS_WINDOW && !seen_get(s, abs)) {
    seen_set(s, abs);
    s->out_of_order++;
    s->missing--;
    fill_gap(s, abs);
  } else {
    s->duplicates++;
    s->samples--;
  }
  return 0;
}

/* ---- streams ---- */

/* Up to 8 bytes at p as one word (n ≤ 8). */
static uint64_t word(const uint8_t *p, uint32_t n) {
  uint64_t w = 0;
  for (uint32_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
  return w;
}

/* A cheap hash of the identity: APPID, svID length, its first and last 8 bytes, the source MAC. */
static uint64_t identity_hash(uint32_t app_id, const uint8_t *svid, uint32_t n, const uint8_t *src) {
  uint64_t h = word(svid, n < 8 ? n : 8) * 0x9e3779b97f4a7c15ull;
  if (n > 8) h ^= word(svid + n - 8, 8) * 0xc2b2ae3d27d4eb4full;
  h ^= (word(src, 6) ^ ((uint64_t)app_id << 48) ^ n) * 0x165667b19e3779f9ull;
  return h ^ (h >> 31);
}

static int same(const is_stream *s, uint32_t app_id, const uint8_t *svid, uint32_t n, const uint8_t *src) {
  if (s->app_id != app_id || s->svid_len != n || word(s->src, 6) != word(src, 6)) return 0;
  if (n <= 8) return word(s->svid, n) == word(svid, n);
  return !memcmp(s->svid, svid, n);
}

static int table_grow(is_ctx *c) {
  size_t cap = c->table_cap ? c->table_cap * 2 : 64;
  uint32_t *t = malloc(cap * sizeof *t);
  if (!t) return -1;
  memset(t, 0xff, cap * sizeof *t);
  for (size_t i = 0; i < c->nstreams; i++) {
    size_t k = c->streams[i]->hash & (cap - 1);
    while (t[k] != UINT32_MAX) k = (k + 1) & (cap - 1);
    t[k] = (uint32_t)i;
  }
  free(c->table);
  c->table = t;
  c->table_cap = cap;
  return 0;
}

void is_stream_free(is_stream *s) {
  if (!s) return;
  free(s->svid);
  free(s->gaps_ns);
  free(s->seq.gaps);
  free(s->seq.seen);
  free(s);
}

static is_stream *find(is_ctx *c, const uint8_t *b, size_t start, const is_frame_scan *f, int i,
                       int64_t sec, int64_t nsec) {
  const uint8_t *svid = b + f->svid_off[i], *src = b + start + 6;
  uint32_t n = f->svid_len[i];
  uint64_t h = identity_hash(f->app_id, svid, n, src);
  if (c->table_cap) {
    for (size_t k = h & (c->table_cap - 1); c->table[k] != UINT32_MAX; k = (k + 1) & (c->table_cap - 1)) {
      is_stream *s = c->streams[c->table[k]];
      if (s->hash == h && same(s, f->app_id, svid, n, src)) return s;
    }
  }
  if ((c->nstreams + 1) * 2 > c->table_cap && table_grow(c) != 0) return NULL;
  if (c->nstreams == c->capstreams) {
    size_t cap = c->capstreams ? c->capstreams * 2 : 16;
    is_stream **g = realloc(c->streams, cap * sizeof *g);
    if (!g) return NULL;
    c->streams = g;
    c->capstreams = cap;
  }
  is_stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->svid = malloc(n ? n : 1);
  s->capgap = 1024;
  s->gaps_ns = malloc(s->capgap * sizeof *s->gaps_ns);
  if (!s->svid || !s->gaps_ns || seq_init(&s->seq, c->wrap_at) != 0) {
    is_stream_free(s);
    return NULL;
  }
  memcpy(s->svid, svid, n);
  s->svid_len = n;
  s->app_id = f->app_id;
  s->hash = h;
  memcpy(s->src, src, 6);
  memcpy(s->dst, b + start, 6);
  s->vlan_present = f->vlan_present;
  s->vlan_tci = f->vlan_tci;
  s->reserved1 = f->reserved1;
  s->first_sec = s->last_sec = sec;
  s->first_nsec = s->last_nsec = nsec;
  s->last_frame_id = -1;
  size_t k = h & (c->table_cap - 1);
  while (c->table[k] != UINT32_MAX) k = (k + 1) & (c->table_cap - 1);
  c->table[k] = (uint32_t)c->nstreams;
  c->streams[c->nstreams++] = s;
  return s;
}

void is_frame(is_ctx *c, const uint8_t *b, size_t start, size_t end, int64_t sec, int64_t nsec,
              uint64_t abs) {
  is_frame_scan f;
  int st = is_scan_frame(b, start, end, &f);
  if (st) {
    if (st == 2) {
      c->other_frames++;
      return;
    }
    if (c->malformed_by_code[st]++ == 0) c->malformed_order[c->norder++] = st;
    if (c->nmalformed < IS_MAX_MALFORMED)
      c->malformed[c->nmalformed++] = (is_malformed){c->packets, st, abs, (uint32_t)(end - start)};
    return;
  }
  c->sv_frames++;
  if (!c->have_base) {
    c->have_base = 1;
    c->base_sec = sec;
  }
  /* ns since the first SV frame's second, as a double (as inspect.ts) */
  double rel = (double)(sec - c->base_sec) * 1e9 + (double)nsec;
  for (int i = 0; i < f.asdu_count; i++) {
    is_stream *s = find(c, b, start, &f, i, sec, nsec);
    if (!s || observe(&s->seq, f.smp_cnt[i], f.confrev[i]) != 0) {
      oom(c);
      return;
    }
    s->synch_mask[f.synch[i] >> 6 & 3] |= 1ull << (f.synch[i] & 63);
    if (s->last_frame_id != c->packets) {
      s->last_frame_id = c->packets;
      s->frames++;
      s->asdus_mask |= 1ull << (f.asdu_count - 1);
      if (s->have_last_rel) {
        if (s->ngap == s->capgap) {
          double *g = realloc(s->gaps_ns, s->capgap * 2 * sizeof *g);
          if (!g) {
            oom(c);
            return;
          }
          s->gaps_ns = g;
          s->capgap *= 2;
        }
        s->gaps_ns[s->ngap++] = rel - s->last_rel;
      }
      s->have_last_rel = 1;
      s->last_rel = rel;
      s->last_sec = sec;
      s->last_nsec = nsec;
    }
  }
}

/* ---- pacing ---- */

/* Math.round: the nearest integer, ties towards +∞, -0 for [-0.5, 0). */
static double js_round(double x) {
  if (x < 0 && x >= -0.5) return -0.0;
  double r = floor(x);
  return x - r >= 0.5 ? r + 1 : r;
}
static double round3(double x) { return js_round(x * 1000) / 1000; }

static int64_t rank(int64_t n, double p) {
  double r = ceil((p / 100) * (double)n - 1e-9);
  if (r < 1) r = 1;
  return r > (double)n ? n : (int64_t)r;
}

/* The k-th smallest (1-based), reordering a (Hoare selection as util/percentile.ts). */
static double select_kth(double *a, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1, target = k - 1;
  while (lo < hi) {
    double pivot = a[(lo + hi) >> 1];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}

static int pacing(is_stream *s) {
  int64_t n = (int64_t)s->ngap;
  if (n == 0) return 0;
  double *g = s->gaps_ns, sum = 0, min = INFINITY, max = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    sum += g[i];
    if (g[i] < min) min = g[i];
    if (g[i] > max) max = g[i];
  }
  double mean = sum / (double)n, sq = 0;
  for (int64_t i = 0; i < n; i++) sq += (g[i] - mean) * (g[i] - mean);
  double p50 = select_kth(g, n, rank(n, 50)), p99 = select_kth(g, n, rank(n, 99));
  double *dev = malloc((size_t)n * sizeof *dev), dev_max = 0;
  if (!dev) return -1;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(g[i] - mean);
    dev[i] = d;
    if (d > dev_max) dev_max = d;
  }
  double *o = s->pacing;
  o[0] = round3(min / 1e3);
  o[1] = round3(mean / 1e3);
  o[2] = round3(p50 / 1e3);
  o[3] = round3(p99 / 1e3);
  o[4] = round3(max / 1e3);
  o[5] = round3(sqrt(sq / (double)n) / 1e3);
  o[6] = round3(select_kth(dev, n, rank(n, 50)) / 1e3);
  o[7] = round3(select_kth(dev, n, rank(n, 99)) / 1e3);
  o[8] = round3(dev_max / 1e3);
  free(dev);
  return 0;
}

void is_finish(is_ctx *c) {
  for (size_t i = 0; i < c->nstreams && !c->fallback; i++)
    if (pacing(c->streams[i]) != 0) oom(c);
}
