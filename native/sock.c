/*
 * sock.c: open the AF_PACKET sockets of one svtrace packet socket.
 *
 * Two file descriptors per interface:
 *   rx  ETH_P_ALL receive socket with a classic BPF filter that keeps only
 *       SV (0x88BA, untagged or 802.1Q), PACKET_AUXDATA (for the VLAN tag the
 *       kernel strips), SO_TIMESTAMPING RX, large SO_RCVBUF. Bound with
 *       protocol 0 (no tap at all) until receiving starts; while stopped, a
 *       drop-all filter replaces the SV filter, so nothing queues.
 *       With promisc, a PACKET_MR_PROMISC membership on rx puts the
 *       interface in promiscuous mode for as long as the socket lives (the
 *       kernel drops the membership at close, as with libpcap): virtio-net
 *       and real NICs filter multicast and tagged frames otherwise.
 *   tx  send socket bound with protocol 0 (it never receives). Its error
 *       queue carries only the TX timestamps the transmit thread asks for.
 * With a netns name, both are created from a short-lived thread that did
 * setns(CLONE_NEWNET); they stay in that namespace, the process does not.
 */
#include "svnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SCM_TS_OPT_ID
#define SCM_TS_OPT_ID 81 /* Linux 6.13+: per-send OPT_ID key */
#endif

void svn_set_error(svn_error *e, const char *code, int err_no, const char *syscall,
                   const char *fmt, ...) {
  va_list ap;
  e->code = code;
  e->err_no = err_no;
  e->syscall = syscall;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
}

int64_t svn_now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Interfaces of the calling thread's namespace, "a, b, c". */
static void list_interfaces(char *out, size_t cap) {
  struct if_nameindex *ifs = if_nameindex();
  size_t used = 0;
  out[0] = 0;
  if (!ifs) return;
  for (struct if_nameindex *i = ifs; i->if_index != 0 && i->if_name; i++) {
    int n = snprintf(out + used, cap - used, "%s%s", used ? "," : "", i->if_name);
    if (n < 0 || (size_t)n >= cap - used) break;
    used += (size_t)n;
  }
  if_freenameindex(ifs);
}

static int packet_socket(svn_error *e) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd >= 0) return fd;
  if (errno == EPERM || errno == EACCES)
    svn_set_error(e, "NET_NOT_ROOT", errno, "socket",
                  "opening an AF_PACKET socket was refused: %s (needs root or CAP_NET_RAW)",
                  strerror(errno));
  else
    svn_set_error(e, "NET_SOCKET_FAILED", errno, "socket", "socket(AF_PACKET, SOCK_RAW): %s",
                  strerror(errno));
  return -1;
}

/* Classic BPF: drop our own outgoing frames; keep ethertype 0x88BA either
 * directly at offset 12 (untagged, or tag already stripped by the kernel
 * into vlan_tci) or behind one 802.1Q/802.1ad tag at offset 16. With
 * sv = 0 the filter drops everything (a socket that is not receiving). */
static int attach_filter(int fd, int sv, svn_error *e) {
  struct sock_filter keep_sv[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 7, 0),
      /* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SVN_ETH_P_SV, 4, 0),
      /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021Q, 1, 0),
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021AD, 0, 3),
      /* 6 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 16),
      /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SVN_ETH_P_SV, 0, 1),
      /* 8 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
      /* 9 */ BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_fprog prog = {.len = sv ? sizeof keep_sv / sizeof keep_sv[0] : 1,
                            .filter = sv ? keep_sv : drop_all};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0) return 0;
  svn_set_error(e, "NET_SOCKET_FAILED", errno, "setsockopt", "SO_ATTACH_FILTER: %s",
                strerror(errno));
  return -1;
}

/* SO_*BUFFORCE as root (ignores rmem_max), else the capped SO_*BUF. */
static int set_buffer(int fd, int force_opt, int opt, int bytes, int *effective) {
  if (bytes > 0 && setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  socklen_t len = sizeof *effective;
  return getsockopt(fd, SOL_SOCKET, opt, effective, &len);
}

static int set_int(int fd, int level, int opt, int value, const char *what, svn_error *e) {
  if (setsockopt(fd, level, opt, &value, sizeof value) == 0) return 0;
  svn_set_error(e, "NET_SOCKET_FAILED", errno, "setsockopt", "%s: %s", what, strerror(errno));
  return -1;
}

/* Index, flags, MTU and MAC of the interface, looked up through fd's namespace. */
static int lookup_interface(int fd, const svn_open_opts *o, svn_sock_info *info, svn_error *e) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", o->ifname);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
    if (errno == ENODEV) {
      svn_set_error(e, "NET_NO_SUCH_INTERFACE", errno, "ioctl",
                    "no network interface named '%s'%s%s", o->ifname,
                    o->netns[0] ? " in network namespace " : "", o->netns);
      list_interfaces(e->interfaces, sizeof e->interfaces);
    } else {
      svn_set_error(e, "NET_SOCKET_FAILED", errno, "ioctl", "SIOCGIFINDEX %s: %s", o->ifname,
                    strerror(errno));
    }
    return -1;
  }
  info->ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    svn_set_error(e, "NET_SOCKET_FAILED", errno, "ioctl", "SIOCGIFFLAGS %s: %s", o->ifname,
                  strerror(errno));
    return -1;
  }
  if (!(ifr.ifr_flags & IFF_UP)) {
    svn_set_error(e, "NET_INTERFACE_DOWN", 0, NULL, "interface '%s' is down", o->ifname);
    return -1;
  }
  info->running = (ifr.ifr_flags & IFF_RUNNING) != 0;
  info->mtu = ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : 1500;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) {
    int type = ifr.ifr_hwaddr.sa_family;
    if (type != ARPHRD_ETHER && type != ARPHRD_LOOPBACK) {
      svn_set_error(e, "NET_NOT_ETHERNET", 0, NULL,
                    "interface '%s' is not an Ethernet interface (ARPHRD type %d)", o->ifname,
                    type);
      return -1;
    }
    memcpy(info->mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  info->hard_header_len = 14;
  return 0;
}

/* Hardware timestamping: the NIC must report the capability, then
 * SIOCSHWTSTAMP turns it on (TX on, all RX frames). We only widen the
 * setting; a PTP daemon sharing the NIC keeps working. */
static int enable_hw_timestamping(int fd, const svn_open_opts *o, svn_sock_info *info,
                                  svn_error *e) {
  const unsigned need =
      SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
  struct ethtool_ts_info ts = {.cmd = ETHTOOL_GET_TS_INFO};
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", o->ifname);
  ifr.ifr_data = (void *)&ts;
  if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
    info->phc_index = ts.phc_index;
    if ((ts.so_timestamping & need) != need) {
      svn_set_error(e, "NET_NO_HW_TIMESTAMPING", 0, NULL,
                    "interface '%s' cannot timestamp in hardware (capabilities 0x%x, PHC %d)",
                    o->ifname, ts.so_timestamping, ts.phc_index);
      return -1;
    }
  }
  struct hwtstamp_config cfg = {0};
  ifr.ifr_data = (void *)&cfg;
  int have = ioctl(fd, SIOCGHWTSTAMP, &ifr) == 0;
  if (!have || cfg.tx_type != HWTSTAMP_TX_ON || cfg.rx_filter != HWTSTAMP_FILTER_ALL) {
    cfg.flags = 0;
    cfg.tx_type = HWTSTAMP_TX_ON;
    cfg.rx_filter = HWTSTAMP_FILTER_ALL;
    if (ioctl(fd, SIOCSHWTSTAMP, &ifr) != 0) {
      int err = errno;
      if (err == EPERM)
        svn_set_error(e, "NET_NOT_ROOT", err, "ioctl",
                      "SIOCSHWTSTAMP on '%s' was refused (needs CAP_NET_ADMIN)", o->ifname);
      else
        svn_set_error(e, "NET_NO_HW_TIMESTAMPING", err, "ioctl",
                      "interface '%s' refused hardware timestamping (SIOCSHWTSTAMP: %s)",
                      o->ifname, strerror(err));
      return -1;
    }
  }
  if (cfg.rx_filter == HWTSTAMP_FILTER_NONE || cfg.tx_type != HWTSTAMP_TX_ON) {
    svn_set_error(e, "NET_NO_HW_TIMESTAMPING", 0, NULL,
                  "interface '%s' accepted SIOCSHWTSTAMP but timestamps no frames "
                  "(tx_type %d, rx_filter %d)",
                  o->ifname, cfg.tx_type, cfg.rx_filter);
    return -1;
  }
  info->hw_tx_type = cfg.tx_type;
  info->hw_rx_filter = cfg.rx_filter;
  return 0;
}

static int bind_to(int fd, int ifindex, int protocol, svn_error *e) {
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = ifindex,
                            .sll_protocol = htons((uint16_t)protocol)};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) == 0) return 0;
  svn_set_error(e, "NET_SOCKET_FAILED", errno, "bind", "bind(AF_PACKET, ifindex %d): %s",
                ifindex, strerror(errno));
  return -1;
}

/* Does this kernel accept SCM_TS_OPT_ID on packet sockets? Send a frame that
 * is too long for the MTU: a kernel that knows the cmsg parses it and fails
 * the size check (EMSGSIZE), an older one rejects the cmsg (EINVAL). Nothing
 * is ever transmitted. */
static int probe_scm_ts_opt_id(int fd, int mtu) {
  size_t len = (size_t)mtu + 64;
  unsigned char *buf = calloc(1, len);
  if (!buf) return 0;
  union {
    char b[CMSG_SPACE(sizeof(uint32_t)) * 2];
    struct cmsghdr align;
  } ctrl;
  memset(&ctrl, 0, sizeof ctrl);
  struct iovec iov = {.iov_base = buf, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b,
                      .msg_controllen = sizeof ctrl.b};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SO_TIMESTAMPING;
  c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
  *(uint32_t *)CMSG_DATA(c) = SOF_TIMESTAMPING_TX_SOFTWARE;
  c = CMSG_NXTHDR(&mh, c);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_TS_OPT_ID;
  c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
  *(uint32_t *)CMSG_DATA(c) = 0;
  ssize_t rc = sendmsg(fd, &mh, MSG_DONTWAIT);
  int err = errno;
  free(buf);
  return rc < 0 && err == EMSGSIZE;
}

/* Promiscuous mode owned by this socket: a packet membership, counted by the
 * kernel per interface and dropped when the socket closes (or the process
 * dies), so it never outlives us and never undoes someone else's. */
static int add_promisc_membership(int fd, int ifindex, svn_error *e) {
  struct packet_mreq mr = {.mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC};
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) == 0) return 0;
  svn_set_error(e, "NET_SOCKET_FAILED", errno, "setsockopt",
                "PACKET_ADD_MEMBERSHIP (promiscuous) on ifindex %d: %s", ifindex, strerror(errno));
  return -1;
}

static int open_here(const svn_open_opts *o, int *rx_out, int *tx_out, svn_sock_info *info,
                     svn_error *e) {
  int rx = -1, tx = -1;
  if ((rx = packet_socket(e)) < 0) goto fail;
  if (lookup_interface(rx, o, info, e) != 0) goto fail;
  if (o->hardware && enable_hw_timestamping(rx, o, info, e) != 0) goto fail;
  if (attach_filter(rx, 0, e) != 0) goto fail;
  if (set_int(rx, SOL_PACKET, PACKET_AUXDATA, 1, "PACKET_AUXDATA", e) != 0) goto fail;
  int one = 1; /* best effort: the BPF filter drops outgoing frames anyway */
  setsockopt(rx, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  int rx_flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  if (o->hardware) rx_flags |= SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
  if (set_int(rx, SOL_SOCKET, SO_TIMESTAMPING, rx_flags, "SO_TIMESTAMPING", e) != 0) goto fail;
  set_buffer(rx, SO_RCVBUFFORCE, SO_RCVBUF, o->rcvbuf_bytes > 0 ? o->rcvbuf_bytes : 8 << 20,
             &info->rcvbuf_bytes);
  if (bind_to(rx, info->ifindex, 0, e) != 0) goto fail;
  if (o->promisc) {
    if (add_promisc_membership(rx, info->ifindex, e) != 0) goto fail;
    info->promisc = 1;
  }

  if ((tx = packet_socket(e)) < 0) goto fail;
  /* Report flags only; the transmit thread asks per frame (cmsg) for a TX
   * timestamp, so plain send() calls leave nothing in the error queue. */
  int tx_flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
  if (o->hardware) tx_flags |= SOF_TIMESTAMPING_RAW_HARDWARE;
  if (set_int(tx, SOL_SOCKET, SO_TIMESTAMPING, tx_flags, "SO_TIMESTAMPING", e) != 0) goto fail;
  set_buffer(tx, SO_SNDBUFFORCE, SO_SNDBUF, o->sndbuf_bytes > 0 ? o->sndbuf_bytes : 4 << 20,
             &info->sndbuf_bytes);
  int errq_bytes = 0; /* the error queue is charged to the receive buffer */
  set_buffer(tx, SO_RCVBUFFORCE, SO_RCVBUF, 4 << 20, &errq_bytes);
  if (bind_to(tx, info->ifindex, 0, e) != 0) goto fail;
  info->tx_key_optid = o->force_key_counter ? 0 : probe_scm_ts_opt_id(tx, info->mtu);
  *rx_out = rx;
  *tx_out = tx;
  return 0;
fail:
  if (rx >= 0) close(rx);
  if (tx >= 0) close(tx);
  return -1;
}

typedef struct open_job {
  const svn_open_opts *o;
  int rx, tx, rc;
  svn_sock_info *info;
  svn_error *e;
} open_job;

static void *open_in_netns(void *arg) {
  open_job *j = arg;
  char path[300];
  snprintf(path, sizeof path, "/var/run/netns/%s", j->o->netns);
  int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    if (errno == ENOENT)
      svn_set_error(j->e, "NET_NO_SUCH_NETNS", errno, "open", "no network namespace named '%s' (%s)",
                    j->o->netns, path);
    else if (errno == EACCES || errno == EPERM)
      svn_set_error(j->e, "NET_NOT_ROOT", errno, "open", "cannot open %s: %s", path,
                    strerror(errno));
    else
      svn_set_error(j->e, "NET_NO_SUCH_NETNS", errno, "open", "cannot open %s: %s", path,
                    strerror(errno));
    return NULL;
  }
  if (setns(nsfd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(nsfd);
    if (err == EPERM)
      svn_set_error(j->e, "NET_NOT_ROOT", err, "setns",
                    "entering network namespace '%s' was refused (needs CAP_SYS_ADMIN)",
                    j->o->netns);
    else
      svn_set_error(j->e, "NET_NO_SUCH_NETNS", err, "setns",
                    "%s is not a network namespace: %s", path, strerror(err));
    return NULL;
  }
  close(nsfd);
  j->rc = open_here(j->o, &j->rx, &j->tx, j->info, j->e);
  return NULL;
}

int svn_open(const svn_open_opts *o, int *rx_fd, int *tx_fd, svn_sock_info *info, svn_error *e) {
  memset(info, 0, sizeof *info);
  info->phc_index = -1;
  if (!o->netns[0]) return open_here(o, rx_fd, tx_fd, info, e);
  open_job j = {.o = o, .rx = -1, .tx = -1, .rc = -1, .info = info, .e = e};
  pthread_t t;
  int err = pthread_create(&t, NULL, open_in_netns, &j);
  if (err != 0) {
    svn_set_error(e, "NET_SOCKET_FAILED", err, "pthread_create", "pthread_create: %s",
                  strerror(err));
    return -1;
  }
  pthread_join(t, NULL);
  if (j.rc != 0) return -1;
  *rx_fd = j.rx;
  *tx_fd = j.tx;
  return 0;
}

int svn_rx_bind(int fd, int ifindex, int on, svn_error *e) {
  /* bind() cannot go back to protocol 0 (0 means "keep"), so a stopped
   * socket stays bound to ETH_P_ALL behind a drop-all filter. */
  if (attach_filter(fd, on, e) != 0) return -1;
  if (on) return bind_to(fd, ifindex, ETH_P_ALL, e);
  char buf[64];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  return 0;
}

int svn_thread_start(pthread_t *t, const svn_thread_opts *o, void *(*fn)(void *), void *arg,
                     svn_error *e) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (o->fifo_priority > 0) {
    struct sched_param sp = {.sched_priority = o->fifo_priority};
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
    pthread_attr_setschedparam(&attr, &sp);
  }
  if (o->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o->cpu, &set);
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
  }
  /* Signals stay with Node's own threads: ours start with all blocked. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(t, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err == 0) {
    /* Named, so that ps -L, top and bpftrace's comm show which thread is ours. */
    if (o->name) pthread_setname_np(*t, o->name);
    return 0;
  }
  if (err == EPERM && o->fifo_priority > 0)
    svn_set_error(e, "NET_SCHED_FIFO_FAILED", err, "pthread_create",
                  "SCHED_FIFO priority %d was refused: %s", o->fifo_priority, strerror(err));
  else if (err == EINVAL && o->cpu >= 0)
    svn_set_error(e, "NET_CPU_AFFINITY_FAILED", err, "pthread_create",
                  "cannot pin the thread to CPU %d: %s", o->cpu, strerror(err));
  else if (err == EINVAL && o->fifo_priority > 0)
    svn_set_error(e, "NET_SCHED_FIFO_FAILED", err, "pthread_create",
                  "SCHED_FIFO priority %d is invalid: %s", o->fifo_priority, strerror(err));
  else
    svn_set_error(e, "NET_THREAD_FAILED", err, "pthread_create", "pthread_create: %s",
                  strerror(err));
  return -1;
}
