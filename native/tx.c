/*
 * tx.c: the transmit thread and its frame ring.
 *
 * JS (one producer) copies frames with their absolute send times into a
 * byte ring plus a descriptor ring; this thread (one consumer) takes them in
 * order, sleeps with clock_nanosleep(TIMER_ABSTIME) until each time, reads
 * the clock (the "sent" application timestamp) and sends that frame and the
 * ones after it that are already due (64 streams sampled at the same instant,
 * or a backlog) in one sendmmsg(MSG_DONTWAIT): a full send buffer is an
 * error that is counted per frame, never a stall.
 *
 * Each send asks (cmsg SO_TIMESTAMPING) for a TX timestamp; the kernel
 * returns it on the error queue with a key (SOF_TIMESTAMPING_OPT_ID). On
 * Linux >= 6.13 we set the key per send (SCM_TS_OPT_ID = frame index), exact.
 * Older kernels number the sends that reach the driver themselves; we mirror
 * that counter (a send consumes a key when it succeeds or fails with ENOBUFS
 * in the driver).
 *
 * One record per frame waits in a ring until its timestamp came (or 200 ms
 * passed, then the kernel timestamp is 0 and counted missing); records are
 * handed to JS in order, in batches (deliver), at most every 10 ms or 4096.
 */
#include "svnet.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#ifndef SCM_TS_OPT_ID
#define SCM_TS_OPT_ID 81
#endif

#define REC_CAP 65536u             /* records awaiting a timestamp / JS */
#define FLUSH_FRAMES 4096u         /* hand over at least this many ... */
#define FLUSH_NS 10000000LL        /* ... or after 10 ms */
#define TS_GRACE_NS 200000000LL    /* give up on a kernel timestamp after 200 ms */
#define SLEEP_CHUNK_NS 10000000LL  /* re-check stop at least every 10 ms */
#define HOUSEKEEP_GAP_NS 50000LL   /* do housekeeping when the next frame is this far */
#define HOUSEKEEP_EVERY 32u        /* ... or after this many frames */
#define ERRQ_VLEN 32

enum { FLUSH_IF_DUE, FLUSH_READY, FLUSH_ALL };

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}


int svn_tx_init(svn_tx *tx, uint64_t queue_frames, uint64_t queue_bytes) {
  uint64_t cap = 1024;
  while (cap < queue_frames) cap <<= 1;
  tx->desc_cap = cap;
  tx->data_cap = queue_bytes < 65536 ? 65536 : queue_bytes;
  tx->rec_cap = REC_CAP;
  tx->desc = calloc(cap, sizeof *tx->desc);
  tx->data = malloc(tx->data_cap);
  tx->recs = calloc(REC_CAP, sizeof *tx->recs);
  tx->keymap = calloc(REC_CAP, sizeof *tx->keymap);
  tx->max_inflight = 1024;
  if (!tx->desc || !tx->data || !tx->recs || !tx->keymap) {
    svn_tx_destroy(tx);
    return -1;
  }
  return 0;
}

void svn_tx_destroy(svn_tx *tx) {
  free(tx->desc);
  free(tx->data);
  free(tx->recs);
  free(tx->keymap);
  tx->desc = NULL;
  tx->data = NULL;
  tx->recs = NULL;
  tx->keymap = NULL;
}

void svn_tx_report_free(svn_tx_report *r) { free(r); }

uint32_t svn_tx_enqueue(svn_tx *tx, const uint8_t *frames, const uint32_t *offsets,
                        const uint32_t *lengths, const int64_t *times, uint32_t n) {
  uint64_t head = atomic_load_explicit(&tx->desc_head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&tx->desc_tail, memory_order_acquire);
  uint64_t btail = atomic_load_explicit(&tx->byte_tail, memory_order_acquire);
  uint32_t i;
  for (i = 0; i < n; i++) {
    if (head - tail >= tx->desc_cap) break;
    uint32_t len = lengths[i];
    uint64_t pos = tx->byte_head, phys = pos % tx->data_cap;
    if (phys + len > tx->data_cap) pos += tx->data_cap - phys; /* do not straddle the end */
    if (pos + len - btail > tx->data_cap) break;
    memcpy(tx->data + pos % tx->data_cap, frames + offsets[i], len);
    tx->desc[head & (tx->desc_cap - 1)] = (svn_tx_desc){.pos = pos, .time_ns = times[i], .len = len};
    tx->byte_head = pos + len;
    head++;
  }
  if (i > 0) {
    atomic_store_explicit(&tx->desc_head, head, memory_order_release);
    tx->c.queued += i;
    eventfd_write(tx->evfd, 1);
  }
  return i;
}

uint64_t svn_tx_pending(svn_tx *tx) {
  return atomic_load(&tx->desc_head) - atomic_load(&tx->desc_tail);
}

#define TX_BURST 64 /* frames already due go out in one sendmmsg() */

typedef union tx_ctrl {
  char b[CMSG_SPACE(sizeof(uint32_t)) * 2];
  struct cmsghdr align;
} tx_ctrl;

typedef struct tx_state {
  svn_tx *tx;
  struct mmsghdr sm[TX_BURST];
  struct iovec siov[TX_BURST];
  tx_ctrl sctrl[TX_BURST];
  uint32_t *skey[TX_BURST];
  svn_tx_desc sd[TX_BURST];
  struct mmsghdr em[ERRQ_VLEN];
  struct iovec eiov[ERRQ_VLEN];
  char ebuf[ERRQ_VLEN][64];
  char ectrl[ERRQ_VLEN][256];
  uint32_t since_housekeep;
} tx_state;

/* Each message asks for a TX timestamp (SO_TIMESTAMPING cmsg) and, where the
 * kernel supports it, carries its key (SCM_TS_OPT_ID). */
static void setup(tx_state *s) {
  svn_tx *tx = s->tx;
  for (int i = 0; i < TX_BURST; i++) {
    struct msghdr *mh = &s->sm[i].msg_hdr;
    mh->msg_iov = &s->siov[i];
    mh->msg_iovlen = 1;
    mh->msg_control = s->sctrl[i].b;
    mh->msg_controllen = CMSG_SPACE(sizeof(uint32_t)) * (tx->key_optid ? 2 : 1);
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SO_TIMESTAMPING;
    c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    *(uint32_t *)CMSG_DATA(c) =
        tx->hardware ? SOF_TIMESTAMPING_TX_HARDWARE : SOF_TIMESTAMPING_TX_SOFTWARE;
    if (tx->key_optid) {
      c = CMSG_NXTHDR(mh, c);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_TS_OPT_ID;
      c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
      s->skey[i] = (uint32_t *)CMSG_DATA(c);
    }
  }
  for (int i = 0; i < ERRQ_VLEN; i++) {
    s->eiov[i] = (struct iovec){.iov_base = s->ebuf[i], .iov_len = sizeof s->ebuf[i]};
    s->em[i].msg_hdr.msg_iov = &s->eiov[i];
    s->em[i].msg_hdr.msg_iovlen = 1;
    s->em[i].msg_hdr.msg_control = s->ectrl[i];
  }
}

/* Match TX timestamps from the error queue to their records. */
static void drain_errqueue(tx_state *s) {
  svn_tx *tx = s->tx;
  const uint64_t mask = tx->rec_cap - 1;
  for (;;) {
    for (int i = 0; i < ERRQ_VLEN; i++) {
      s->em[i].msg_hdr.msg_controllen = sizeof s->ectrl[i];
      s->em[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(tx->fd, s->em, ERRQ_VLEN, MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
      struct msghdr *mh = &s->em[i].msg_hdr;
      int64_t sw = 0, hw = 0;
      int have_key = 0;
      uint32_t key = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_SOCKET &&
            (c->cmsg_type == SO_TIMESTAMPING_OLD || c->cmsg_type == SO_TIMESTAMPING_NEW)) {
          struct timespec ts[3];
          memcpy(ts, CMSG_DATA(c), sizeof ts);
          sw = ts_ns(&ts[0]);
          hw = ts_ns(&ts[2]);
        } else if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_TX_TIMESTAMP) {
          struct sock_extended_err ee;
          memcpy(&ee, CMSG_DATA(c), sizeof ee);
          if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
            key = ee.ee_data;
            have_key = 1;
          }
        }
      }
      if (!have_key) continue;
      uint64_t idx = tx->keymap[key & mask];
      svn_tx_rec *r = &tx->recs[idx & mask];
      if (idx < tx->rec_flushed || idx >= tx->rec_head || r->key != key || !r->has_key ||
          r->ts_done) {
        tx->c.ts_unmatched++;
        continue;
      }
      if (tx->hardware && hw) {
        r->kernel_ns = hw;
        r->source = SVN_TS_HARDWARE;
      } else if (sw) {
        r->kernel_ns = sw;
        r->source = SVN_TS_SOFTWARE;
      }
      r->ts_done = 1;
    }
    if (n < ERRQ_VLEN) return;
  }
}

static int rec_ready(svn_tx *tx, uint64_t idx, int64_t now) {
  const svn_tx_rec *r = &tx->recs[idx & (tx->rec_cap - 1)];
  return r->ts_done || !r->has_key || now - r->sent_ns > TS_GRACE_NS ||
         tx->rec_head - idx > tx->rec_cap / 2;
}

/* Hand the ready prefix of the records to JS. */
static void flush_reports(tx_state *s, int64_t now, int mode) {
  svn_tx *tx = s->tx;
  const uint64_t mask = tx->rec_cap - 1;
  if (mode == FLUSH_ALL)
    tx->rec_ready = tx->rec_head;
  else
    while (tx->rec_ready < tx->rec_head && rec_ready(tx, tx->rec_ready, now)) tx->rec_ready++;
  uint64_t n = tx->rec_ready - tx->rec_flushed;
  if (n == 0) return;
  if (mode == FLUSH_IF_DUE && n < FLUSH_FRAMES && now - tx->last_flush_ns < FLUSH_NS) return;
  tx->last_flush_ns = now;
  size_t bytes = sizeof(svn_tx_report) + n * (3 * sizeof(int64_t) + sizeof(int32_t) + 1);
  svn_tx_report *rep = malloc(bytes);
  if (!rep) {
    tx->c.reports_dropped += n;
    tx->rec_flushed = tx->rec_ready;
    return;
  }
  rep->first_index = tx->rec_flushed;
  rep->count = (uint32_t)n;
  rep->sched_ns = (int64_t *)(rep + 1);
  rep->sent_ns = rep->sched_ns + n;
  rep->kernel_ns = rep->sent_ns + n;
  rep->err = (int32_t *)(rep->kernel_ns + n);
  rep->source = (uint8_t *)(rep->err + n);
  for (uint64_t i = 0; i < n; i++) {
    const svn_tx_rec *r = &tx->recs[(tx->rec_flushed + i) & mask];
    rep->sched_ns[i] = r->sched_ns;
    rep->sent_ns[i] = r->sent_ns;
    rep->kernel_ns[i] = r->kernel_ns;
    rep->err[i] = r->err;
    rep->source[i] = r->source;
    if (r->err == 0 && !r->ts_done) tx->c.ts_missing++;
  }
  tx->rec_flushed = tx->rec_ready;
  if (atomic_load(&tx->inflight) >= tx->max_inflight) {
    tx->c.reports_dropped += n;
    free(rep);
    return;
  }
  atomic_fetch_add(&tx->inflight, 1);
  if (tx->deliver(tx->ctx, rep) != 0) {
    atomic_fetch_sub(&tx->inflight, 1);
    tx->c.reports_dropped += n;
    free(rep);
  }
}

static void housekeeping(tx_state *s, int64_t now, int mode) {
  drain_errqueue(s);
  flush_reports(s, now, mode);
  s->since_housekeep = 0;
}

/* The record of one send attempt; err = 0 if sent. */
static void record(tx_state *s, const svn_tx_desc *d, uint64_t index, int64_t sent_ns, int err) {
  svn_tx *tx = s->tx;
  int has_key = err == 0 || err == ENOBUFS; /* ENOBUFS: dropped in the driver, key used */
  uint32_t key = tx->key_optid ? (uint32_t)index : *tx->key_counter;
  if (!tx->key_optid && has_key) (*tx->key_counter)++;
  const uint64_t mask = tx->rec_cap - 1;
  tx->recs[tx->rec_head & mask] = (svn_tx_rec){.sched_ns = d->time_ns, .sent_ns = sent_ns,
                                               .err = err, .key = key, .has_key = (uint8_t)has_key};
  tx->keymap[key & mask] = tx->rec_head;
  tx->rec_head++;
  if (err) {
    tx->c.send_errors++;
    tx->c.by_errno[err < SVN_ERRNO_MAX ? err : SVN_ERRNO_MAX - 1]++;
  } else {
    tx->c.sent++;
  }
  int64_t late = sent_ns - d->time_ns;
  if (late > tx->late_threshold_ns) tx->c.late++;
  if (late > SVN_TX_LAG_NS) tx->c.lagging++;
  if (late > tx->c.max_late_ns) tx->c.max_late_ns = late;
}

/* Sends s->sd[0..n) (frame indexes first..first+n-1) with sendmmsg. A
 * failed message is recorded with its errno and the rest retried, so every
 * frame gets its own outcome. All share one "sent" clock reading. */
static void send_burst(tx_state *s, uint32_t n, uint64_t first) {
  svn_tx *tx = s->tx;
  if (tx->rec_head - tx->rec_flushed + n > tx->rec_cap)
    housekeeping(s, svn_now_ns(tx->clock), FLUSH_READY);
  for (uint32_t i = 0; i < n; i++) {
    s->siov[i].iov_base = tx->data + s->sd[i].pos % tx->data_cap;
    s->siov[i].iov_len = s->sd[i].len;
    if (tx->key_optid) *s->skey[i] = (uint32_t)(first + i);
  }
  int64_t sent_ns = svn_now_ns(tx->clock);
  uint32_t i = 0;
  while (i < n) {
    int r = sendmmsg(tx->fd, s->sm + i, n - i, MSG_DONTWAIT);
    if (r > 0) {
      for (int j = 0; j < r; j++, i++) record(s, &s->sd[i], first + i, sent_ns, 0);
    } else {
      record(s, &s->sd[i], first + i, sent_ns, r < 0 ? errno : EIO);
      i++;
    }
  }
}

/* Sleep until t in the transmit clock (until t - spin_ns, then busy-wait, if
 * asked: timer wake-ups come late by tens of µs on many machines, VMs most).
 * Returns 1 if told to stop meanwhile. */
static int wait_until(tx_state *s, int64_t t) {
  svn_tx *tx = s->tx;
  const int64_t wake = t - tx->spin_ns;
  for (;;) {
    if (atomic_load(&tx->stop) && !atomic_load(&tx->drain)) return 1;
    int64_t now = svn_now_ns(tx->clock);
    if (t - now <= 0) return 0;
    if (wake - now <= 0) { /* spin the last stretch */
      while (svn_now_ns(tx->clock) < t) cpu_relax();
      return 0;
    }
    if (wake - now > 2000000) {
      housekeeping(s, now, FLUSH_IF_DUE);
      now = svn_now_ns(tx->clock);
      if (wake - now <= 0) continue;
    }
    int64_t target = wake - now > 2 * SLEEP_CHUNK_NS ? now + SLEEP_CHUNK_NS : wake;
    struct timespec ts = {.tv_sec = target / 1000000000LL, .tv_nsec = target % 1000000000LL};
    clock_nanosleep(tx->clock, TIMER_ABSTIME, &ts, NULL);
  }
}

/* After the last frame: wait (up to the grace time) for outstanding TX
 * timestamps, then hand every record over. */
static void finish(tx_state *s) {
  svn_tx *tx = s->tx;
  int64_t deadline = svn_now_ns(CLOCK_MONOTONIC) + TS_GRACE_NS;
  for (;;) {
    housekeeping(s, svn_now_ns(tx->clock), FLUSH_READY);
    if (tx->rec_flushed == tx->rec_head) return;
    if (svn_now_ns(CLOCK_MONOTONIC) > deadline) break;
    struct pollfd p = {.fd = tx->fd, .events = 0};
    poll(&p, 1, 5);
  }
  flush_reports(s, svn_now_ns(tx->clock), FLUSH_ALL);
}

void *svn_tx_main(void *arg) {
  tx_state *s = calloc(1, sizeof *s);
  svn_tx *tx = arg;
  if (!s) return NULL;
  s->tx = tx;
  setup(s);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* SCHED_OTHER default slack is 50 us */
  const uint64_t mask = tx->desc_cap - 1;
  uint64_t tail = atomic_load(&tx->desc_tail);
  int started = 0, starving = 0;
  for (;;) {
    if (atomic_load(&tx->stop) && !atomic_load(&tx->drain)) break;
    uint64_t head = atomic_load_explicit(&tx->desc_head, memory_order_acquire);
    if (tail == head) {
      if (atomic_load(&tx->stop)) break; /* drained */
      if (started) starving = 1;
      housekeeping(s, svn_now_ns(tx->clock), FLUSH_READY);
      struct pollfd p = {.fd = tx->evfd, .events = POLLIN};
      poll(&p, 1, tx->rec_flushed < tx->rec_head ? 5 : 100);
      if (p.revents & POLLIN) {
        eventfd_t v;
        eventfd_read(tx->evfd, &v);
      }
      continue;
    }
    svn_tx_desc d = tx->desc[tail & mask];
    if (starving) {
      starving = 0;
      if (svn_now_ns(tx->clock) > d.time_ns) tx->c.underruns++;
    }
    if (wait_until(s, d.time_ns)) break;
    /* this frame, and those after it that are already due */
    int64_t now = svn_now_ns(tx->clock);
    uint32_t n = 1;
    s->sd[0] = d;
    head = atomic_load_explicit(&tx->desc_head, memory_order_acquire);
    while (n < TX_BURST && tail + n < head && tx->desc[(tail + n) & mask].time_ns <= now) {
      s->sd[n] = tx->desc[(tail + n) & mask];
      n++;
    }
    send_burst(s, n, tail);
    started = 1;
    tail += n;
    atomic_store_explicit(&tx->byte_tail, s->sd[n - 1].pos + s->sd[n - 1].len,
                          memory_order_release);
    atomic_store_explicit(&tx->desc_tail, tail, memory_order_release);
    s->since_housekeep += n;
    if (s->since_housekeep >= HOUSEKEEP_EVERY || head == tail ||
        tx->desc[tail & mask].time_ns - svn_now_ns(tx->clock) > HOUSEKEEP_GAP_NS)
      housekeeping(s, svn_now_ns(tx->clock), FLUSH_IF_DUE);
  }
  tx->c.discarded += atomic_load(&tx->desc_head) - tail;
  finish(s);
  free(s);
  return NULL;
}
