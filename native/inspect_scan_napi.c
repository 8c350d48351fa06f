/*
 * inspect_scan_napi.c: the Node-API face of the native inspect engine
 * (src/capture/inspect-native.ts is its only user).
 *   inspectScan(source: string | Uint8Array, wrapAt: number) -> Promise<object>
 * The scan runs on Node's thread pool. A regular file is mapped (mmap with
 * MAP_POPULATE: no copy out of the page cache); a file that shrinks under the
 * mapping raises SIGBUS in the scanning thread, which a handler turns into a
 * fallback instead of a dead process (other threads' SIGBUS keep the
 * previous action). When mapping fails the file is read with read(2). A
 * Uint8Array is a whole capture in memory. The
 * object is `{ fallback: why }` when the TypeScript path must decide, else
 * compact numbers and typed arrays that inspect-native.ts turns into an
 * InspectResult.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inspect_scan.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; /* the Uint8Array source, alive while the scan reads it */
  char *path;
  const uint8_t *data;
  size_t len;
  is_ctx ctx;
} scan_job;

static __thread sigjmp_buf *scan_jmp; /* set while this thread reads a mapping */
static struct sigaction previous_bus;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *uc) {
  if (scan_jmp) siglongjmp(*scan_jmp, 1);
  /* not ours: the previous action, as if this handler were not there */
  if (previous_bus.sa_flags & SA_SIGINFO) {
    previous_bus.sa_sigaction(sig, info, uc);
  } else if (previous_bus.sa_handler != SIG_DFL && previous_bus.sa_handler != SIG_IGN) {
    previous_bus.sa_handler(sig);
  } else {
    signal(SIGBUS, SIG_DFL); /* returning re-runs the faulting access: the default action */
  }
}

static void install_sigbus(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous_bus);
}

/* Scans a mapped file; 0 when it could not be mapped. */
static int scan_mapped(scan_job *j, int fd, size_t size) {
  if (size == 0) return 0;
  void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (m == MAP_FAILED) return 0;
  pthread_once(&bus_once, install_sigbus);
  sigjmp_buf jb;
  if (sigsetjmp(jb, 1) == 0) {
    scan_jmp = &jb;
    is_scan_buffer(&j->ctx, m, size);
  } else {
    j->ctx.fallback = "the file shrank while it was read";
  }
  scan_jmp = NULL;
  munmap(m, size);
  return 1;
}

static void execute(napi_env env, void *arg) {
  (void)env;
  scan_job *j = arg;
  if (!j->path) {
    is_scan_buffer(&j->ctx, j->data, j->len);
    return;
  }
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    j->ctx.fallback = "cannot open";
    return;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    j->ctx.fallback = "not a regular file";
  } else if (!scan_mapped(j, fd, (size_t)st.st_size)) {
    is_scan_fd(&j->ctx, fd);
  }
  close(fd);
}

static napi_value num(napi_env env, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  return x;
}
static void set(napi_env env, napi_value o, const char *name, napi_value v) {
  napi_set_named_property(env, o, name, v);
}
static napi_value f64(napi_env env, const double *src, size_t n) {
  napi_value ab, ta;
  void *data;
  napi_create_arraybuffer(env, n * sizeof(double), &data, &ab);
  if (n) memcpy(data, src, n * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, n, ab, 0, &ta);
  return ta;
}
static napi_value u8(napi_env env, const uint8_t *src, size_t n) {
  napi_value ab, ta;
  void *data;
  napi_create_arraybuffer(env, n, &data, &ab);
  if (n) memcpy(data, src, n);
  napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &ta);
  return ta;
}

static napi_value stream_object(napi_env env, const is_stream *s) {
  napi_value o, b;
  napi_create_object(env, &o);
  set(env, o, "appId", num(env, s->app_id));
  set(env, o, "svId", u8(env, s->svid, s->svid_len));
  set(env, o, "src", u8(env, s->src, 6));
  set(env, o, "dst", u8(env, s->dst, 6));
  napi_get_boolean(env, s->vlan_present, &b);
  set(env, o, "vlanPresent", b);
  set(env, o, "vlanTci", num(env, s->vlan_tci));
  set(env, o, "reserved1", num(env, s->reserved1));
  double t[5] = {(double)s->frames, (double)s->first_sec, (double)s->first_nsec, (double)s->last_sec,
                 (double)s->last_nsec};
  set(env, o, "frames", f64(env, t, 5));
  uint8_t list[256];
  size_t n = 0;
  for (int k = 0; k < 64; k++)
    if (s->asdus_mask >> k & 1) list[n++] = (uint8_t)(k + 1);
  set(env, o, "asdusPerFrame", u8(env, list, n));
  n = 0;
  for (int k = 0; k < 256; k++)
    if (s->synch_mask[k >> 6] >> (k & 63) & 1) list[n++] = (uint8_t)k;
  set(env, o, "smpSynch", u8(env, list, n));
  const is_seq *q = &s->seq;
  double seq[11] = {(double)q->wrap, (double)q->samples, (double)q->missing, (double)q->duplicates,
                    (double)q->out_of_order, (double)q->wraps, (double)q->confrev_changes,
                    (double)q->confrev, (double)q->min_smp, (double)q->max_smp,
                    (double)q->gaps_dropped};
  set(env, o, "seq", f64(env, seq, 11));
  double *g = malloc((size_t)(q->ngaps ? q->ngaps : 1) * 5 * sizeof *g);
  for (int i = 0; g && i < q->ngaps; i++) {
    g[i * 5] = (double)q->gaps[i].from_smp;
    g[i * 5 + 1] = (double)q->gaps[i].to_smp;
    g[i * 5 + 2] = (double)q->gaps[i].iter;
    g[i * 5 + 3] = (double)q->gaps[i].size;
    g[i * 5 + 4] = (double)q->gaps[i].missing;
  }
  set(env, o, "gaps", f64(env, g, g ? (size_t)q->ngaps * 5 : 0));
  free(g);
  napi_value pacing;
  if (s->ngap) pacing = f64(env, s->pacing, 9);
  else napi_get_null(env, &pacing);
  set(env, o, "pacingUs", pacing);
  return o;
}

static napi_value result_object(napi_env env, const is_ctx *c) {
  napi_value o, v;
  napi_create_object(env, &o);
  if (c->fallback) {
    napi_create_string_utf8(env, c->fallback, NAPI_AUTO_LENGTH, &v);
    set(env, o, "fallback", v);
    return o;
  }
  napi_create_string_utf8(env, c->format, NAPI_AUTO_LENGTH, &v);
  set(env, o, "format", v);
  set(env, o, "packets", num(env, (double)c->packets));
  set(env, o, "svFrames", num(env, (double)c->sv_frames));
  set(env, o, "otherFrames", num(env, (double)c->other_frames));
  double by[IS_SCAN_CODES * 2], m[IS_MAX_MALFORMED * 4];
  for (int i = 0; i < c->norder; i++) {
    by[i * 2] = c->malformed_order[i];
    by[i * 2 + 1] = (double)c->malformed_by_code[c->malformed_order[i]];
  }
  set(env, o, "malformedByCode", f64(env, by, (size_t)c->norder * 2));
  for (int i = 0; i < c->nmalformed; i++) {
    m[i * 4] = (double)c->malformed[i].packet;
    m[i * 4 + 1] = c->malformed[i].code;
    m[i * 4 + 2] = (double)c->malformed[i].offset;
    m[i * 4 + 3] = c->malformed[i].cap_len;
  }
  set(env, o, "malformed", f64(env, m, (size_t)c->nmalformed * 4));
  if (c->truncated) {
    double t[3] = {(double)c->trunc_offset, (double)c->trunc_expected, (double)c->trunc_available};
    v = f64(env, t, 3);
  } else {
    napi_get_null(env, &v);
  }
  set(env, o, "truncated", v);
  napi_value arr;
  napi_create_array_with_length(env, c->nstreams, &arr);
  for (size_t i = 0; i < c->nstreams; i++) napi_set_element(env, arr, (uint32_t)i, stream_object(env, c->streams[i]));
  set(env, o, "streams", arr);
  return o;
}

static void complete(napi_env env, napi_status status, void *arg) {
  scan_job *j = arg;
  napi_delete_async_work(env, j->work);
  if (j->keep) napi_delete_reference(env, j->keep);
  if (status != napi_ok || j->ctx.error) {
    napi_value msg, code, err;
    napi_create_string_utf8(env, j->ctx.error ? j->ctx.error : "cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, "INSPECT_NATIVE_FAILED", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  } else {
    napi_resolve_deferred(env, j->deferred, result_object(env, &j->ctx));
  }
  is_free(&j->ctx);
  free(j->path);
  free(j);
}

static napi_value js_inspect_scan(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double wrap = 0;
  if (argc < 2 || napi_get_value_double(env, argv[1], &wrap) != napi_ok || wrap < 0 || wrap > 65536) {
    napi_throw_type_error(env, "INSPECT_NATIVE_ARGUMENT", "inspectScan(source, wrapAt): wrapAt is 0 (learnt) or 2..65536");
    return NULL;
  }
  scan_job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, "INSPECT_NATIVE_FAILED", "out of memory");
    return NULL;
  }
  is_init(&j->ctx, (int64_t)wrap);
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  bool is_ta = false;
  if (t == napi_string) {
    size_t n = 0;
    napi_get_value_string_utf8(env, argv[0], NULL, 0, &n);
    j->path = malloc(n + 1);
    if (j->path) napi_get_value_string_utf8(env, argv[0], j->path, n + 1, &n);
    if (!j->path || strlen(j->path) != n) {
      free(j->path);
      free(j);
      napi_throw_type_error(env, "INSPECT_NATIVE_ARGUMENT", "inspectScan: the path holds a NUL byte");
      return NULL;
    }
  } else if (napi_is_typedarray(env, argv[0], &is_ta) == napi_ok && is_ta) {
    napi_typedarray_type type;
    void *data;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, argv[0], &type, &j->len, &data, &ab, &off);
    if (type != napi_uint8_array) {
      free(j);
      napi_throw_type_error(env, "INSPECT_NATIVE_ARGUMENT", "inspectScan: source must be a path or a Uint8Array");
      return NULL;
    }
    j->data = data ? data : (const uint8_t *)"";
    napi_create_reference(env, argv[0], 1, &j->keep);
  } else {
    free(j);
    napi_throw_type_error(env, "INSPECT_NATIVE_ARGUMENT", "inspectScan: source must be a path or a Uint8Array");
    return NULL;
  }
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "svtrace:inspectScan", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

void inspect_scan_register(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "inspectScan", NAPI_AUTO_LENGTH, js_inspect_scan, NULL, &f);
  napi_set_named_property(env, exports, "inspectScan", f);
}
