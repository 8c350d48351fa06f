/*
 * recorder.h: what recorder.bpf.c (in the kernel) and bpf_recorder.c (its
 * loader in the addon) share: the config map's value, the per-CPU counters
 * and the one record type of the ring buffer. Plain fixed-size structs,
 * little-endian, no pointers. src/explain/recorder-bpf.ts packs the config
 * and reads the records with the same sizes and offsets (a test compares them).
 */
#ifndef SVR_RECORDER_H
#define SVR_RECORDER_H

#define SVR_MAX_CPUS 4096                 /* as validateCpus (src/explain/recorder.ts) */
#define SVR_CPU_WORDS (SVR_MAX_CPUS / 64)

/* The kernel probes (raw tracepoints), in the order of the loader's table. */
#define SVR_PROBE_SCHED_SWITCH 0
#define SVR_PROBE_SCHED_WAKEUP 1
#define SVR_PROBE_SCHED_MIGRATE_TASK 2
#define SVR_PROBE_SOFTIRQ_ENTRY 3
#define SVR_PROBE_SOFTIRQ_EXIT 4
#define SVR_PROBE_IRQ_HANDLER_ENTRY 5
#define SVR_PROBE_IRQ_HANDLER_EXIT 6
#define SVR_N_PROBES 7

/* Per-CPU counters (a per-CPU array indexed by kind): read per CPU, not summed. */
#define SVR_C_EMITTED 0 /* event records written into the ring */
#define SVR_C_LOST 1    /* event records the ring had no room for: never silent */
#define SVR_C_SHORT 2   /* softirqs shorter than softirq_min_ns: counted, not written */
#define SVR_N_COUNTERS 3

/* Record types. */
#define SVR_REC_SWITCH 1   /* pid = prev_pid, prio = prev_prio, aux = prev_state, next_pid, next_prio, comm = next_comm */
#define SVR_REC_WAKEUP 2   /* pid, prio, cpu2 = target_cpu, comm */
#define SVR_REC_MIGRATE 3  /* pid, prio, cpu2 = orig_cpu, cpu3 = dest_cpu, comm */
#define SVR_REC_SOFTIRQ 4  /* at its exit: pid = vec, aux = entry time (0: began before the recorder) */
#define SVR_REC_IRQ_ENTRY 5 /* pid = irq, comm = the handler's name */
#define SVR_REC_IRQ_EXIT 6 /* pid = irq */
#define SVR_REC_GAP 7      /* this CPU lost `prio` records from `aux` (ns) to t_mono_ns: written before its next record */

struct svr_config {
  __u32 stop;           /* set at the end: nothing is written after it */
  __u8 all_cpus;        /* 1: every CPU; else the bitmap */
  __u8 state_arg;       /* 1: sched_switch passes prev_state (Linux 5.18+; set by the loader from the kernel's BTF) */
  __u16 pad;
  __u64 softirq_min_ns; /* shorter softirqs are only counted */
  __u64 cpus[SVR_CPU_WORDS];
};

/* One event (64 bytes). The fields' meaning depends on the type (above). */
struct svr_rec {
  __u8 type;
  __u8 pad;
  __u16 cpu;       /* the CPU it fired on */
  __s32 pid;
  __u64 t_mono_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, as the point records */
  __u64 aux;
  __s32 prio;
  __s32 cpu2;
  __s32 cpu3;
  __s32 next_pid;
  __s32 next_prio;
  __u32 pad2;
  char comm[16];
};

#endif
