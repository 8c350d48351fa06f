/*
 * addon_rx.c: start/stop the receive thread and turn its batches into JS.
 *
 * rxStart(handle, onBatch, {maxBatchFrames?, maxBatchDelayNs?, fifoPriority?, cpu?})
 *   onBatch({count, frames: Buffer, offsets: Uint32Array, lengths: Uint32Array,
 *            kernelTsNs: BigInt64Array, kernelTsSource: Uint8Array,
 *            appTsNs: BigInt64Array, flags: Uint8Array, totalFrames, totalKernelDrops})
 * rxStop(handle) -> Promise<rx stats>, resolved after the last batch was delivered
 * rxStats(handle) -> rx stats
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addon.h"

napi_value make_rx_stats(napi_env env, handle *h) {
  napi_value o;
  svn_rx_counters *c = &h->rxc;
  if (!h->closed && h->rx) svn_rx_read_kernel_stats(h->rx_fd, c);
  napi_create_object(env, &o);
  set_bool(env, o, "running", h->rx && !h->rx->run.joined && !atomic_load(&h->rx->rx.stop));
  set_num(env, o, "frames", (double)c->frames);
  set_num(env, o, "bytes", (double)c->bytes);
  set_num(env, o, "batches", (double)c->batches);
  set_num(env, o, "kernelPackets", (double)c->kernel_packets);
  set_num(env, o, "kernelDrops", (double)c->kernel_drops);
  set_num(env, o, "truncated", (double)c->truncated);
  set_num(env, o, "vlanReinserted", (double)c->vlan_reinserted);
  set_num(env, o, "kernelTsMissing", (double)c->ts_missing);
  set_num(env, o, "recvErrors", (double)c->recv_errors);
  set_num(env, o, "lastErrno", c->last_errno);
  return o;
}

static int rx_deliver(void *ctx, svn_rx_batch *b) {
  rx_run *r = ctx;
  return napi_call_threadsafe_function(r->run.tsfn, b, napi_tsfn_nonblocking) == napi_ok ? 0 : -1;
}

static napi_value make_batch(napi_env env, const svn_rx_batch *b) {
  napi_value o, buf;
  size_t n = b->count;
  void *unused;
  napi_create_object(env, &o);
  set_num(env, o, "count", (double)n);
  napi_create_buffer_copy(env, b->data_len, b->data, &unused, &buf);
  napi_set_named_property(env, o, "frames", buf);
  napi_set_named_property(env, o, "offsets", typed_copy(env, napi_uint32_array, b->offsets, n, 4));
  napi_set_named_property(env, o, "lengths", typed_copy(env, napi_uint32_array, b->lengths, n, 4));
  napi_set_named_property(env, o, "kernelTsNs",
                          typed_copy(env, napi_bigint64_array, b->kernel_ns, n, 8));
  napi_set_named_property(env, o, "kernelTsSource",
                          typed_copy(env, napi_uint8_array, b->source, n, 1));
  napi_set_named_property(env, o, "appTsNs", typed_copy(env, napi_bigint64_array, b->app_ns, n, 8));
  napi_set_named_property(env, o, "flags", typed_copy(env, napi_uint8_array, b->flags, n, 1));
  set_num(env, o, "totalFrames", (double)b->total_frames);
  set_num(env, o, "totalKernelDrops", (double)b->total_kernel_drops);
  return o;
}

static void rx_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  rx_run *r = context;
  svn_rx_batch *b = data;
  atomic_fetch_sub(&r->rx.inflight, 1);
  eventfd_write(r->rx.evfd, 1); /* the thread may be waiting for room */
  if (b && run_wants_output(env, js_cb, &r->run)) run_call(env, js_cb, &r->run, make_batch(env, b));
  svn_rx_batch_free(b);
}

static void *rx_thread(void *arg) {
  svn_rx_main(arg);
  return NULL;
}

void rx_stop_and_join(rx_run *r) {
  if (!r->run.thread_started || r->run.joined) return;
  run_signal_stop(&r->run);
  run_join(&r->run);
}

static void rx_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  rx_run *r = data;
  handle *h = r->run.h;
  rx_stop_and_join(r);
  close(r->rx.evfd);
  if (h->rx == r) { /* not if a failed start already gave the socket back */
    h->rx = NULL;
    if (!h->closed) {
      svn_error e;
      svn_rx_read_kernel_stats(h->rx_fd, &h->rxc);
      svn_rx_bind(h->rx_fd, h->info.ifindex, 0, &e);
    }
  }
  run_settle(env, &r->run, make_rx_stats(env, h));
  free(r);
  handle_unref(h);
}

napi_value js_rx_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) != 0) return NULL;
  handle *h = run_target(env, argv[0], 1);
  if (!h) return NULL;
  svn_thread_opts topts;
  if (thread_opts(env, argv[2], &topts) != 0) return NULL;
  topts.name = "svtrace-rx";
  int64_t max_frames = opt_int(env, argv[2], "maxBatchFrames", 4096);
  int64_t delay_ns = opt_int(env, argv[2], "maxBatchDelayNs", 10000000);
  if (max_frames < 1 || max_frames > 1 << 20 || delay_ns < 0) {
    throw_code(env, "NET_INVALID_OPTION", "maxBatchFrames must be 1..1048576, maxBatchDelayNs >= 0");
    return NULL;
  }
  svn_error e;
  memset(&e, 0, sizeof e);
  rx_run *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->rx.fd = h->rx_fd;
  r->rx.hardware = h->hardware;
  r->rx.max_batch_frames = (uint32_t)max_frames;
  r->rx.max_delay_ns = delay_ns;
  r->rx.max_inflight = 4;
  r->rx.c = &h->rxc;
  r->rx.deliver = rx_deliver;
  r->rx.ctx = r;
  r->rx.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->rx.evfd < 0 || svn_rx_bind(h->rx_fd, h->info.ifindex, 1, &e) != 0) {
    if (r->rx.evfd >= 0) close(r->rx.evfd);
    free(r);
    if (!e.code) svn_set_error(&e, "NET_SOCKET_FAILED", 0, "eventfd", "eventfd failed");
    throw_svn(env, &e);
    return NULL;
  }
  r->run.stop = &r->rx.stop;
  r->run.evfd = r->rx.evfd;
  r->run.late_fault = &h->rx_fault;
  if (run_open(env, &r->run, h, argv[0], argv[1], "svtrace rx", rx_finalize, rx_call_js) != 0) {
    close(r->rx.evfd);
    svn_rx_bind(h->rx_fd, h->info.ifindex, 0, &e);
    free(r);
    return NULL;
  }
  h->rx = r;
  if (run_start(&r->run, &topts, rx_thread, &r->rx, &e) != 0) {
    svn_error e2;
    h->rx = NULL; /* the finalizer frees the run */
    svn_rx_bind(h->rx_fd, h->info.ifindex, 0, &e2);
    throw_svn(env, &e);
  }
  return NULL;
}

napi_value js_rx_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  rx_run *r = h->rx;
  if (!r) return run_ended_promise(env, &h->rx_fault, make_rx_stats(env, h));
  napi_value p = run_stop_promise(env, &r->run);
  run_signal_stop(&r->run);
  return p;
}

napi_value js_rx_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  return h ? make_rx_stats(env, h) : NULL;
}
