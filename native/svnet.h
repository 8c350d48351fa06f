/*
 * svnet.h: the C core of svtrace's packet I/O addon (shared declarations).
 *
 * Three parts, each in its own file, none of which knows Node-API:
 *   sock.c  open an AF_PACKET socket pair on an interface (optionally inside a
 *           named network namespace), BPF filter, timestamping, buffers.
 *   rx.c    the receive thread: recvmmsg batches with kernel + app timestamps.
 *   tx.c    the transmit thread: a lock-free single-producer ring of frames
 *           sent at absolute times, with per-frame TX timestamp reports.
 * addon.c is the Node-API glue around them.
 *
 * Times: every timestamp is int64 ns since the epoch of its clock.
 *   software kernel timestamps: CLOCK_REALTIME (taken by the kernel);
 *   hardware timestamps: the NIC's PTP hardware clock (PHC);
 *   application timestamps: clock_gettime() in our threads.
 */
#ifndef SVNET_H
#define SVNET_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#define SVN_ETH_P_SV 0x88BA
/* Timestamp sources, as stored per frame (Uint8Array in JS). */
#define SVN_TS_NONE 0
#define SVN_TS_SOFTWARE 1
#define SVN_TS_HARDWARE 2
/* Per-frame RX flags. */
#define SVN_RX_FLAG_VLAN_REINSERTED 1 /* 802.1Q tag came from PACKET_AUXDATA */
#define SVN_RX_FLAG_TRUNCATED 2       /* frame was longer than the slot */

#define SVN_ERRNO_MAX 160

/* ---------------------------------------------------------------- errors */

typedef struct svn_error {
  const char *code;      /* stable UPPER_SNAKE code, e.g. "NET_NOT_ROOT" */
  char message[512];     /* what went wrong */
  int err_no;            /* errno of the failing call, 0 if none */
  const char *syscall;   /* name of the failing call, or NULL */
  char interfaces[1024]; /* NET_NO_SUCH_INTERFACE: names that exist, comma-separated */
} svn_error;

void svn_set_error(svn_error *e, const char *code, int err_no, const char *syscall,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---------------------------------------------------------------- sockets */

typedef struct svn_open_opts {
  char ifname[IFNAMSIZ];
  char netns[256]; /* "" = the caller's namespace */
  int hardware;    /* 1 = hardware timestamping (SIOCSHWTSTAMP), 0 = software */
  int rcvbuf_bytes; /* 0 = default */
  int sndbuf_bytes; /* 0 = default */
  int force_key_counter; /* match TX timestamps by counter even if SCM_TS_OPT_ID works */
  int promisc;           /* 1 = promiscuous membership on the receive socket (undone at close) */
} svn_open_opts;

typedef struct svn_sock_info {
  int ifindex;
  int mtu;
  int hard_header_len;
  unsigned char mac[6];
  int running;          /* IFF_RUNNING (carrier) at open */
  int phc_index;        /* -1 when the NIC has no PTP hardware clock */
  int rcvbuf_bytes;     /* effective (as reported by the kernel) */
  int sndbuf_bytes;
  int tx_key_optid;     /* 1 = SCM_TS_OPT_ID (exact), 0 = implicit counter */
  int hw_tx_type;       /* hardware mode: hwtstamp_config after SIOCSHWTSTAMP */
  int hw_rx_filter;
  int promisc;          /* 1 = the receive socket holds a PACKET_MR_PROMISC membership */
} svn_sock_info;

/* Opens the receive socket (bound with protocol 0: receives nothing until
 * svn_rx_bind(on)) and the transmit socket. 0 on success, -1 with *e set. */
int svn_open(const svn_open_opts *o, int *rx_fd, int *tx_fd, svn_sock_info *info, svn_error *e);
/* Starts (on: SV filter, bind ETH_P_ALL) or stops (drop-all filter, discard
 * what is queued) receiving on the receive socket. */
int svn_rx_bind(int fd, int ifindex, int on, svn_error *e);

typedef struct svn_thread_opts {
  int fifo_priority; /* 0 = inherit (SCHED_OTHER); 1..99 = SCHED_FIFO */
  int cpu;           /* -1 = any */
  const char *name;  /* thread name (comm), at most 15 bytes, or NULL */
} svn_thread_opts;

int svn_thread_start(pthread_t *t, const svn_thread_opts *o, void *(*fn)(void *), void *arg,
                     svn_error *e);

int64_t svn_now_ns(clockid_t clock);

/* Both layouts of the SO_TIMESTAMPING control message (old libc headers lack the names). */
#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW 65
#endif
#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD 37
#endif

static inline int64_t ts_ns(const struct timespec *t) {
  return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* ---------------------------------------------------------------- receive */

typedef struct svn_rx_counters {
  _Atomic uint64_t frames, bytes, batches, truncated, vlan_reinserted, ts_missing;
  _Atomic uint64_t recv_errors, kernel_packets, kernel_drops;
  _Atomic int last_errno;
  pthread_mutex_t kstats_lock; /* PACKET_STATISTICS resets on read */
} svn_rx_counters;

typedef struct svn_rx_batch {
  uint32_t count, cap;
  uint8_t *data;
  size_t data_len, data_cap;
  uint32_t *offsets, *lengths;
  int64_t *kernel_ns, *app_ns;
  uint8_t *source, *flags;
  /* cumulative counters when the batch was handed over */
  uint64_t total_frames, total_kernel_drops;
} svn_rx_batch;

typedef struct svn_rx {
  int fd, evfd, hardware;
  uint32_t max_batch_frames;
  int64_t max_delay_ns;
  int max_inflight;
  atomic_int stop;
  atomic_int inflight; /* batches handed to JS and not yet consumed */
  svn_rx_counters *c;
  /* hands a batch over (ownership passes); returns 0, or -1 if refused */
  int (*deliver)(void *ctx, svn_rx_batch *b);
  void *ctx;
} svn_rx;

void *svn_rx_main(void *rx);
void svn_rx_read_kernel_stats(int fd, svn_rx_counters *c);
void svn_rx_batch_free(svn_rx_batch *b);

/* ---------------------------------------------------------------- transmit */

typedef struct svn_tx_desc {
  uint64_t pos; /* monotonic byte position in the data ring */
  int64_t time_ns;
  uint32_t len;
} svn_tx_desc;

typedef struct svn_tx_rec {
  int64_t sched_ns, sent_ns, kernel_ns;
  int32_t err;
  uint32_t key;
  uint8_t source, has_key, ts_done;
} svn_tx_rec;

typedef struct svn_tx_report {
  uint64_t first_index;
  uint32_t count;
  int64_t *sched_ns, *sent_ns, *kernel_ns;
  int32_t *err;
  uint8_t *source;
} svn_tx_report;

/* A frame sent this long after its time makes T0 (its send time) drift from
 * the sample's instant by as much: counted apart from `late` (`lagging`). */
#define SVN_TX_LAG_NS 10000000LL

typedef struct svn_tx_counters {
  _Atomic uint64_t queued, sent, late, lagging, underruns, ts_missing, ts_unmatched;
  _Atomic uint64_t reports_dropped, discarded, send_errors;
  _Atomic int64_t max_late_ns;
  _Atomic uint64_t by_errno[SVN_ERRNO_MAX];
} svn_tx_counters;

typedef struct svn_tx {
  /* configuration, set before the thread starts */
  int fd, evfd, hardware, key_optid;
  clockid_t clock;
  int64_t late_threshold_ns;
  int64_t spin_ns; /* busy-wait this long before each send time (0 = sleep only) */
  uint32_t *key_counter; /* implicit OPT_ID counter, persists per socket */
  /* frame ring: single producer (JS thread), single consumer (TX thread) */
  svn_tx_desc *desc;
  uint64_t desc_cap; /* power of two */
  _Atomic uint64_t desc_head, desc_tail;
  uint8_t *data;
  uint64_t data_cap;
  uint64_t byte_head; /* producer only */
  _Atomic uint64_t byte_tail;
  atomic_int stop, drain;
  /* per-frame records awaiting their kernel timestamp (TX thread only) */
  svn_tx_rec *recs;
  uint64_t rec_cap, rec_head, rec_ready, rec_flushed;
  uint64_t *keymap;
  int64_t last_flush_ns;
  atomic_int inflight;
  int max_inflight;
  int (*deliver)(void *ctx, svn_tx_report *r);
  void *ctx;
  svn_tx_counters c;
  int64_t tai_offset_ns;
} svn_tx;

/* Allocates rings; 0 or -1 (ENOMEM). */
int svn_tx_init(svn_tx *tx, uint64_t queue_frames, uint64_t queue_bytes);
void svn_tx_destroy(svn_tx *tx);
/* Producer side (JS thread). Returns how many frames were accepted. */
uint32_t svn_tx_enqueue(svn_tx *tx, const uint8_t *frames, const uint32_t *offsets,
                        const uint32_t *lengths, const int64_t *times, uint32_t n);
uint64_t svn_tx_pending(svn_tx *tx);
void *svn_tx_main(void *tx);
void svn_tx_report_free(svn_tx_report *r);

#endif
