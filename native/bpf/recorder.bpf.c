// SPDX-License-Identifier: GPL-2.0
/*
 * recorder.bpf.c	The flight recorder of `svtrace explain`, binary engine:
 *		every context switch, wakeup, migration, softirq and hard
 *		IRQ on chosen CPUs, one fixed 64-byte record each, into a
 *		ring buffer read by the addon on a timer.
 *
 * It records what src/explain/recorder.bt (the readable reference) prints,
 * with the same filters and the same rules:
 *   - a switch, softirq or IRQ is kept when it fires on a chosen CPU; a
 *     wakeup when it fires on one or targets one; a migration when it leaves
 *     or enters one (config.cpus, a bitmap; config.all_cpus = every CPU);
 *   - a softirq is one record at its exit with its entry time; one shorter
 *     than config.softirq_min_ns is only counted (most NET_RX runs under SV
 *     load take under a microsecond and explain nothing);
 *   - prev_state is the tracepoint's: 0x100 (TASK_REPORT_MAX) when the task
 *     was preempted, else the one bit of its reported state, from the state
 *     the scheduler passes (Linux 5.18+: the task's own field may already
 *     have been set running by a wakeup on another CPU), else from the task;
 *   - records are written with BPF_RB_NO_WAKEUP: no reader is woken per
 *     event. When the ring is full, the record is counted lost on its CPU
 *     and the CPU remembers since when; its next record that fits is led by
 *     a gap record (from, to, how many), so the reader knows exactly which
 *     span of which CPU cannot be trusted. Nothing is lost silently.
 *
 * Raw tracepoints (the arguments of the kernel's trace call, no tracefs
 * buffer): the cheapest way in. Struct offsets are relocated at load from
 * the kernel's BTF (CO-RE), with fallbacks for fields renamed across
 * versions (task_struct's state, the CPU of a task).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "recorder.h"

struct thread_info {
  __u32 cpu;
} __attribute__((preserve_access_index));

struct task_struct {
  struct thread_info thread_info;
  unsigned int __state;
  int exit_state;
  int prio;
  int pid;
  char comm[16];
} __attribute__((preserve_access_index));

/* Before Linux 5.14 the state was `long state`. */
struct task_struct___old {
  long state;
} __attribute__((preserve_access_index));

/* Linux 5.16 to 5.x kept the CPU in task_struct. */
struct task_struct___cpu {
  unsigned int cpu;
} __attribute__((preserve_access_index));

struct irqaction {
  const char *name;
} __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct svr_config);
} config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SVR_N_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* Per CPU: the entry time of the softirq running, and the records lost since the last one that fit. */
struct cpu_state {
  __u64 softirq_entry_ns;
  __u64 lost_from_ns;
  __u64 lost;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct cpu_state);
} state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 24); /* set at load */
} events SEC(".maps");

static __always_inline struct svr_config *cfg_get(void) {
  __u32 zero = 0;
  struct svr_config *c = bpf_map_lookup_elem(&config, &zero);
  return c && !c->stop ? c : 0;
}

static __always_inline int chosen(const struct svr_config *c, __s64 cpu) {
  if (c->all_cpus) return 1;
  if (cpu < 0 || cpu >= SVR_MAX_CPUS) return 0;
  return (c->cpus[(cpu >> 6) & (SVR_CPU_WORDS - 1)] >> (cpu & 63)) & 1;
}

static __always_inline void count(__u32 kind) {
  __u64 *v = bpf_map_lookup_elem(&counters, &kind);
  if (v) __sync_fetch_and_add(v, 1);
}

/*
 * A record of this CPU, or NULL when the ring is full (then counted lost,
 * and the gap remembered). Leads it with the gap record when some were lost
 * before.
 */
static __always_inline struct svr_rec *reserve(__u8 type, __u64 t, __u32 cpu) {
  __u32 zero = 0;
  struct cpu_state *s = bpf_map_lookup_elem(&state, &zero);
  if (!s) return 0;
  /* The count changes with atomic adds only: a program nested on this CPU (an IRQ's) may lose one meanwhile. */
  __u64 n = s->lost;
  if (n) {
    struct svr_rec *g = bpf_ringbuf_reserve(&events, sizeof *g, 0);
    if (g) {
      __builtin_memset(g, 0, sizeof *g);
      g->type = SVR_REC_GAP;
      g->cpu = cpu;
      g->t_mono_ns = t;
      g->aux = s->lost_from_ns;
      g->prio = (__s32)(n > 0x7fffffff ? 0x7fffffff : n);
      bpf_ringbuf_submit(g, BPF_RB_NO_WAKEUP);
      __sync_fetch_and_add(&s->lost, -(__s64)(n > 0x7fffffff ? 0x7fffffff : n));
    }
  }
  struct svr_rec *r = s->lost ? 0 : bpf_ringbuf_reserve(&events, sizeof *r, 0);
  if (!r) {
    if (s->lost == 0) s->lost_from_ns = t;
    __sync_fetch_and_add(&s->lost, 1);
    count(SVR_C_LOST);
    return 0;
  }
  __builtin_memset(r, 0, sizeof *r);
  r->type = type;
  r->cpu = cpu;
  r->t_mono_ns = t;
  count(SVR_C_EMITTED);
  return r;
}

static __always_inline void submit(struct svr_rec *r) {
  bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

static __always_inline __s32 task_cpu_of(struct task_struct *p) {
  if (bpf_core_field_exists(p->thread_info.cpu)) return BPF_CORE_READ(p, thread_info.cpu);
  struct task_struct___cpu *q = (void *)p;
  return BPF_CORE_READ(q, cpu);
}

static __always_inline __u64 task_state_of(struct task_struct *p) {
  if (bpf_core_field_exists(p->__state)) return BPF_CORE_READ(p, __state);
  struct task_struct___old *q = (void *)p;
  return BPF_CORE_READ(q, state);
}

/* The tracepoint's prev_state (__trace_sched_switch_state): one bit of the reported state, TASK_REPORT_MAX when preempted. */
static __always_inline __u64 report_state(int preempt, __u64 raw, struct task_struct *p) {
  if (preempt) return 0x100;
  if (raw == 0x402) return 0x80;  /* TASK_IDLE: TASK_REPORT_IDLE */
  if (raw == 0x1000) return 0x2;  /* TASK_RTLOCK_WAIT: reported as TASK_UNINTERRUPTIBLE */
  __u64 s = (raw | (__u64)BPF_CORE_READ(p, exit_state)) & 0x7f;
  __u64 bit = 0;
  for (int i = 6; i >= 0; i--) {
    if (s & (1ull << i)) {
      bit = 1ull << i;
      break;
    }
  }
  return bit;
}

SEC("raw_tp/sched_switch")
int sched_switch_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 cpu = bpf_get_smp_processor_id();
  if (!c || !chosen(c, cpu)) return 0;
  struct task_struct *prev = (void *)ctx->args[1], *next = (void *)ctx->args[2];
  struct svr_rec *r = reserve(SVR_REC_SWITCH, t, cpu);
  if (!r) return 0;
  r->pid = BPF_CORE_READ(prev, pid);
  r->prio = BPF_CORE_READ(prev, prio);
  __u64 raw = c->state_arg ? (__u32)ctx->args[3] : task_state_of(prev);
  r->aux = report_state((int)ctx->args[0], raw, prev);
  r->next_pid = BPF_CORE_READ(next, pid);
  r->next_prio = BPF_CORE_READ(next, prio);
  BPF_CORE_READ_INTO(&r->comm, next, comm);
  submit(r);
  return 0;
}

SEC("raw_tp/sched_wakeup")
int sched_wakeup_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 cpu = bpf_get_smp_processor_id();
  if (!c) return 0;
  struct task_struct *p = (void *)ctx->args[0];
  __s32 target = task_cpu_of(p);
  if (!chosen(c, cpu) && !chosen(c, target)) return 0;
  struct svr_rec *r = reserve(SVR_REC_WAKEUP, t, cpu);
  if (!r) return 0;
  r->pid = BPF_CORE_READ(p, pid);
  r->prio = BPF_CORE_READ(p, prio);
  r->cpu2 = target;
  BPF_CORE_READ_INTO(&r->comm, p, comm);
  submit(r);
  return 0;
}

SEC("raw_tp/sched_migrate_task")
int sched_migrate_task_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 cpu = bpf_get_smp_processor_id();
  if (!c) return 0;
  struct task_struct *p = (void *)ctx->args[0];
  __s32 orig = task_cpu_of(p), dest = (__s32)ctx->args[1];
  if (!chosen(c, orig) && !chosen(c, dest)) return 0;
  struct svr_rec *r = reserve(SVR_REC_MIGRATE, t, cpu);
  if (!r) return 0;
  r->pid = BPF_CORE_READ(p, pid);
  r->prio = BPF_CORE_READ(p, prio);
  r->cpu2 = orig;
  r->cpu3 = dest;
  BPF_CORE_READ_INTO(&r->comm, p, comm);
  submit(r);
  return 0;
}

SEC("raw_tp/softirq_entry")
int softirq_entry_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 zero = 0, cpu = bpf_get_smp_processor_id();
  if (!c || !chosen(c, cpu)) return 0;
  struct cpu_state *s = bpf_map_lookup_elem(&state, &zero);
  if (s) s->softirq_entry_ns = t;
  return 0;
}

SEC("raw_tp/softirq_exit")
int softirq_exit_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 zero = 0, cpu = bpf_get_smp_processor_id();
  if (!c || !chosen(c, cpu)) return 0;
  struct cpu_state *s = bpf_map_lookup_elem(&state, &zero);
  if (!s) return 0;
  __u64 entry = s->softirq_entry_ns;
  s->softirq_entry_ns = 0;
  if (entry != 0 && t - entry < c->softirq_min_ns) {
    count(SVR_C_SHORT);
    return 0;
  }
  struct svr_rec *r = reserve(SVR_REC_SOFTIRQ, t, cpu);
  if (!r) return 0;
  r->pid = (__s32)ctx->args[0];
  r->aux = entry;
  submit(r);
  return 0;
}

SEC("raw_tp/irq_handler_entry")
int irq_handler_entry_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 cpu = bpf_get_smp_processor_id();
  if (!c || !chosen(c, cpu)) return 0;
  struct irqaction *a = (void *)ctx->args[1];
  struct svr_rec *r = reserve(SVR_REC_IRQ_ENTRY, t, cpu);
  if (!r) return 0;
  r->pid = (__s32)ctx->args[0];
  const char *name = BPF_CORE_READ(a, name);
  if (name) bpf_probe_read_kernel_str(r->comm, sizeof r->comm, name);
  submit(r);
  return 0;
}

SEC("raw_tp/irq_handler_exit")
int irq_handler_exit_prog(struct bpf_raw_tracepoint_args *ctx) {
  __u64 t = bpf_ktime_get_ns();
  struct svr_config *c = cfg_get();
  __u32 cpu = bpf_get_smp_processor_id();
  if (!c || !chosen(c, cpu)) return 0;
  struct svr_rec *r = reserve(SVR_REC_IRQ_EXIT, t, cpu);
  if (!r) return 0;
  r->pid = (__s32)ctx->args[0];
  submit(r);
  return 0;
}
