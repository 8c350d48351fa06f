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
  set_bool(env, o, "running", h->rx && !h->rx->joined && !atomic_load(&h->rx->rx.stop));
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
  return napi_call_threadsafe_function(r->tsfn, b, napi_tsfn_nonblocking) == napi_ok ? 0 : -1;
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
  if (env && js_cb && b && !r->h->closed) {
    napi_value arg = make_batch(env, b), undef;
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, js_cb, 1, &arg, NULL); /* a throw becomes uncaught */
  }
  svn_rx_batch_free(b);
}

static void *rx_thread(void *arg) {
  rx_run *r = arg;
  svn_rx_main(&r->rx);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  return NULL;
}

void rx_stop_and_join(rx_run *r) {
  if (!r->thread_started || r->joined) return;
  atomic_store(&r->rx.stop, 1);
  eventfd_write(r->rx.evfd, 1);
  pthread_join(r->thread, NULL);
  r->joined = 1;
}

static void rx_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  rx_run *r = data;
  handle *h = r->h;
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
  if (r->deferred) napi_resolve_deferred(env, r->deferred, make_rx_stats(env, h));
  if (r->promise) napi_delete_reference(env, r->promise);
  if (r->keep) napi_delete_reference(env, r->keep);
  free(r);
  handle_unref(h);
}

napi_value js_rx_start(napi_env env, napi_callback_info info) {
  napi_value argv[3], name;
  if (get_args(env, info, 3, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  if (h->closed) {
    throw_code(env, "NET_SOCKET_CLOSED", "the packet socket is closed");
    return NULL;
  }
  if (h->rx) {
    throw_code(env, "NET_RX_RUNNING", "this socket is already receiving");
    return NULL;
  }
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
  r->h = h;
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
  napi_create_string_utf8(env, "svtrace rx", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, r, rx_finalize, r,
                                      rx_call_js, &r->tsfn) != napi_ok) {
    close(r->rx.evfd);
    svn_rx_bind(h->rx_fd, h->info.ifindex, 0, &e);
    free(r);
    return NULL; /* napi set a pending exception (e.g. callback not a function) */
  }
  if (h->unrefd) napi_unref_threadsafe_function(env, r->tsfn);
  napi_create_reference(env, argv[0], 1, &r->keep);
  h->refs++;
  h->rx = r;
  if (svn_thread_start(&r->thread, &topts, rx_thread, r, &e) != 0) {
    svn_error e2;
    h->rx = NULL; /* the finalizer frees the run */
    svn_rx_bind(h->rx_fd, h->info.ifindex, 0, &e2);
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    throw_svn(env, &e);
    return NULL;
  }
  r->thread_started = 1;
  return NULL;
}

napi_value js_rx_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1], p;
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  rx_run *r = h->rx;
  if (!r) return resolved_promise(env, make_rx_stats(env, h));
  if (r->promise) {
    napi_get_reference_value(env, r->promise, &p);
    return p;
  }
  p = new_promise(env, &r->deferred, &r->promise);
  atomic_store(&r->rx.stop, 1);
  eventfd_write(r->rx.evfd, 1);
  return p;
}

napi_value js_rx_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  return h ? make_rx_stats(env, h) : NULL;
}
