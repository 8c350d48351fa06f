/*
 * addon_tx.c: start/feed/stop the transmit thread and turn its reports into JS.
 *
 * txStart(handle, onReport, {clock?, fifoPriority?, cpu?, lateThresholdNs?, spinNs?,
 *                            queueFrames?, queueBytes?})
 *   onReport({firstIndex, count, scheduledNs, sentNs, kernelTxNs: BigInt64Array,
 *             kernelTxSource: Uint8Array, errno: Int32Array})
 * txEnqueue(handle, frames, offsets: Uint32Array, lengths: Uint32Array,
 *           timesNs: BigInt64Array) -> accepted count (a prefix)
 * txPending(handle) -> frames queued, not yet sent
 * txStats(handle) -> tx stats or null
 * txStop(handle, drain) -> Promise<tx stats>, after the last report was delivered
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addon.h"

napi_value make_tx_stats(napi_env env, const svn_tx_counters *c, const char *clock,
                         int64_t tai_offset_ns, uint64_t pending, int running) {
  napi_value o, errs;
  napi_create_object(env, &o);
  napi_create_object(env, &errs);
  uint64_t buffer_full = 0;
  for (int e = 1; e < SVN_ERRNO_MAX; e++) {
    uint64_t n = c->by_errno[e];
    if (!n) continue;
    const char *name = e == SVN_ERRNO_MAX - 1 ? "OTHER" : strerrorname_np(e);
    char fallback[16];
    if (!name) {
      snprintf(fallback, sizeof fallback, "E%d", e);
      name = fallback;
    }
    set_num(env, errs, name, (double)n);
    if (e == EAGAIN || e == ENOBUFS) buffer_full += n;
  }
  set_bool(env, o, "running", running);
  set_str(env, o, "clock", clock);
  set_num(env, o, "taiOffsetNs", (double)tai_offset_ns);
  set_num(env, o, "framesQueued", (double)c->queued);
  set_num(env, o, "framesSent", (double)c->sent);
  set_num(env, o, "pending", (double)pending);
  set_num(env, o, "sendErrorsTotal", (double)c->send_errors);
  set_num(env, o, "sendBufferFull", (double)buffer_full);
  napi_set_named_property(env, o, "sendErrors", errs);
  set_num(env, o, "late", (double)c->late);
  set_num(env, o, "maxLateNs", (double)c->max_late_ns);
  set_num(env, o, "lagging", (double)c->lagging);
  set_num(env, o, "underruns", (double)c->underruns);
  set_num(env, o, "kernelTsMissing", (double)c->ts_missing);
  set_num(env, o, "kernelTsUnmatched", (double)c->ts_unmatched);
  set_num(env, o, "reportsDropped", (double)c->reports_dropped);
  set_num(env, o, "framesDiscarded", (double)c->discarded);
  return o;
}

static napi_value run_stats(napi_env env, tx_run *t) {
  return make_tx_stats(env, &t->tx.c, t->clock_name, t->tx.tai_offset_ns, svn_tx_pending(&t->tx),
                       t->run.thread_started && !t->run.joined && !atomic_load(&t->tx.stop));
}

static int tx_deliver(void *ctx, svn_tx_report *r) {
  tx_run *t = ctx;
  return napi_call_threadsafe_function(t->run.tsfn, r, napi_tsfn_nonblocking) == napi_ok ? 0 : -1;
}

static void tx_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  tx_run *t = context;
  svn_tx_report *r = data;
  atomic_fetch_sub(&t->tx.inflight, 1);
  if (r && run_wants_output(env, js_cb, &t->run)) {
    napi_value o;
    size_t n = r->count;
    napi_create_object(env, &o);
    set_num(env, o, "firstIndex", (double)r->first_index);
    set_num(env, o, "count", (double)n);
    napi_set_named_property(env, o, "scheduledNs",
                            typed_copy(env, napi_bigint64_array, r->sched_ns, n, 8));
    napi_set_named_property(env, o, "sentNs", typed_copy(env, napi_bigint64_array, r->sent_ns, n, 8));
    napi_set_named_property(env, o, "kernelTxNs",
                            typed_copy(env, napi_bigint64_array, r->kernel_ns, n, 8));
    napi_set_named_property(env, o, "kernelTxSource",
                            typed_copy(env, napi_uint8_array, r->source, n, 1));
    napi_set_named_property(env, o, "errno", typed_copy(env, napi_int32_array, r->err, n, 4));
    run_call(env, js_cb, &t->run, o);
  }
  svn_tx_report_free(r);
}

static void *tx_thread(void *arg) {
  svn_tx_main(arg);
  return NULL;
}

void tx_stop_and_join(tx_run *t) {
  if (!t->run.thread_started || t->run.joined) return;
  atomic_store(&t->tx.drain, 0);
  run_signal_stop(&t->run);
  run_join(&t->run);
}

static void tx_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  tx_run *t = data;
  handle *h = t->run.h;
  tx_stop_and_join(t);
  close(t->tx.evfd);
  if (h->tx == t) h->tx = NULL;
  if (t->run.thread_started) {
    memcpy(&h->last_tx, &t->tx.c, sizeof h->last_tx);
    h->last_tx_clock = t->clock_name;
    h->last_tx_tai_offset_ns = t->tx.tai_offset_ns;
    h->have_last_tx = 1;
  }
  run_settle(env, &t->run, make_tx_stats(env, &t->tx.c, t->clock_name, t->tx.tai_offset_ns, 0, 0));
  svn_tx_destroy(&t->tx);
  free(t);
  handle_unref(h);
}

napi_value js_tx_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) != 0) return NULL;
  handle *h = run_target(env, argv[0], 0);
  if (!h) return NULL;
  svn_thread_opts topts;
  if (thread_opts(env, argv[2], &topts) != 0) return NULL;
  topts.name = "svtrace-tx";
  char clock[16];
  if (opt_string(env, argv[2], "clock", clock, sizeof clock) < 0 ||
      (clock[0] && strcmp(clock, "realtime") && strcmp(clock, "tai"))) {
    throw_code(env, "NET_INVALID_OPTION", "clock must be 'realtime' or 'tai'");
    return NULL;
  }
  int tai = !strcmp(clock, "tai");
  int64_t frames = opt_int(env, argv[2], "queueFrames", 131072);
  int64_t bytes = opt_int(env, argv[2], "queueBytes", 16 << 20);
  if (frames < 1 || frames > 1 << 24 || bytes < 1 || bytes > (int64_t)1 << 32) {
    throw_code(env, "NET_INVALID_OPTION", "queueFrames must be 1..16777216, queueBytes 1..4 GiB");
    return NULL;
  }
  tx_run *t = calloc(1, sizeof *t);
  if (!t || svn_tx_init(&t->tx, (uint64_t)frames, (uint64_t)bytes) != 0) {
    free(t);
    throw_code(env, "NET_OUT_OF_MEMORY", "cannot allocate the transmit queue");
    return NULL;
  }
  t->clock_name = tai ? "tai" : "realtime";
  t->tx.fd = h->tx_fd;
  t->tx.hardware = h->hardware;
  t->tx.key_optid = h->info.tx_key_optid;
  t->tx.key_counter = &h->tx_key_counter;
  t->tx.clock = tai ? CLOCK_TAI : CLOCK_REALTIME;
  t->tx.late_threshold_ns = opt_int(env, argv[2], "lateThresholdNs", 100000);
  t->tx.spin_ns = opt_int(env, argv[2], "spinNs", 0);
  if (t->tx.spin_ns < 0 || t->tx.spin_ns > 10000000) t->tx.spin_ns = 0;
  t->tx.deliver = tx_deliver;
  t->tx.ctx = t;
  { /* the kernel's TAI offset is whole seconds: round away the read-out jitter */
    int64_t r1 = svn_now_ns(CLOCK_REALTIME), tai_ns = svn_now_ns(CLOCK_TAI);
    int64_t diff = tai_ns - (r1 + svn_now_ns(CLOCK_REALTIME)) / 2;
    t->tx.tai_offset_ns = (diff >= 0 ? diff + 500000000LL : diff - 500000000LL) / 1000000000LL *
                          1000000000LL;
  }
  t->tx.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  t->run.stop = &t->tx.stop;
  t->run.evfd = t->tx.evfd;
  t->run.late_fault = &h->tx_fault;
  if (t->tx.evfd < 0 || run_open(env, &t->run, h, argv[0], argv[1], "svtrace tx", tx_finalize, tx_call_js) != 0) {
    if (t->tx.evfd >= 0) close(t->tx.evfd);
    svn_tx_destroy(&t->tx);
    free(t);
    return NULL;
  }
  h->tx = t;
  svn_error e;
  memset(&e, 0, sizeof e);
  if (run_start(&t->run, &topts, tx_thread, &t->tx, &e) != 0) {
    h->tx = NULL; /* the finalizer frees the run */
    throw_svn(env, &e);
  }
  return NULL;
}

static tx_run *running_tx(napi_env env, napi_value v) {
  handle *h = get_handle(env, v);
  if (!h) return NULL;
  if (!h->tx || h->closed || atomic_load(&h->tx->tx.stop)) {
    throw_code(env, "NET_TX_NOT_RUNNING", "the transmitter is stopped");
    return NULL;
  }
  return h->tx;
}

napi_value js_tx_enqueue(napi_env env, napi_callback_info info) {
  napi_value argv[5], out;
  if (get_args(env, info, 5, argv) != 0) return NULL;
  tx_run *t = running_tx(env, argv[0]);
  if (!t) return NULL;
  size_t nbytes, noff, nlen, ntimes;
  const uint8_t *frames = typed_data(env, argv[1], napi_uint8_array, &nbytes);
  const uint32_t *offsets = typed_data(env, argv[2], napi_uint32_array, &noff);
  const uint32_t *lengths = typed_data(env, argv[3], napi_uint32_array, &nlen);
  const int64_t *times = typed_data(env, argv[4], napi_bigint64_array, &ntimes);
  if (!frames || !offsets || !lengths || !times || noff != nlen || nlen != ntimes) {
    throw_code(env, "NET_INVALID_ARGUMENT",
               "enqueue(frames: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, "
               "timesNs: BigInt64Array) with equal counts");
    return NULL;
  }
  uint64_t max_len = (uint64_t)t->run.h->info.mtu + 22;
  if (max_len > t->tx.data_cap) max_len = t->tx.data_cap;
  for (size_t i = 0; i < nlen; i++) {
    if (lengths[i] < 14 || lengths[i] > max_len || (uint64_t)offsets[i] + lengths[i] > nbytes) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "frame %zu: offset %u length %u is outside the buffer (%zu bytes) or not "
               "14..%llu bytes long",
               i, offsets[i], lengths[i], nbytes, (unsigned long long)max_len);
      throw_code(env, "NET_INVALID_FRAME", msg);
      return NULL;
    }
  }
  uint32_t n = nlen > UINT32_MAX ? UINT32_MAX : (uint32_t)nlen;
  napi_create_uint32(env, svn_tx_enqueue(&t->tx, frames, offsets, lengths, times, n), &out);
  return out;
}

napi_value js_tx_pending(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  napi_create_double(env, h->tx ? (double)svn_tx_pending(&h->tx->tx) : 0, &out);
  return out;
}

napi_value js_tx_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  if (h->tx) return run_stats(env, h->tx);
  if (h->have_last_tx)
    return make_tx_stats(env, &h->last_tx, h->last_tx_clock, h->last_tx_tai_offset_ns, 0, 0);
  napi_get_null(env, &out);
  return out;
}

napi_value js_tx_stop(napi_env env, napi_callback_info info) {
  napi_value argv[2], p;
  if (get_args(env, info, 2, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  tx_run *t = h->tx;
  if (!t) {
    napi_value stats;
    if (h->have_last_tx)
      stats = make_tx_stats(env, &h->last_tx, h->last_tx_clock, h->last_tx_tai_offset_ns, 0, 0);
    else
      napi_get_null(env, &stats);
    return run_ended_promise(env, &h->tx_fault, stats);
  }
  if (t->run.promise) return run_stop_promise(env, &t->run);
  bool drain = false;
  napi_get_value_bool(env, argv[1], &drain);
  p = run_stop_promise(env, &t->run);
  atomic_store(&t->tx.drain, drain ? 1 : 0);
  run_signal_stop(&t->run);
  return p;
}
