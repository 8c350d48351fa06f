/*
 * napi_util.c: small Node-API helpers (errors, options, typed arrays, promises).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

void throw_svn(napi_env env, const svn_error *e) {
  napi_value code, msg, err, v;
  napi_create_string_utf8(env, e->code ? e->code : "NET_ERROR", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, e->message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &err);
  if (e->err_no) {
    set_num(env, err, "errno", e->err_no);
    const char *name = strerrorname_np(e->err_no);
    if (name) set_str(env, err, "errnoName", name);
  }
  if (e->syscall) set_str(env, err, "syscall", e->syscall);
  if (e->interfaces[0]) {
    napi_value arr;
    napi_create_array(env, &arr);
    char buf[sizeof e->interfaces];
    memcpy(buf, e->interfaces, sizeof buf);
    uint32_t i = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      napi_create_string_utf8(env, tok, NAPI_AUTO_LENGTH, &v);
      napi_set_element(env, arr, i++, v);
    }
    napi_set_named_property(env, err, "interfaces", arr);
  }
  napi_throw(env, err);
}

void throw_code(napi_env env, const char *code, const char *message) {
  svn_error e;
  memset(&e, 0, sizeof e);
  svn_set_error(&e, code, 0, NULL, "%s", message);
  throw_svn(env, &e);
}

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (size_t i = argc; i < want; i++) argv[i] = undef;
  return 0;
}

static int has_value(napi_env env, napi_value obj, const char *name, napi_value *out) {
  napi_valuetype t;
  if (napi_typeof(env, obj, &t) != napi_ok || t != napi_object) return 0;
  if (napi_get_named_property(env, obj, name, out) != napi_ok) return 0;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

int64_t opt_int(napi_env env, napi_value obj, const char *name, int64_t dflt) {
  napi_value v;
  int64_t out;
  if (!has_value(env, obj, name, &v)) return dflt;
  if (napi_get_value_int64(env, v, &out) != napi_ok) return dflt;
  return out;
}

int opt_string(napi_env env, napi_value obj, const char *name, char *out, size_t cap) {
  napi_value v;
  size_t len = 0;
  out[0] = 0;
  if (!has_value(env, obj, name, &v)) return 0;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return -1;
  return len + 1 >= cap ? -1 : 1; /* -1: too long */
}

void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

void set_bigint(napi_env env, napi_value obj, const char *name, int64_t v) {
  napi_value x;
  napi_create_bigint_int64(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

void set_str(napi_env env, napi_value obj, const char *name, const char *v) {
  napi_value x;
  napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &x);
  napi_set_named_property(env, obj, name, x);
}

void set_bool(napi_env env, napi_value obj, const char *name, int v) {
  napi_value x;
  napi_get_boolean(env, v != 0, &x);
  napi_set_named_property(env, obj, name, x);
}

napi_value typed_copy(napi_env env, napi_typedarray_type type, const void *src, size_t n,
                      size_t elem) {
  napi_value ab, ta;
  void *data = NULL;
  napi_create_arraybuffer(env, n * elem, &data, &ab);
  if (n) memcpy(data, src, n * elem);
  napi_create_typedarray(env, type, n, ab, 0, &ta);
  return ta;
}

void *typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t *n) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return NULL;
  napi_typedarray_type type;
  void *data = NULL;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &type, n, &data, &ab, &off);
  if (type != want && !(want == napi_uint8_array && type == napi_uint8_clamped_array)) return NULL;
  return data ? data : (void *)"";
}

napi_value resolved_promise(napi_env env, napi_value value) {
  napi_deferred d;
  napi_value p;
  napi_create_promise(env, &d, &p);
  napi_resolve_deferred(env, d, value);
  return p;
}

napi_value new_promise(napi_env env, napi_deferred *d, napi_ref *keep) {
  napi_value p;
  napi_create_promise(env, d, &p);
  napi_create_reference(env, p, 1, keep);
  return p;
}

int thread_opts(napi_env env, napi_value opts, svn_thread_opts *o) {
  o->fifo_priority = (int)opt_int(env, opts, "fifoPriority", 0);
  o->cpu = (int)opt_int(env, opts, "cpu", -1);
  o->name = NULL;
  if (o->fifo_priority < 0 || o->fifo_priority > 99) {
    throw_code(env, "NET_INVALID_OPTION", "fifoPriority must be an integer from 1 to 99");
    return -1;
  }
  if (o->cpu < -1 || o->cpu >= CPU_SETSIZE) {
    throw_code(env, "NET_INVALID_OPTION", "cpu must be a CPU number (0-based)");
    return -1;
  }
  return 0;
}
