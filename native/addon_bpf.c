/*
 * addon_bpf.c: the Node-API face of the binary trace engine (bpf_points.c),
 * with the thread glue of run.c (a threadsafe function, the stop() promise).
 *
 * bpfTraceAvailable() -> boolean (built with libbpf)
 * bpfTraceSizes() -> {config, point, layout, cands, word, recFrame, recUnknown, maxPointId, counters}
 * bpfTraceOpen({object, config, points, layouts, cands: Uint8Array, nLayouts, nCands, ringBytes,
 *               pollNs?, maxBatchDelayNs?, cpu?, fifoPriority?}, onBatch) -> handle
 *   loads, fills the maps, attaches, starts the reader thread;
 *   onBatch({records: Buffer, count, final})
 * bpfTraceStats(handle) -> {counters: BigUint64Array, records, batches, polls, pollsDeferred, skippedRuns, running}
 *   skippedRuns: runs of its programs the kernel skipped (recursion_misses, Linux 6.2+)
 * bpfTraceStop(handle) -> Promise<stats>, after the final batch (probes detached, ring drained)
 *
 * The flight recorder (bpf/recorder.bpf.c, bpf_recorder.c) runs on the same reader and glue:
 * bpfRecorderSizes() -> {config, rec, counters, maxCpus}
 * bpfRecorderOpen({object, config: Uint8Array, ringBytes, pollNs?, maxBatchDelayNs?, cpu?, fifoPriority?}, onBatch) -> handle
 *   stats' counters are then per CPU, not summed: counters[kind * ncpus + cpu], with ncpus;
 *   once ended, pending[2 * cpu] and [2 * cpu + 1]: since when and how many records a CPU lost
 *   that no gap record reported (the ring stopped before its next record)
 * bpfTraceStats and bpfTraceStop take either handle.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "addon.h"

#ifdef SVT_HAVE_LIBBPF
#include "bpf_points.h"

#define N_COUNTERS ((SVB_MAX_POINT_ID + 1) * SVB_N_COUNTERS)

typedef struct bpf_run {
  svn_run run; /* first */
  svb_tracer t;
  int recorder; /* the flight recorder: per-CPU counters */
  uint64_t final_percpu[SVR_N_COUNTERS * 1024]; /* the recorder's, at the end (CPUs beyond 1024 are not kept) */
  uint64_t final_misses;
  uint64_t pending_from[1024], pending_lost[1024]; /* the recorder's losses not yet reported by a gap record, at the end */
  handle stub; /* what run.c reads of a socket handle: never closed, never freed on its own */
  int refs;    /* the JS external and the running thread */
  int ended;
  napi_env env;
  uint64_t final_counters[N_COUNTERS];
  napi_ref late_fault;
} bpf_run;

static void bpf_run_unref(napi_env env, bpf_run *r) {
  if (--r->refs > 0) return;
  if (r->late_fault) napi_delete_reference(env, r->late_fault);
  free(r);
}

static int percpu_cpus(const bpf_run *r) { return r->t.ncpus < 1024 ? r->t.ncpus : 1024; }

/* o[name] = a BigUint64Array copy of src[0..n) (zeros where src is NULL). */
static void set_u64_array(napi_env env, napi_value o, const char *name, const uint64_t *src, size_t n) {
  napi_value ab, ta;
  void *data;
  napi_create_arraybuffer(env, n * sizeof(uint64_t), &data, &ab);
  if (src) memcpy(data, src, n * sizeof(uint64_t));
  else memset(data, 0, n * sizeof(uint64_t));
  napi_create_typedarray(env, napi_biguint64_array, n, ab, 0, &ta);
  napi_set_named_property(env, o, name, ta);
}

/* The recorder's counters per CPU (counters[kind * ncpus + cpu]) and, once ended, its pending losses. */
static void set_recorder_counters(napi_env env, napi_value o, bpf_run *r) {
  int ncpus = percpu_cpus(r);
  size_t n = (size_t)SVR_N_COUNTERS * ncpus;
  if (r->ended) {
    set_u64_array(env, o, "counters", r->final_percpu, n);
    uint64_t pending[2 * 1024];
    for (int cpu = 0; cpu < ncpus; cpu++) {
      pending[2 * cpu] = r->pending_from[cpu];
      pending[2 * cpu + 1] = r->pending_lost[cpu];
    }
    set_u64_array(env, o, "pending", pending, (size_t)ncpus * 2);
  } else {
    uint64_t *all = calloc((size_t)SVR_N_COUNTERS * r->t.ncpus, sizeof *all);
    uint64_t *kept = calloc(n, sizeof *kept);
    if (all && kept && svb_read_percpu(&r->t, SVR_N_COUNTERS, all) == 0)
      for (int k = 0; k < SVR_N_COUNTERS; k++)
        memcpy(kept + (size_t)k * ncpus, all + (size_t)k * r->t.ncpus, ncpus * sizeof *kept);
    set_u64_array(env, o, "counters", kept, n);
    free(all);
    free(kept);
  }
  set_num(env, o, "ncpus", ncpus);
}

static napi_value make_stats(napi_env env, bpf_run *r) {
  napi_value o;
  napi_create_object(env, &o);
  if (r->recorder) {
    set_recorder_counters(env, o, r);
  } else {
    uint64_t live[N_COUNTERS];
    if (!r->ended) svb_read_counters(&r->t, live);
    set_u64_array(env, o, "counters", r->ended ? r->final_counters : live, N_COUNTERS);
  }
  set_num(env, o, "records", (double)r->t.records);
  set_num(env, o, "batches", (double)r->t.batches);
  set_num(env, o, "polls", (double)r->t.polls);
  set_num(env, o, "pollsDeferred", (double)r->t.polls_deferred);
  set_num(env, o, "skippedRuns", (double)(r->ended ? r->final_misses : svb_recursion_misses(&r->t)));
  set_bool(env, o, "running", !r->ended && !atomic_load(&r->t.stop));
  return o;
}

static int bpf_deliver(void *ctx, svb_batch *b) {
  bpf_run *r = ctx;
  return napi_call_threadsafe_function(r->run.tsfn, b, napi_tsfn_nonblocking) == napi_ok ? 0 : -1;
}

static void bpf_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  bpf_run *r = context;
  svb_batch *b = data;
  if (b && run_wants_output(env, js_cb, &r->run)) {
    napi_value o, buf;
    void *unused;
    napi_create_object(env, &o);
    napi_create_buffer_copy(env, b->len, b->data, &unused, &buf);
    napi_set_named_property(env, o, "records", buf);
    set_num(env, o, "count", b->count);
    set_bool(env, o, "final", b->final);
    run_call(env, js_cb, &r->run, o);
  }
  svb_batch_free(b);
  /* Only now may the thread hand over the next batch: with one batch at a time the queue is empty
     when this returns, so Node's loop runs its timers and I/O between batches (the ring buffer
     holds what arrives meanwhile). */
  atomic_fetch_sub(&r->t.inflight, 1);
  eventfd_write(r->t.evfd, 1);
}

static void *bpf_thread(void *arg) {
  svb_consume_main(arg);
  return NULL;
}

static void bpf_cleanup(void *arg) { /* the environment ends: no thread outlives it */
  bpf_run *r = arg;
  if (r->run.thread_started && !r->run.joined) {
    run_signal_stop(&r->run);
    run_join(&r->run);
  }
}

static void bpf_finalize(napi_env env, void *data, void *hint) { /* the thread has ended */
  (void)hint;
  bpf_run *r = data;
  napi_remove_env_cleanup_hook(env, bpf_cleanup, r);
  bpf_cleanup(r);
  r->final_misses = svb_recursion_misses(&r->t);
  if (r->recorder) {
    int ncpus = percpu_cpus(r);
    uint64_t *all = calloc((size_t)SVR_N_COUNTERS * r->t.ncpus, sizeof *all);
    if (all && svb_read_percpu(&r->t, SVR_N_COUNTERS, all) == 0)
      for (int k = 0; k < SVR_N_COUNTERS; k++)
        for (int cpu = 0; cpu < ncpus; cpu++) r->final_percpu[(size_t)k * ncpus + cpu] = all[(size_t)k * r->t.ncpus + cpu];
    free(all);
    svr_read_pending(&r->t, ncpus, r->pending_from, r->pending_lost);
  } else {
    svb_read_counters(&r->t, r->final_counters);
  }
  r->ended = 1;
  svb_close(&r->t);
  run_settle(env, &r->run, make_stats(env, r));
  bpf_run_unref(env, r);
}

static void external_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  bpf_run_unref(env, data);
}

static bpf_run *get_run(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || !data) {
    throw_code(env, "TRACE_BPF_INVALID", "not a bpf trace handle");
    return NULL;
  }
  return data;
}

static const void *bytes_of(napi_env env, napi_value obj, const char *name, size_t want_multiple, size_t *n) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return NULL;
  const void *p = typed_data(env, v, napi_uint8_array, n);
  if (!p || (want_multiple && *n % want_multiple)) return NULL;
  return p;
}

/* The reader thread of an opened tracer, and its handle for JS. */
static napi_value start_run(napi_env env, bpf_run *r, napi_value on_batch, svn_thread_opts *topts, int64_t poll_ns, int64_t delay_ns) {
  svn_error e;
  memset(&e, 0, sizeof e);
  r->t.poll_ns = poll_ns;
  r->t.max_delay_ns = delay_ns;
  r->t.max_inflight = 1;
  r->t.deliver = bpf_deliver;
  r->t.ctx = r;
  r->env = env;
  r->refs = 1;
  r->stub.refs = 1;
  r->run.stop = &r->t.stop;
  r->run.evfd = r->t.evfd;
  r->run.late_fault = &r->late_fault;
  napi_value ext;
  napi_create_external(env, r, external_finalize, NULL, &ext);
  if (run_open(env, &r->run, &r->stub, ext, on_batch, "svtrace bpf", bpf_finalize, bpf_call_js) != 0) {
    svb_close(&r->t); /* the external's finalizer frees r */
    return NULL;
  }
  r->refs++; /* the thread's, dropped by bpf_finalize */
  napi_add_env_cleanup_hook(env, bpf_cleanup, r);
  if (run_start(&r->run, topts, bpf_thread, &r->t, &e) != 0) {
    throw_svn(env, &e); /* bpf_finalize closes and settles */
    return NULL;
  }
  return ext;
}

/* The reader's options shared by both engines: ringBytes, pollNs, maxBatchDelayNs, cpu, fifoPriority. */
static int reader_opts(napi_env env, napi_value o, uint32_t *ring_bytes, int64_t *poll_ns, int64_t *delay_ns, svn_thread_opts *topts) {
  int64_t ring = opt_int(env, o, "ringBytes", 16 << 20);
  if (ring < 4096 || ring > (1 << 30) || (ring & (ring - 1))) {
    throw_code(env, "TRACE_BPF_INVALID", "ringBytes must be a power of two from 4096 to 1 GiB");
    return -1;
  }
  *ring_bytes = (uint32_t)ring;
  if (thread_opts(env, o, topts) != 0) return -1;
  topts->name = "svtrace-bpf";
  *poll_ns = opt_int(env, o, "pollNs", 1000000);
  *delay_ns = opt_int(env, o, "maxBatchDelayNs", 10000000);
  if (*poll_ns < 10000 || *poll_ns > 1000000000 || *delay_ns < 0) {
    throw_code(env, "TRACE_BPF_INVALID", "pollNs must be 10 µs..1 s, maxBatchDelayNs >= 0");
    return -1;
  }
  return 0;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  svb_open_opts o;
  memset(&o, 0, sizeof o);
  char path[4096];
  if (opt_string(env, argv[0], "object", path, sizeof path) != 1) {
    throw_code(env, "TRACE_BPF_INVALID", "object must be the path of points.bpf.o");
    return NULL;
  }
  o.object_path = path;
  size_t nc, np, nl, nk;
  const void *config = bytes_of(env, argv[0], "config", 0, &nc);
  const void *pts = bytes_of(env, argv[0], "points", 0, &np);
  const void *lay = bytes_of(env, argv[0], "layouts", sizeof(struct svb_layout), &nl);
  const void *cands = bytes_of(env, argv[0], "cands", 4 + sizeof(struct svb_cands), &nk);
  if (!config || nc != sizeof(struct svb_config) || !pts ||
      np != (SVB_MAX_POINT_ID + 1) * sizeof(struct svb_point) || !lay || !cands) {
    throw_code(env, "TRACE_BPF_INVALID", "config, points, layouts or cands do not have the sizes of points.h");
    return NULL;
  }
  o.config = config;
  o.points = pts;
  o.layouts = lay;
  o.n_layouts = nl / sizeof(struct svb_layout);
  o.cands = cands;
  o.n_cands = nk / (4 + sizeof(struct svb_cands));
  svn_thread_opts topts;
  int64_t poll_ns, delay_ns;
  if (reader_opts(env, argv[0], &o.ring_bytes, &poll_ns, &delay_ns, &topts) != 0) return NULL;
  bpf_run *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  svn_error e;
  memset(&e, 0, sizeof e);
  if (svb_open(&r->t, &o, &e) != 0) {
    free(r);
    throw_svn(env, &e);
    return NULL;
  }
  return start_run(env, r, argv[1], &topts, poll_ns, delay_ns);
}

static napi_value js_recorder_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  char path[4096];
  if (opt_string(env, argv[0], "object", path, sizeof path) != 1) {
    throw_code(env, "TRACE_BPF_INVALID", "object must be the path of recorder.bpf.o");
    return NULL;
  }
  size_t nc;
  const void *config = bytes_of(env, argv[0], "config", 0, &nc);
  if (!config || nc != sizeof(struct svr_config)) {
    throw_code(env, "TRACE_BPF_INVALID", "config does not have the size of recorder.h's svr_config");
    return NULL;
  }
  uint32_t ring_bytes;
  svn_thread_opts topts;
  int64_t poll_ns, delay_ns;
  if (reader_opts(env, argv[0], &ring_bytes, &poll_ns, &delay_ns, &topts) != 0) return NULL;
  topts.name = "svtrace-rec"; /* apart from the points' reader in what the recorder itself records */
  bpf_run *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->recorder = 1;
  svn_error e;
  memset(&e, 0, sizeof e);
  if (svr_open(&r->t, path, config, ring_bytes, &e) != 0) {
    free(r);
    throw_svn(env, &e);
    return NULL;
  }
  return start_run(env, r, argv[1], &topts, poll_ns, delay_ns);
}

static napi_value js_recorder_sizes(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o;
  napi_create_object(env, &o);
  set_num(env, o, "config", sizeof(struct svr_config));
  set_num(env, o, "rec", sizeof(struct svr_rec));
  set_num(env, o, "counters", SVR_N_COUNTERS);
  set_num(env, o, "maxCpus", SVR_MAX_CPUS);
  set_num(env, o, "configCpusOffset", offsetof(struct svr_config, cpus));
  set_num(env, o, "recCommOffset", offsetof(struct svr_rec, comm));
  return o;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  bpf_run *r = get_run(env, argv[0]);
  if (!r) return NULL;
  if (r->ended) return run_ended_promise(env, &r->late_fault, make_stats(env, r));
  napi_value p = run_stop_promise(env, &r->run);
  run_signal_stop(&r->run);
  return p;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  bpf_run *r = get_run(env, argv[0]);
  return r ? make_stats(env, r) : NULL;
}

static napi_value js_sizes(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o;
  napi_create_object(env, &o);
  set_num(env, o, "config", sizeof(struct svb_config));
  set_num(env, o, "point", sizeof(struct svb_point));
  set_num(env, o, "layout", sizeof(struct svb_layout));
  set_num(env, o, "word", sizeof(struct svb_word));
  set_num(env, o, "cands", 4 + sizeof(struct svb_cands));
  set_num(env, o, "recFrame", sizeof(struct svb_rec_frame));
  set_num(env, o, "recUnknown", sizeof(struct svb_rec_unknown));
  set_num(env, o, "maxPointId", SVB_MAX_POINT_ID);
  set_num(env, o, "counters", SVB_N_COUNTERS);
  set_num(env, o, "layoutWordsOffset", offsetof(struct svb_layout, w));
  set_num(env, o, "pointCommOffset", offsetof(struct svb_point, comm));
  set_num(env, o, "configPointsOffset", offsetof(struct svb_config, points));
  return o;
}
static int available = 1;
#else
static int available = 0;
static napi_value unavailable(napi_env env, napi_callback_info info) {
  (void)info;
  throw_code(env, "TRACE_BPF_UNAVAILABLE", "svtrace's addon was built without libbpf");
  return NULL;
}
#define js_open unavailable
#define js_stop unavailable
#define js_stats unavailable
#define js_sizes unavailable
#define js_recorder_open unavailable
#define js_recorder_sizes unavailable
#endif

static napi_value js_available(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_get_boolean(env, available, &v);
  return v;
}

void bpf_trace_register(napi_env env, napi_value exports) {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"bpfTraceAvailable", js_available}, {"bpfTraceSizes", js_sizes}, {"bpfTraceOpen", js_open},
             {"bpfTraceStats", js_stats},         {"bpfTraceStop", js_stop},
             {"bpfRecorderOpen", js_recorder_open}, {"bpfRecorderSizes", js_recorder_sizes}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
}
