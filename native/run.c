/*
 * run.c: the Node-API glue of a native thread that hands its output to one
 * JS callback, shared by the receive (addon_rx.c) and transmit (addon_tx.c)
 * threads: the threadsafe function and its references, starting and joining
 * the thread, the stop() promise, and calling the callback.
 *
 * A throw in the callback never reaches Node's uncaught-exception path (a
 * DEP0168 warning repeated for every batch): it is caught here, the thread is
 * asked to stop, no further batch is handed over, and the stop() promise
 * rejects with the exception.
 */
#include <stdlib.h>
#include <sys/eventfd.h>

#include "addon.h"

handle *run_target(napi_env env, napi_value handle_v, int busy_rx) {
  handle *h = get_handle(env, handle_v);
  if (!h) return NULL;
  if (h->closed) {
    throw_code(env, "NET_SOCKET_CLOSED", "the packet socket is closed");
    return NULL;
  }
  if (busy_rx ? h->rx != NULL : h->tx != NULL) {
    throw_code(env, busy_rx ? "NET_RX_RUNNING" : "NET_TX_RUNNING",
               busy_rx ? "this socket is already receiving" : "this socket already has a transmitter");
    return NULL;
  }
  return h;
}

int run_open(napi_env env, svn_run *run, handle *h, napi_value handle_v, napi_value cb,
             const char *name, napi_finalize finalize, napi_threadsafe_function_call_js call_js) {
  napi_value n;
  run->h = h;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &n);
  if (napi_create_threadsafe_function(env, cb, NULL, n, 0, 1, run, finalize, run, call_js,
                                      &run->tsfn) != napi_ok)
    return -1; /* napi set a pending exception (e.g. the callback is not a function) */
  if (h->unrefd) napi_unref_threadsafe_function(env, run->tsfn);
  napi_create_reference(env, handle_v, 1, &run->keep);
  h->refs++;
  return 0;
}

static void *trampoline(void *arg) {
  svn_run *run = arg;
  run->body(run->body_arg);
  napi_release_threadsafe_function(run->tsfn, napi_tsfn_release);
  return NULL;
}

int run_start(svn_run *run, const svn_thread_opts *o, void *(*body)(void *), void *arg,
              svn_error *e) {
  run->body = body;
  run->body_arg = arg;
  if (svn_thread_start(&run->thread, o, trampoline, run, e) != 0) {
    napi_release_threadsafe_function(run->tsfn, napi_tsfn_release); /* the finalizer frees */
    return -1;
  }
  run->thread_started = 1;
  return 0;
}

void run_signal_stop(svn_run *run) {
  atomic_store(run->stop, 1);
  eventfd_write(run->evfd, 1);
}

void run_join(svn_run *run) {
  if (!run->thread_started || run->joined) return;
  pthread_join(run->thread, NULL);
  run->joined = 1;
}

napi_value run_stop_promise(napi_env env, svn_run *run) {
  napi_value p;
  if (run->promise) {
    napi_get_reference_value(env, run->promise, &p);
    return p;
  }
  return new_promise(env, &run->deferred, &run->promise);
}

void run_settle(napi_env env, svn_run *run, napi_value stats) {
  if (run->deferred) {
    if (run->fault) {
      napi_value err;
      napi_get_reference_value(env, run->fault, &err);
      napi_reject_deferred(env, run->deferred, err);
    } else {
      napi_resolve_deferred(env, run->deferred, stats);
    }
  }
  if (run->fault && !run->deferred && run->late_fault && !*run->late_fault) *run->late_fault = run->fault;
  else if (run->fault) napi_delete_reference(env, run->fault);
  if (run->promise) napi_delete_reference(env, run->promise);
  if (run->keep) napi_delete_reference(env, run->keep);
}

int run_wants_output(napi_env env, napi_value cb, const svn_run *run) {
  return env && cb && !run->h->closed && !run->fault;
}

void run_call(napi_env env, napi_value cb, svn_run *run, napi_value arg) {
  napi_value undef;
  napi_get_undefined(env, &undef);
  if (napi_call_function(env, undef, cb, 1, &arg, NULL) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_create_reference(env, err, 1, &run->fault);
    run_signal_stop(run);
  }
}

/* stop() after the run ended: its stats, or the exception its callback threw. */
napi_value run_ended_promise(napi_env env, napi_ref *late_fault, napi_value stats) {
  if (!*late_fault) return resolved_promise(env, stats);
  napi_value p, err;
  napi_deferred d;
  napi_create_promise(env, &d, &p);
  napi_get_reference_value(env, *late_fault, &err);
  napi_reject_deferred(env, d, err);
  napi_delete_reference(env, *late_fault);
  *late_fault = NULL;
  return p;
}
