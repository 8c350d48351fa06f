/*
 * addon.c: svtrace_net, the Node-API face of the packet I/O core.
 *
 * JS functions (the TypeScript wrapper in src/net/ is the public API):
 *   open({ifname, netns?, hardware?, rcvBufBytes?, sndBufBytes?, forceKeyCounter?, promisc?})
 *     -> {handle, info}
 *   close(handle)                 stop threads (undelivered batches are dropped), close fds
 *   send(handle, Uint8Array)      one frame now, from the JS thread
 *   stats(handle)                 {rx, tx, syncSent, syncErrors}
 *   ref(handle) / unref(handle)   whether running threads keep the event loop alive
 *   clockNowNs('realtime'|'tai'|'monotonic') -> bigint
 *   rxStart/rxStop/rxStats        see addon_rx.c
 *   txStart/txEnqueue/txPending/txStats/txStop   see addon_tx.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"

static void env_cleanup(void *arg);

void handle_unref(handle *h) {
  if (--h->refs > 0) return;
  pthread_mutex_destroy(&h->rxc.kstats_lock);
  free(h);
}

static void close_all(handle *h) {
  if (h->closed) return;
  h->closed = 1;
  if (h->rx) rx_stop_and_join(h->rx);
  if (h->tx) tx_stop_and_join(h->tx);
  close(h->rx_fd);
  close(h->tx_fd);
}

static void env_cleanup(void *arg) { close_all(arg); }

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  handle *h = data;
  napi_remove_env_cleanup_hook(env, env_cleanup, h);
  close_all(h);
  if (h->rx_fault) napi_delete_reference(env, h->rx_fault);
  if (h->tx_fault) napi_delete_reference(env, h->tx_fault);
  h->rx_fault = h->tx_fault = NULL;
  handle_unref(h);
}

handle *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || !data) {
    throw_code(env, "NET_INVALID_ARGUMENT", "not a packet socket handle");
    return NULL;
  }
  return data;
}

static napi_value make_info(napi_env env, handle *h) {
  napi_value o;
  char mac[18];
  const unsigned char *m = h->info.mac;
  snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  napi_create_object(env, &o);
  set_num(env, o, "ifindex", h->info.ifindex);
  set_num(env, o, "mtu", h->info.mtu);
  set_str(env, o, "macAddress", mac);
  set_bool(env, o, "carrier", h->info.running);
  set_num(env, o, "phcIndex", h->info.phc_index);
  set_num(env, o, "rcvBufBytes", h->info.rcvbuf_bytes);
  set_num(env, o, "sndBufBytes", h->info.sndbuf_bytes);
  set_str(env, o, "txKeyMode", h->info.tx_key_optid ? "scm-ts-opt-id" : "counter");
  set_num(env, o, "hwTxType", h->info.hw_tx_type);
  set_num(env, o, "hwRxFilter", h->info.hw_rx_filter);
  set_bool(env, o, "promiscuous", h->info.promisc);
  return o;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[1], ext, out;
  if (get_args(env, info, 1, argv) != 0) return NULL;
  svn_open_opts o;
  memset(&o, 0, sizeof o);
  if (opt_string(env, argv[0], "ifname", o.ifname, sizeof o.ifname) != 1 || !o.ifname[0]) {
    throw_code(env, "NET_INVALID_OPTION", "ifname must be an interface name of 1 to 15 bytes");
    return NULL;
  }
  if (opt_string(env, argv[0], "netns", o.netns, sizeof o.netns) < 0 || strchr(o.netns, '/')) {
    throw_code(env, "NET_INVALID_OPTION", "netns must be a namespace name without '/'");
    return NULL;
  }
  o.hardware = opt_int(env, argv[0], "hardware", 0) != 0;
  o.rcvbuf_bytes = (int)opt_int(env, argv[0], "rcvBufBytes", 0);
  o.sndbuf_bytes = (int)opt_int(env, argv[0], "sndBufBytes", 0);
  o.force_key_counter = opt_int(env, argv[0], "forceKeyCounter", 0) != 0;
  o.promisc = opt_int(env, argv[0], "promisc", 0) != 0;

  svn_error e;
  memset(&e, 0, sizeof e);
  handle *h = calloc(1, sizeof *h);
  if (!h) {
    throw_code(env, "NET_SOCKET_FAILED", "out of memory");
    return NULL;
  }
  if (svn_open(&o, &h->rx_fd, &h->tx_fd, &h->info, &e) != 0) {
    free(h);
    throw_svn(env, &e);
    return NULL;
  }
  h->refs = 1;
  h->hardware = o.hardware;
  memcpy(h->ifname, o.ifname, sizeof h->ifname);
  pthread_mutex_init(&h->rxc.kstats_lock, NULL);
  napi_create_external(env, h, handle_finalize, NULL, &ext);
  napi_add_env_cleanup_hook(env, env_cleanup, h);
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "handle", ext);
  napi_set_named_property(env, out, "info", make_info(env, h));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (h) close_all(h);
  return NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  size_t len = 0;
  const uint8_t *frame = typed_data(env, argv[1], napi_uint8_array, &len);
  if (!frame) {
    throw_code(env, "NET_INVALID_ARGUMENT", "frame must be a Uint8Array or Buffer");
    return NULL;
  }
  if (h->closed) {
    throw_code(env, "NET_SOCKET_CLOSED", "the packet socket is closed");
    return NULL;
  }
  if (send(h->tx_fd, frame, len, MSG_DONTWAIT) >= 0) {
    h->sync_sent++;
    return NULL;
  }
  int err = errno;
  h->sync_errors++;
  svn_error e;
  memset(&e, 0, sizeof e);
  const char *code = err == EAGAIN || err == ENOBUFS ? "NET_SEND_BUFFER_FULL"
                     : err == ENETDOWN             ? "NET_INTERFACE_DOWN"
                                                   : "NET_SEND_FAILED";
  svn_set_error(&e, code, err, "send", "sending a %zu-byte frame on '%s' failed: %s", len,
                h->ifname, strerror(err));
  throw_svn(env, &e);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], o, tx;
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "rx", make_rx_stats(env, h));
  if (h->tx)
    tx = make_tx_stats(env, &h->tx->tx.c, h->tx->clock_name, h->tx->tx.tai_offset_ns,
                       svn_tx_pending(&h->tx->tx), !h->tx->run.joined);
  else if (h->have_last_tx)
    tx = make_tx_stats(env, &h->last_tx, h->last_tx_clock, h->last_tx_tai_offset_ns, 0, 0);
  else
    napi_get_null(env, &tx);
  napi_set_named_property(env, o, "tx", tx);
  set_num(env, o, "syncSent", (double)h->sync_sent);
  set_num(env, o, "syncErrors", (double)h->sync_errors);
  return o;
}

static napi_value js_set_ref(napi_env env, napi_callback_info info, int ref) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) != 0) return NULL;
  handle *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  h->unrefd = !ref;
  napi_threadsafe_function fns[2] = {h->rx ? h->rx->run.tsfn : NULL, h->tx ? h->tx->run.tsfn : NULL};
  for (int i = 0; i < 2; i++) {
    if (!fns[i]) continue;
    if (ref)
      napi_ref_threadsafe_function(env, fns[i]);
    else
      napi_unref_threadsafe_function(env, fns[i]);
  }
  return NULL;
}
static napi_value js_ref(napi_env env, napi_callback_info info) { return js_set_ref(env, info, 1); }
static napi_value js_unref(napi_env env, napi_callback_info info) {
  return js_set_ref(env, info, 0);
}

static napi_value js_clock_now(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  char name[16] = "realtime";
  if (get_args(env, info, 1, argv) != 0) return NULL;
  size_t len;
  napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len);
  clockid_t c = !strcmp(name, "tai") ? CLOCK_TAI
                : !strcmp(name, "monotonic") ? CLOCK_MONOTONIC
                                             : CLOCK_REALTIME;
  napi_create_bigint_int64(env, svn_now_ns(c), &out);
  return out;
}

void analyze_join_register(napi_env env, napi_value exports); /* analyze_join.c */
void inspect_scan_register(napi_env env, napi_value exports); /* inspect_scan_napi.c */
void bpf_trace_register(napi_env env, napi_value exports);    /* addon_bpf.c */

static napi_value init(napi_env env, napi_value exports) {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"open", js_open},           {"close", js_close},         {"send", js_send},
      {"stats", js_stats},         {"ref", js_ref},             {"unref", js_unref},
      {"clockNowNs", js_clock_now}, {"rxStart", js_rx_start},   {"rxStop", js_rx_stop},
      {"rxStats", js_rx_stats},    {"txStart", js_tx_start},    {"txEnqueue", js_tx_enqueue},
      {"txPending", js_tx_pending}, {"txStats", js_tx_stats},   {"txStop", js_tx_stop},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  analyze_join_register(env, exports);
  inspect_scan_register(env, exports);
  bpf_trace_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
