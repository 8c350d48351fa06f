/*
 * bpf_recorder.c: the loader of the flight recorder's binary engine
 * (bpf/recorder.bpf.c): opens the object, sizes its ring, loads it, writes
 * its config and attaches its raw tracepoints. The reader thread, batches
 * and stop are the points engine's (bpf_points.c): the same svb_tracer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_points.h"

static const char *const RECORDER_TP[SVR_N_PROBES] = {
    "sched_switch", "sched_wakeup", "sched_migrate_task", "softirq_entry",
    "softirq_exit", "irq_handler_entry", "irq_handler_exit",
};

/* Arguments of the sched_switch raw tracepoint in this kernel's BTF (5 from Linux 5.18: ctx, preempt, prev, next, prev_state), or -1. */
static int switch_args(void) {
  struct btf *btf = btf__load_vmlinux_btf();
  if (!btf) return -1;
  int n = -1;
  int id = btf__find_by_name_kind(btf, "btf_trace_sched_switch", BTF_KIND_TYPEDEF);
  const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
  if (t) t = btf__type_by_id(btf, t->type);
  if (t && btf_is_ptr(t)) t = btf__type_by_id(btf, t->type);
  if (t && btf_is_func_proto(t)) n = btf_vlen(t);
  btf__free(btf);
  return n;
}

int svr_open(svb_tracer *t, const char *object_path, const struct svr_config *cfg, uint32_t ring_bytes, svn_error *e) {
  memset(t, 0, sizeof *t);
  t->config_fd = t->counters_fd = t->evfd = -1;
  t->rcfg = *cfg;
  t->rcfg.stop = 0;
  t->rcfg.state_arg = switch_args() >= 5;
  t->stop_cfg = &t->rcfg;
  svb_log_begin();
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", -ncpus, "cannot count the CPUs");
    goto err;
  }
  t->ncpus = ncpus;
  t->obj = bpf_object__open_file(object_path, NULL);
  if (!t->obj) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", errno, "cannot open the recorder's BPF object");
    goto err;
  }
  struct bpf_map *events = bpf_object__find_map_by_name(t->obj, "events");
  if (!events) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", ENOENT, "the recorder's BPF object lacks its ring");
    goto err;
  }
  bpf_map__set_max_entries(events, ring_bytes);
  if (svb_load(t, e) != 0) goto err;
  t->config_fd = bpf_object__find_map_fd_by_name(t->obj, "config");
  t->counters_fd = bpf_object__find_map_fd_by_name(t->obj, "counters");
  uint32_t zero = 0;
  if (t->config_fd < 0 || t->counters_fd < 0 || bpf_map_update_elem(t->config_fd, &zero, &t->rcfg, BPF_ANY) != 0) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", errno ? errno : ENOENT, "cannot write the recorder's config");
    goto err;
  }
  for (int p = 0; p < SVR_N_PROBES; p++) {
    char name[64];
    snprintf(name, sizeof name, "%s_prog", RECORDER_TP[p]);
    struct bpf_program *prog = bpf_object__find_program_by_name(t->obj, name);
    t->links[p] = prog ? bpf_program__attach_raw_tracepoint(prog, RECORDER_TP[p]) : NULL;
    if (!t->links[p]) {
      svb_fail(e, "TRACE_BPF_ATTACH_FAILED", prog ? errno : ENOENT, "cannot attach the recorder to a raw tracepoint");
      goto err;
    }
  }
  if (svb_reader_init(t, e) != 0) goto err;
  svb_log_end();
  return 0;
err:
  svb_log_end();
  svb_close(t);
  return -1;
}

int svr_read_pending(svb_tracer *t, int ncpus, uint64_t *from, uint64_t *lost) {
  memset(from, 0, ncpus * sizeof *from);
  memset(lost, 0, ncpus * sizeof *lost);
  int fd = t->obj ? bpf_object__find_map_fd_by_name(t->obj, "state") : -1;
  if (fd < 0) return -1;
  struct cpu_state_value {
    uint64_t softirq_entry_ns, lost_from_ns, lost;
  } *v = calloc(t->ncpus, sizeof *v);
  if (!v) return -1;
  uint32_t zero = 0;
  int rc = bpf_map_lookup_elem(fd, &zero, v);
  for (int c = 0; rc == 0 && c < ncpus && c < t->ncpus; c++) {
    from[c] = v[c].lost_from_ns;
    lost[c] = v[c].lost;
  }
  free(v);
  return rc;
}
