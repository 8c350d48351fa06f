/*
 * points.h: what points.bpf.c (in the kernel) and bpf_points.c (the loader
 * and ring-buffer consumer in the addon) share: the config maps' values and
 * the records of the ring buffer. Plain fixed-size structs, little-endian,
 * no pointers. src/trace/bpf-engine.ts packs the config and reads the records
 * with the same sizes and offsets (a test compares them).
 */
#ifndef SVB_POINTS_H
#define SVB_POINTS_H

#define SVB_MAX_POINT_ID 99      /* point ids are 1..99, as in svtrace.bt */
#define SVB_MAX_PER_PROBE 8      /* points sharing one kernel probe */
#define SVB_MAX_ASDUS 16         /* MAX_LAYOUT_ASDUS */
#define SVB_MAX_WORDS 544        /* 16 ASDUs x (33 words of svID TLV + 1 of smpCnt tag) */
#define SVB_MAX_CAND 8           /* layouts sharing one APPID + Length */
#define SVB_MAX_PIDS 32
#define SVB_BUF 2048             /* bytes of a frame read (a power of two; frames are <= 1522) */
#define SVB_UNKNOWN_BYTES 128    /* bytes of an unknown frame shown, as svtrace.bt's 16 words */

/* The kernel probes (raw tracepoints; the skb is always their first argument). */
#define SVB_PROBE_NETIF_RECEIVE_SKB 0
#define SVB_PROBE_NET_DEV_START_XMIT 1
#define SVB_PROBE_NET_DEV_QUEUE 2
#define SVB_PROBE_NET_DEV_XMIT 3
#define SVB_PROBE_CONSUME_SKB 4
#define SVB_PROBE_KFREE_SKB 5
#define SVB_PROBE_SKB_COPY_DATAGRAM_IOVEC 6
#define SVB_N_PROBES 7

/* Per-point counters (a per-CPU array indexed point id * SVB_N_COUNTERS + kind). */
#define SVB_C_MATCHED 0  /* frames of a known layout (their record may still be lost) */
#define SVB_C_UNKNOWN 1  /* SV frames of no known layout */
#define SVB_C_SHORT 2    /* frames too short (or not linear) for their layout */
#define SVB_C_LOST 3     /* records the ring buffer had no room for: never silent */
#define SVB_N_COUNTERS 4

/* Record types in the ring buffer. */
#define SVB_REC_FRAME 1
#define SVB_REC_UNKNOWN 2

/* One filter word: (frame word at off from the APPID) & mask == val. */
struct svb_word {
  __u64 val;
  __u64 mask;
  __u32 off;
  __u32 pad;
};

/* A frame layout (layout.ts's FrameLayout, flattened into word compares). */
struct svb_layout {
  __u32 extent;      /* bytes from the APPID the layout needs */
  __u16 n_words;
  __u16 n_asdus;
  __u16 cnt_off[SVB_MAX_ASDUS];  /* smpCnt offset from the APPID */
  __u8 cnt_bytes[SVB_MAX_ASDUS]; /* 1 or 2 */
  struct svb_word w[SVB_MAX_WORDS];
};

/* Layouts of one APPID + Length (the first 32-bit word from the APPID, as read little-endian), in layout order. */
struct svb_cands {
  __u32 n;
  __u32 k[SVB_MAX_CAND];
};

/* A point's filter (every part given must hold, as in svtrace.bt). */
struct svb_point {
  __u32 ifindex;     /* 0: no interface filter */
  __u32 netns_inum;
  __u32 n_pids;      /* 0: no pid filter */
  __u32 pids[SVB_MAX_PIDS];
  __u32 comm_len;    /* 0: no comm filter; else compare this many bytes (exact: the name and its NUL) */
  char comm[16];
};

struct svb_config {
  __u32 stop;            /* set at the end: nothing matches or counts after it */
  __u32 read_bytes;      /* bytes of a frame read: max layout extent + 18, at least 128 */
  __u32 unknown_samples; /* unknown frames shown per point */
  __u32 pad;
  __u8 n_points[SVB_N_PROBES];
  __u8 pad2;
  __u8 points[SVB_N_PROBES][SVB_MAX_PER_PROBE]; /* point ids per probe */
};

/* A matched frame: the smpCnt of each of its ASDUs (fixed size: 16 + 2 * 16). */
struct svb_rec_frame {
  __u8 type;     /* SVB_REC_FRAME */
  __u8 point;
  __u16 layout;
  __u16 cpu;
  __u16 n;       /* ASDUs */
  __u64 t_mono_ns;
  __u16 smp_cnt[SVB_MAX_ASDUS];
};

/* The first bytes of an SV frame of no known layout. */
struct svb_rec_unknown {
  __u8 type;     /* SVB_REC_UNKNOWN */
  __u8 point;
  __u16 avail;   /* bytes of the frame that were readable (linear), up to SVB_UNKNOWN_BYTES shown */
  __u32 pad;
  __u64 t_mono_ns;
  __u8 bytes[SVB_UNKNOWN_BYTES];
};

#endif
