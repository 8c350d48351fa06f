/*
 * rx.c: the receive thread.
 *
 * Loop: recvmmsg(MSG_DONTWAIT) up to 64 frames; when nothing is queued, poll
 * the socket and a wake-up eventfd (stop, or JS consumed a batch) with a
 * short timeout. Right after each recvmmsg returns we read CLOCK_REALTIME:
 * that is the application timestamp of every frame of that call.
 *
 * Frames are appended to a batch that is handed over (deliver) when it holds
 * max_batch_frames or its first frame is max_delay_ns old. At most
 * max_inflight batches wait for JS; beyond that the thread stops reading,
 * the socket buffer fills and the kernel counts drops (PACKET_STATISTICS).
 *
 * VLAN: the kernel strips an 802.1Q tag into skb->vlan_tci before packet
 * taps see the frame (veth, and NICs with RX VLAN offload). We read it from
 * PACKET_AUXDATA and put the 4 bytes back, so JS sees the frame as it was on
 * the wire (flag SVN_RX_FLAG_VLAN_REINSERTED).
 */
#include "svnet.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RX_VLEN 64
#define RX_SLOT 2048 /* bytes per receive slot */
#define RX_HEAD 4    /* headroom in front of each slot for a re-inserted tag */
#define RX_CTRL 256  /* control bytes per message */



void svn_rx_batch_free(svn_rx_batch *b) {
  if (!b) return;
  free(b->data);
  free(b->offsets);
  free(b->lengths);
  free(b->kernel_ns);
  free(b->app_ns);
  free(b->source);
  free(b->flags);
  free(b);
}

static svn_rx_batch *batch_new(uint32_t cap) {
  svn_rx_batch *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->cap = cap;
  b->data_cap = (size_t)(cap < 512 ? cap : 512) * 256;
  b->data = malloc(b->data_cap);
  b->offsets = malloc(cap * sizeof(uint32_t));
  b->lengths = malloc(cap * sizeof(uint32_t));
  b->kernel_ns = malloc(cap * sizeof(int64_t));
  b->app_ns = malloc(cap * sizeof(int64_t));
  b->source = malloc(cap);
  b->flags = malloc(cap);
  if (!b->data || !b->offsets || !b->lengths || !b->kernel_ns || !b->app_ns || !b->source ||
      !b->flags) {
    svn_rx_batch_free(b);
    return NULL;
  }
  return b;
}

static int batch_reserve(svn_rx_batch *b, size_t more) {
  if (b->data_len + more <= b->data_cap) return 0;
  size_t cap = b->data_cap * 2;
  while (cap < b->data_len + more) cap *= 2;
  uint8_t *d = realloc(b->data, cap);
  if (!d) return -1;
  b->data = d;
  b->data_cap = cap;
  return 0;
}

void svn_rx_read_kernel_stats(int fd, svn_rx_counters *c) {
  struct tpacket_stats st;
  socklen_t len = sizeof st;
  pthread_mutex_lock(&c->kstats_lock);
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
    c->kernel_packets += st.tp_packets;
    c->kernel_drops += st.tp_drops;
  }
  pthread_mutex_unlock(&c->kstats_lock);
}

typedef struct rx_state {
  svn_rx *rx;
  struct mmsghdr msgs[RX_VLEN];
  struct iovec iov[RX_VLEN];
  uint8_t *slab;
  uint8_t *ctrl;
  svn_rx_batch *batch;
  int64_t deadline_ns; /* CLOCK_MONOTONIC time the current batch must go */
} rx_state;

/* Parse one received message and append it to the batch. */
static void append_frame(rx_state *s, int i, int64_t app_ns) {
  svn_rx *rx = s->rx;
  struct msghdr *mh = &s->msgs[i].msg_hdr;
  uint8_t *slot = s->slab + (size_t)i * RX_SLOT;
  uint8_t *frame = slot + RX_HEAD;
  uint32_t len = s->msgs[i].msg_len;
  uint8_t flags = 0, source = SVN_TS_NONE;
  int64_t kernel_ns = 0;
  int vlan = 0;
  uint16_t tci = 0, tpid = 0x8100;

  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == SOL_SOCKET &&
        (c->cmsg_type == SO_TIMESTAMPING_OLD || c->cmsg_type == SO_TIMESTAMPING_NEW)) {
      struct timespec ts[3];
      memcpy(ts, CMSG_DATA(c), sizeof ts);
      if (rx->hardware && (ts[2].tv_sec || ts[2].tv_nsec)) {
        kernel_ns = ts_ns(&ts[2]);
        source = SVN_TS_HARDWARE;
      } else if (ts[0].tv_sec || ts[0].tv_nsec) {
        kernel_ns = ts_ns(&ts[0]);
        source = SVN_TS_SOFTWARE;
      }
    } else if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
      struct tpacket_auxdata aux;
      memcpy(&aux, CMSG_DATA(c), sizeof aux);
      if (aux.tp_status & TP_STATUS_VLAN_VALID) {
        vlan = 1;
        tci = aux.tp_vlan_tci;
        if (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) tpid = aux.tp_vlan_tpid;
      }
    }
  }
  if (mh->msg_flags & MSG_TRUNC) {
    flags |= SVN_RX_FLAG_TRUNCATED;
    rx->c->truncated++;
  }
  if (vlan && len >= 12) {
    memmove(slot, frame, 12);
    slot[12] = (uint8_t)(tpid >> 8);
    slot[13] = (uint8_t)tpid;
    slot[14] = (uint8_t)(tci >> 8);
    slot[15] = (uint8_t)tci;
    frame = slot;
    len += 4;
    flags |= SVN_RX_FLAG_VLAN_REINSERTED;
    rx->c->vlan_reinserted++;
  }
  if (source == SVN_TS_NONE) rx->c->ts_missing++;

  svn_rx_batch *b = s->batch;
  if (batch_reserve(b, len) != 0) { /* out of memory: the frame is lost, say so */
    rx->c->recv_errors++;
    rx->c->last_errno = ENOMEM;
    return;
  }
  uint32_t k = b->count++;
  b->offsets[k] = (uint32_t)b->data_len;
  b->lengths[k] = len;
  memcpy(b->data + b->data_len, frame, len);
  b->data_len += len;
  b->kernel_ns[k] = kernel_ns;
  b->app_ns[k] = app_ns;
  b->source[k] = source;
  b->flags[k] = flags;
  rx->c->frames++;
  rx->c->bytes += len;
}

/* Hand the batch to JS if allowed (or forced). Returns 1 if handed over. */
static int flush(rx_state *s, int force) {
  svn_rx *rx = s->rx;
  svn_rx_batch *b = s->batch;
  if (!b || b->count == 0) return 0;
  if (!force && atomic_load(&rx->inflight) >= rx->max_inflight) return 0;
  svn_rx_read_kernel_stats(rx->fd, rx->c);
  b->total_frames = rx->c->frames;
  b->total_kernel_drops = rx->c->kernel_drops;
  s->batch = NULL;
  rx->c->batches++;
  atomic_fetch_add(&rx->inflight, 1);
  if (rx->deliver(rx->ctx, b) != 0) {
    atomic_fetch_sub(&rx->inflight, 1);
    svn_rx_batch_free(b);
  }
  return 1;
}

static int receive_some(rx_state *s) {
  svn_rx *rx = s->rx;
  if (!s->batch) {
    s->batch = batch_new(rx->max_batch_frames);
    if (!s->batch) return -1;
    s->deadline_ns = 0;
  }
  uint32_t room = s->batch->cap - s->batch->count;
  unsigned vlen = room < RX_VLEN ? room : RX_VLEN;
  for (unsigned i = 0; i < vlen; i++) {
    s->msgs[i].msg_hdr.msg_controllen = RX_CTRL;
    s->msgs[i].msg_hdr.msg_flags = 0;
  }
  int n = recvmmsg(rx->fd, s->msgs, vlen, MSG_DONTWAIT, NULL);
  int err = errno; /* before any other call can change it */
  int64_t app_ns = svn_now_ns(CLOCK_REALTIME);
  if (n <= 0) return n < 0 ? -err : 0;
  if (s->batch->count == 0) s->deadline_ns = svn_now_ns(CLOCK_MONOTONIC) + rx->max_delay_ns;
  for (int i = 0; i < n; i++) append_frame(s, i, app_ns);
  return n;
}

static int setup(rx_state *s) {
  s->slab = malloc((size_t)RX_VLEN * RX_SLOT);
  s->ctrl = calloc(RX_VLEN, RX_CTRL);
  if (!s->slab || !s->ctrl) return -1;
  memset(s->msgs, 0, sizeof s->msgs);
  for (int i = 0; i < RX_VLEN; i++) {
    s->iov[i].iov_base = s->slab + (size_t)i * RX_SLOT + RX_HEAD;
    s->iov[i].iov_len = RX_SLOT - RX_HEAD;
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    s->msgs[i].msg_hdr.msg_control = s->ctrl + (size_t)i * RX_CTRL;
  }
  return 0;
}

void *svn_rx_main(void *arg) {
  rx_state s = {.rx = arg};
  svn_rx *rx = s.rx;
  if (setup(&s) != 0) {
    rx->c->last_errno = ENOMEM;
    rx->c->recv_errors++;
    goto out;
  }
  while (!atomic_load(&rx->stop)) {
    int full = s.batch && s.batch->count >= s.batch->cap;
    int64_t now = svn_now_ns(CLOCK_MONOTONIC);
    if (s.batch && s.batch->count && (full || now >= s.deadline_ns)) {
      if (flush(&s, 0)) full = 0;
    }
    if (!full) {
      int n = receive_some(&s);
      if (n > 0) continue;
      if (n < 0 && n != -EAGAIN && n != -EINTR) {
        rx->c->recv_errors++;
        rx->c->last_errno = -n;
      }
    }
    int timeout_ms = 200;
    if (s.batch && s.batch->count) {
      int64_t left = s.deadline_ns - svn_now_ns(CLOCK_MONOTONIC);
      timeout_ms = left <= 0 ? 1 : (int)(left / 1000000) + 1;
    }
    struct pollfd p[2] = {{.fd = rx->evfd, .events = POLLIN}, {.fd = rx->fd, .events = POLLIN}};
    poll(p, full ? 1 : 2, timeout_ms);
    if (p[0].revents & POLLIN) {
      eventfd_t v;
      eventfd_read(rx->evfd, &v);
    }
  }
  /* Final: deliver what we hold, regardless of the in-flight limit. */
  flush(&s, 1);
out:
  svn_rx_batch_free(s.batch);
  free(s.slab);
  free(s.ctrl);
  return NULL;
}
