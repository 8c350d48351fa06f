/*
 * bpf_points.h: the loader and ring-buffer consumer of the binary trace
 * engine (`svtrace trace --engine bpf`): loads bpf/points.bpf.o with libbpf,
 * fills its config maps, attaches its raw tracepoints, and runs a thread that
 * drains the ring buffer on a short timer (no wake-up per record) into
 * batches for JS. Knows nothing of Node-API (addon_bpf.c is the glue).
 */
#ifndef SVB_BPF_POINTS_H
#define SVB_BPF_POINTS_H

#include <linux/types.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "svnet.h"
#include "bpf/points.h"
#include "bpf/recorder.h"

#define SVB_MAX_LINKS 8

typedef struct svb_batch {
  uint8_t *data; /* records as the kernel wrote them, one after the other */
  size_t len, cap;
  uint32_t count;
  int final;     /* the last batch: the probes are detached and the ring is empty */
} svb_batch;

typedef struct svb_open_opts {
  const char *object_path;
  const struct svb_config *config;
  const struct svb_point *points;   /* SVB_MAX_POINT_ID + 1 of them, by point id */
  const struct svb_layout *layouts;
  uint32_t n_layouts;
  const uint8_t *cands;             /* n_cands x (u32 key, struct svb_cands) */
  uint32_t n_cands;
  uint32_t ring_bytes;              /* a power of two, >= 4096 */
} svb_open_opts;

struct bpf_object;
struct bpf_link;
struct ring_buffer;

/* A loaded program and its reader: the points engine (svb_open) or the flight recorder (svr_open). */
typedef struct svb_tracer {
  struct bpf_object *obj;
  struct bpf_link *links[SVB_MAX_LINKS];
  struct ring_buffer *rb;
  int config_fd, counters_fd;
  int ncpus;
  struct svb_config cfg;   /* the points engine's config */
  struct svr_config rcfg;  /* the recorder's config */
  void *stop_cfg;          /* the config written back with its first word (stop) set, at stop */
  /* consumer */
  atomic_int stop;
  int evfd;
  int64_t poll_ns;        /* how often the ring is read */
  int64_t max_delay_ns;   /* a batch goes to JS when this old */
  size_t max_batch_bytes;
  atomic_int inflight;
  int max_inflight;
  svb_batch *cur;
  int64_t cur_started_ns;
  int (*deliver)(void *ctx, svb_batch *b);
  void *ctx;
  uint64_t records, batches, polls, polls_deferred;
} svb_tracer;

int svb_open(svb_tracer *t, const svb_open_opts *o, svn_error *e);
/* The flight recorder (bpf/recorder.bpf.c): loads, fills its config, attaches its 7 raw tracepoints. */
int svr_open(svb_tracer *t, const char *object_path, const struct svr_config *cfg, uint32_t ring_bytes, svn_error *e);
/* The recorder's losses no record came after to report (per CPU: since when, how many), read at the end. */
int svr_read_pending(svb_tracer *t, int ncpus, uint64_t *from, uint64_t *lost);
/* Runs of this tracer's programs the kernel skipped (a program fired while it already ran on that CPU; counted since Linux 6.2). */
uint64_t svb_recursion_misses(svb_tracer *t);
/* Values of a per-CPU counter map, not summed: out[kind * ncpus + cpu] for kind < n. */
int svb_read_percpu(svb_tracer *t, uint32_t n, uint64_t *out);
/* The consumer thread's body: returns after stop, once the probes are detached and the ring drained. */
void svb_consume_main(svb_tracer *t);
/* Sums of the per-CPU counters: out[point id * SVB_N_COUNTERS + kind]. */
int svb_read_counters(svb_tracer *t, uint64_t *out /* (SVB_MAX_POINT_ID + 1) * SVB_N_COUNTERS */);
void svb_close(svb_tracer *t);
void svb_batch_free(svb_batch *b);

/* Shared by both loaders (bpf_points.c). */
void svb_log_begin(void);
void svb_log_end(void);
void svb_fail(svn_error *e, const char *code, int err, const char *what);
/* bpf_object__load with every signal blocked (the verifier gives up with EAGAIN when one is pending). */
int svb_load(svb_tracer *t, svn_error *e);
/* The ring buffer reader of the map `events`, its eventfd and first batch. */
int svb_reader_init(svb_tracer *t, svn_error *e);

#endif
