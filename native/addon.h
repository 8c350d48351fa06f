/*
 * addon.h: Node-API glue shared by addon.c (socket lifecycle), addon_rx.c
 * and addon_tx.c (threads and their threadsafe functions), napi_util.c.
 *
 * Lifetime rules:
 *  - A handle is a JS external. It is freed when its refcount drops to 0:
 *    one count for the external (dropped by its GC finalizer) and one per
 *    running RX/TX run (dropped by the run's threadsafe-function finalizer).
 *  - A run also holds a strong napi_ref to the external so GC cannot take a
 *    socket whose threads still run.
 *  - Threads never block on JS: batches go through nonblocking tsfn calls,
 *    bounded by an in-flight counter the JS side decrements.
 *  - The tsfn finalizer (main thread) joins the thread, resolves the stop()
 *    promise and frees the run. close() may join earlier (synchronously).
 */
#ifndef SVNET_ADDON_H
#define SVNET_ADDON_H

#define NAPI_VERSION 8
#include <node_api.h>

#include "svnet.h"

typedef struct handle handle;

/* A native thread handing its output to one JS callback (run.c). */
typedef struct svn_run {
  handle *h;
  pthread_t thread;
  int thread_started, joined;
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  napi_ref promise, keep;
  napi_ref fault; /* what the callback threw, for stop() to reject with */
  napi_ref *late_fault; /* where the fault waits when stop() comes after the thread ended */
  atomic_int *stop; /* the thread's stop flag and wake-up eventfd */
  int evfd;
  void *(*body)(void *);
  void *body_arg;
} svn_run;

typedef struct rx_run {
  svn_run run; /* first: a run is its rx_run */
  svn_rx rx;
} rx_run;

typedef struct tx_run {
  svn_run run; /* first: a run is its tx_run */
  svn_tx tx;
  const char *clock_name;
} tx_run;

struct handle {
  int refs;
  int rx_fd, tx_fd;
  int closed, unrefd, hardware;
  char ifname[IFNAMSIZ];
  svn_sock_info info;
  svn_rx_counters rxc;
  rx_run *rx;
  tx_run *tx;
  uint32_t tx_key_counter;
  uint64_t sync_sent, sync_errors;
  /* counters of the last finished transmitter, for stats() after stop */
  int have_last_tx;
  svn_tx_counters last_tx;
  const char *last_tx_clock;
  int64_t last_tx_tai_offset_ns;
  /* a callback's exception from a run that ended before stop() was called */
  napi_ref rx_fault, tx_fault;
};

/* addon.c */
handle *get_handle(napi_env env, napi_value v);
void handle_unref(handle *h);
void rx_stop_and_join(rx_run *r);
void tx_stop_and_join(tx_run *t);

/* addon_rx.c / addon_tx.c: exported JS functions */
napi_value js_rx_start(napi_env env, napi_callback_info info);
napi_value js_rx_stop(napi_env env, napi_callback_info info);
napi_value js_rx_stats(napi_env env, napi_callback_info info);
napi_value js_tx_start(napi_env env, napi_callback_info info);
napi_value js_tx_enqueue(napi_env env, napi_callback_info info);
napi_value js_tx_pending(napi_env env, napi_callback_info info);
napi_value js_tx_stats(napi_env env, napi_callback_info info);
napi_value js_tx_stop(napi_env env, napi_callback_info info);
napi_value make_rx_stats(napi_env env, handle *h);
napi_value make_tx_stats(napi_env env, const svn_tx_counters *c, const char *clock,
                         int64_t tai_offset_ns, uint64_t pending, int running);

/* run.c */
handle *run_target(napi_env env, napi_value handle_v, int rx);
int run_open(napi_env env, svn_run *run, handle *h, napi_value handle_v, napi_value cb,
             const char *name, napi_finalize finalize, napi_threadsafe_function_call_js call_js);
int run_start(svn_run *run, const svn_thread_opts *o, void *(*body)(void *), void *arg,
              svn_error *e);
void run_signal_stop(svn_run *run);
void run_join(svn_run *run);
napi_value run_stop_promise(napi_env env, svn_run *run);
void run_settle(napi_env env, svn_run *run, napi_value stats);
napi_value run_ended_promise(napi_env env, napi_ref *late_fault, napi_value stats);
int run_wants_output(napi_env env, napi_value cb, const svn_run *run);
void run_call(napi_env env, napi_value cb, svn_run *run, napi_value arg);

/* napi_util.c */
void throw_svn(napi_env env, const svn_error *e);
void throw_code(napi_env env, const char *code, const char *message);
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
int64_t opt_int(napi_env env, napi_value obj, const char *name, int64_t dflt);
int opt_string(napi_env env, napi_value obj, const char *name, char *out, size_t cap);
void set_num(napi_env env, napi_value obj, const char *name, double v);
void set_bigint(napi_env env, napi_value obj, const char *name, int64_t v);
void set_str(napi_env env, napi_value obj, const char *name, const char *v);
void set_bool(napi_env env, napi_value obj, const char *name, int v);
napi_value typed_copy(napi_env env, napi_typedarray_type type, const void *src, size_t n,
                      size_t elem);
void *typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t *n);
napi_value resolved_promise(napi_env env, napi_value value);
napi_value new_promise(napi_env env, napi_deferred *d, napi_ref *keep);
int thread_opts(napi_env env, napi_value opts, svn_thread_opts *o);

#endif
