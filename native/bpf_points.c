/*
 * bpf_points.c: see bpf_points.h. The hot path is in the kernel
 * (bpf/points.bpf.c); here, a thread reads the ring buffer every poll_ns
 * (ring_buffer__consume: no epoll, no wake-up per record, the kernel side
 * writes with BPF_RB_NO_WAKEUP) and hands batches of raw records to JS,
 * one at a time (the next only once JS has handled the last). When JS falls behind, the thread stops
 * reading, the ring fills and the kernel counts every record it drops.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_points.h"

static const char *const PROBE_TP[SVB_N_PROBES] = {
    "netif_receive_skb", "net_dev_start_xmit", "net_dev_queue", "net_dev_xmit",
    "consume_skb",       "kfree_skb",          "skb_copy_datagram_iovec",
};

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  (void)level, (void)fmt, (void)ap;
  return 0;
}

static char libbpf_log[4096];
static size_t libbpf_log_len;

/* Keeps the last lines libbpf printed (the verifier's verdict), for the error message. */
static int keep_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n <= 0) return 0;
  size_t len = strlen(line);
  if (libbpf_log_len + len >= sizeof libbpf_log) libbpf_log_len = 0; /* keep the latest */
  memcpy(libbpf_log + libbpf_log_len, line, len);
  libbpf_log_len += len;
  libbpf_log[libbpf_log_len] = 0;
  return 0;
}

static svb_batch *batch_new(size_t cap) {
  svb_batch *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->data = malloc(cap);
  if (!b->data) {
    free(b);
    return NULL;
  }
  b->cap = cap;
  return b;
}

void svb_batch_free(svb_batch *b) {
  if (!b) return;
  free(b->data);
  free(b);
}

static int on_record(void *ctx, void *data, size_t size) {
  svb_tracer *t = ctx;
  svb_batch *b = t->cur;
  if (b->len + size > b->cap) {
    size_t cap = b->cap * 2 > b->len + size ? b->cap * 2 : b->len + size;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return -ENOMEM; /* this record is lost; it was counted as matched, so lostLines shows it */
    b->data = d;
    b->cap = cap;
  }
  if (b->count == 0) t->cur_started_ns = svn_now_ns(CLOCK_MONOTONIC);
  memcpy(b->data + b->len, data, size);
  b->len += size;
  b->count++;
  t->records++;
  /* a full batch ends this read (the record is kept): it goes to JS first */
  return b->len >= t->max_batch_bytes && !t->stop ? -EAGAIN : 0;
}

void svb_log_begin(void) {
  libbpf_log_len = 0;
  libbpf_set_print(keep_print);
}

void svb_log_end(void) { libbpf_set_print(quiet_print); }

int svb_load(svb_tracer *t, svn_error *e) {
  /* The verifier gives up with EAGAIN when a signal is pending (a profiler's SIGPROF, a child's
     SIGCHLD): those wait until the programs are loaded. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int loaded = bpf_object__load(t->obj);
  int load_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (loaded != 0) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", load_errno, "the kernel refused the BPF program");
    return -1;
  }
  return 0;
}

int svb_reader_init(svb_tracer *t, svn_error *e) {
  t->rb = ring_buffer__new(bpf_object__find_map_fd_by_name(t->obj, "events"), on_record, t, NULL);
  t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  t->max_batch_bytes = 256 << 10; /* about 5 000 records: tens of ms of JS at most */
  t->cur = batch_new(t->max_batch_bytes + 4096);
  if (!t->rb || t->evfd < 0 || !t->cur) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", errno ? errno : ENOMEM, "cannot set up the ring buffer reader");
    return -1;
  }
  return 0;
}

void svb_fail(svn_error *e, const char *code, int err, const char *what) {
  const char *log = libbpf_log_len ? libbpf_log : "";
  size_t n = strlen(log);
  if (n > 300) log += n - 300;
  svn_set_error(e, code, err, NULL, "%s: %s%s%s", what, strerror(err), *log ? "; libbpf: " : "", log);
}

int svb_open(svb_tracer *t, const svb_open_opts *o, svn_error *e) {
  memset(t, 0, sizeof *t);
  t->config_fd = t->counters_fd = t->evfd = -1;
  t->cfg = *o->config;
  t->stop_cfg = &t->cfg;
  svb_log_begin();
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", -ncpus, "cannot count the CPUs");
    return -1;
  }
  t->ncpus = ncpus;
  t->obj = bpf_object__open_file(o->object_path, NULL);
  if (!t->obj) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", errno, "cannot open the BPF object");
    return -1;
  }
  struct bpf_map *layouts = bpf_object__find_map_by_name(t->obj, "layouts");
  struct bpf_map *events = bpf_object__find_map_by_name(t->obj, "events");
  if (!layouts || !events) {
    svb_fail(e, "TRACE_BPF_LOAD_FAILED", ENOENT, "the BPF object lacks its maps");
    goto err;
  }
  bpf_map__set_max_entries(layouts, o->n_layouts ? o->n_layouts : 1);
  bpf_map__set_max_entries(events, o->ring_bytes);
  /* only the probes some point uses are loaded (the verifier's time) */
  for (int p = 0; p < SVB_N_PROBES; p++) {
    char name[64];
    snprintf(name, sizeof name, "%s_prog", PROBE_TP[p]);
    struct bpf_program *prog = bpf_object__find_program_by_name(t->obj, name);
    if (!prog) {
      svb_fail(e, "TRACE_BPF_LOAD_FAILED", ENOENT, "the BPF object lacks a probe program");
      goto err;
    }
    bpf_program__set_autoload(prog, t->cfg.n_points[p] > 0);
  }
  if (svb_load(t, e) != 0) goto err;
  int layouts_fd = bpf_map__fd(layouts);
  int points_fd = bpf_object__find_map_fd_by_name(t->obj, "points");
  int cands_fd = bpf_object__find_map_fd_by_name(t->obj, "cands");
  t->config_fd = bpf_object__find_map_fd_by_name(t->obj, "config");
  t->counters_fd = bpf_object__find_map_fd_by_name(t->obj, "counters");
  uint32_t zero = 0;
  for (uint32_t k = 0; k < o->n_layouts; k++) {
    if (bpf_map_update_elem(layouts_fd, &k, &o->layouts[k], BPF_ANY) != 0) goto map_err;
  }
  for (uint32_t i = 0; i < o->n_cands; i++) {
    const uint8_t *c = o->cands + i * (4 + sizeof(struct svb_cands));
    if (bpf_map_update_elem(cands_fd, c, c + 4, BPF_NOEXIST) != 0) goto map_err;
  }
  for (uint32_t id = 0; id <= SVB_MAX_POINT_ID; id++) {
    if (bpf_map_update_elem(points_fd, &id, &o->points[id], BPF_ANY) != 0) goto map_err;
  }
  if (bpf_map_update_elem(t->config_fd, &zero, &t->cfg, BPF_ANY) != 0) goto map_err;
  for (int p = 0; p < SVB_N_PROBES; p++) {
    if (t->cfg.n_points[p] == 0) continue;
    char name[64];
    snprintf(name, sizeof name, "%s_prog", PROBE_TP[p]);
    t->links[p] = bpf_program__attach_raw_tracepoint(bpf_object__find_program_by_name(t->obj, name), PROBE_TP[p]);
    if (!t->links[p]) {
      int err = errno;
      t->links[p] = NULL;
      svb_fail(e, "TRACE_BPF_ATTACH_FAILED", err, "cannot attach to a raw tracepoint");
      goto err;
    }
  }
  if (svb_reader_init(t, e) != 0) goto err;
  svb_log_end();
  return 0;
map_err:
  svb_fail(e, "TRACE_BPF_LOAD_FAILED", errno, "cannot fill the BPF maps");
err:
  svb_log_end();
  svb_close(t);
  return -1;
}

static int deliver(svb_tracer *t, int final) {
  svb_batch *b = t->cur;
  b->final = final;
  svb_batch *next = batch_new(t->max_batch_bytes + 4096);
  if (!next) return -1;
  atomic_fetch_add(&t->inflight, 1);
  if (t->deliver(t->ctx, b) != 0) {
    atomic_fetch_sub(&t->inflight, 1);
    svb_batch_free(b);
  }
  t->batches++;
  t->cur = next;
  return 0;
}

static void wait_ns(svb_tracer *t, int64_t ns) {
  struct pollfd pfd = {.fd = t->evfd, .events = POLLIN};
  struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
  if (ppoll(&pfd, 1, &ts, NULL) > 0) {
    eventfd_t v;
    eventfd_read(t->evfd, &v);
  }
}

void svb_consume_main(svb_tracer *t) {
  while (!atomic_load(&t->stop)) {
    t->polls++;
    if (atomic_load(&t->inflight) < t->max_inflight) {
      ring_buffer__consume(t->rb);
      svb_batch *b = t->cur;
      if (b->count > 0 && (b->len >= t->max_batch_bytes ||
                           svn_now_ns(CLOCK_MONOTONIC) - t->cur_started_ns >= t->max_delay_ns))
        deliver(t, 0);
    } else {
      t->polls_deferred++;
    }
    wait_ns(t, t->poll_ns);
  }
  /* Stop: nothing matches after the flag; detaching waits for every program still running. */
  uint32_t zero = 0;
  *(uint32_t *)t->stop_cfg = 1; /* both configs begin with `stop` */
  bpf_map_update_elem(t->config_fd, &zero, t->stop_cfg, BPF_ANY);
  for (int p = 0; p < SVB_MAX_LINKS; p++) {
    if (t->links[p]) bpf_link__destroy(t->links[p]);
    t->links[p] = NULL;
  }
  /* The last records, all of them (the batch grows as needed). */
  while (ring_buffer__consume(t->rb) > 0) {
  }
  deliver(t, 1);
}

int svb_read_counters(svb_tracer *t, uint64_t *out) {
  size_t n = (SVB_MAX_POINT_ID + 1) * SVB_N_COUNTERS;
  memset(out, 0, n * sizeof *out);
  if (t->counters_fd < 0) return -1;
  uint64_t *per_cpu = calloc(t->ncpus, sizeof *per_cpu);
  if (!per_cpu) return -1;
  for (uint32_t i = 0; i < n; i++) {
    if (bpf_map_lookup_elem(t->counters_fd, &i, per_cpu) != 0) continue;
    for (int c = 0; c < t->ncpus; c++) out[i] += per_cpu[c];
  }
  free(per_cpu);
  return 0;
}

uint64_t svb_recursion_misses(svb_tracer *t) {
  uint64_t n = 0;
  struct bpf_program *prog;
  if (!t->obj) return 0;
  bpf_object__for_each_program(prog, t->obj) {
    int fd = bpf_program__fd(prog);
    if (fd < 0) continue;
    struct bpf_prog_info info;
    uint32_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) n += info.recursion_misses;
  }
  return n;
}

int svb_read_percpu(svb_tracer *t, uint32_t n, uint64_t *out) {
  memset(out, 0, (size_t)n * t->ncpus * sizeof *out);
  if (t->counters_fd < 0) return -1;
  uint64_t *per_cpu = calloc(t->ncpus, sizeof *per_cpu);
  if (!per_cpu) return -1;
  for (uint32_t i = 0; i < n; i++) {
    if (bpf_map_lookup_elem(t->counters_fd, &i, per_cpu) != 0) continue;
    memcpy(out + (size_t)i * t->ncpus, per_cpu, t->ncpus * sizeof *per_cpu);
  }
  free(per_cpu);
  return 0;
}

void svb_close(svb_tracer *t) {
  for (int p = 0; p < SVB_MAX_LINKS; p++) {
    if (t->links[p]) bpf_link__destroy(t->links[p]);
    t->links[p] = NULL;
  }
  if (t->rb) ring_buffer__free(t->rb);
  t->rb = NULL;
  if (t->obj) bpf_object__close(t->obj);
  t->obj = NULL;
  t->config_fd = t->counters_fd = -1;
  if (t->evfd >= 0) close(t->evfd);
  t->evfd = -1;
  svb_batch_free(t->cur);
  t->cur = NULL;
}
