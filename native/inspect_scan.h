/*
 * inspect_scan.h: the native engine of `svtrace inspect`. It reads a pcap or
 * pcapng capture, walks the SV TLVs of every frame (the same rules and the
 * same status codes as src/sv/scan.ts) and aggregates per stream what
 * src/capture/inspect.ts computes: frames, sequence (src/subscribe/sequence.ts)
 * and pacing. The TypeScript inspector is the reference; a test requires
 * identical output on every fixture and on generated hostile captures.
 *
 * Anything the engine does not handle exactly as the TypeScript reader does
 * (a damaged capture the reader would reject, timestamp resolutions other
 * than 10^-0..10^-9 s, a second count beyond 2^53) ends the scan with
 * `fallback` set: the caller then runs the TypeScript path, which gives the
 * exact result or error.
 *
 * Files: inspect_scan.c (capture blocks), inspect_frame.c (SV frames), inspect_stream.c (streams,
 * sequence, pacing), inspect_scan_napi.c (Node-API).
 */
#ifndef SVTRACE_INSPECT_SCAN_H
#define SVTRACE_INSPECT_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define IS_WINDOW (1u << 17)   /* sequence window, as WINDOW in sequence.ts */
#define IS_MAX_GAPS 1000       /* MAX_GAPS_LISTED */
#define IS_MAX_ASDUS 64        /* MAX_ASDUS in src/sv/layout.ts */
#define IS_MAX_MALFORMED 20    /* malformed frames listed */
#define IS_SCAN_CODES 10       /* SCAN_ERRORS */
#define IS_MAX_RECORD (256u * 1024 * 1024)

typedef struct {
  int64_t from_smp, to_smp, iter, size, missing;
} is_gap;

typedef struct {
  int64_t wrap;
  int wrap_fixed;
  int64_t highest, first;
  int64_t samples, missing, duplicates, out_of_order, wraps, confrev_changes, confrev;
  int64_t min_smp, max_smp;
  is_gap *gaps;
  int ngaps;
  int64_t gaps_dropped;
  uint8_t *seen; /* IS_WINDOW bits */
} is_seq;

typedef struct {
  /* identity and what the first frame said */
  uint32_t app_id, svid_len;
  uint8_t *svid;
  uint8_t src[6], dst[6];
  int vlan_present;
  uint32_t vlan_tci, reserved1;
  uint64_t hash;
  /* per frame */
  int64_t frames, last_frame_id;
  int64_t first_sec, first_nsec, last_sec, last_nsec;
  uint64_t asdus_mask;     /* bit n-1: frames of n ASDUs seen */
  uint64_t synch_mask[4];  /* smpSynch values seen (one octet) */
  int have_last_rel;
  double last_rel;
  double *gaps_ns;
  size_t ngap, capgap;
  is_seq seq;
  double pacing[9]; /* min mean p50 p99 max stddev jitterP50 jitterP99 jitterMax (µs); valid when ngap > 0 */
} is_stream;

typedef struct {
  int64_t packet; /* 1-based */
  int code;
  uint64_t offset; /* of the frame in the input */
  uint32_t cap_len;
} is_malformed;

typedef struct {
  uint32_t snap_len;
  int64_t units_per_sec, ns_per_unit, offset_sec;
} is_iface;

typedef struct is_ctx {
  /* options */
  int64_t wrap_at; /* 0 = learnt */
  /* result */
  const char *fallback; /* non-NULL: run the TypeScript path */
  const char *error;    /* out of memory and the like */
  const char *format;
  int64_t packets, sv_frames, other_frames;
  int64_t malformed_by_code[IS_SCAN_CODES];
  int malformed_order[IS_SCAN_CODES]; /* codes in order of first occurrence */
  int norder;
  is_malformed malformed[IS_MAX_MALFORMED];
  int nmalformed;
  int truncated;
  uint64_t trunc_offset, trunc_expected, trunc_available;
  is_stream **streams;
  size_t nstreams, capstreams;
  /* stream lookup: open addressing on the identity's hash */
  uint32_t *table;
  size_t table_cap;
  /* reader state */
  int stage, le, record_header;
  int64_t frac_to_ns;
  int section;
  is_iface *ifaces;
  size_t nifaces, capifaces;
  int64_t base_sec;
  int have_base;
  uint64_t input_bytes;
} is_ctx;

void is_init(is_ctx *c, int64_t wrap_at);
void is_free(is_ctx *c);
/* Parses whole units of b[0, n) (absolute offset abs); returns the bytes consumed. */
size_t is_push(is_ctx *c, const uint8_t *b, size_t n, uint64_t abs);
/* Ends the input; `tail` holds the n bytes left unconsumed (at absolute offset abs). */
void is_end(is_ctx *c, const uint8_t *tail, size_t n, uint64_t abs);
/* Scans a whole capture in memory. */
void is_scan_buffer(is_ctx *c, const uint8_t *b, size_t n);
/* Scans a capture file through a reused read buffer. */
void is_scan_fd(is_ctx *c, int fd);

/* inspect_stream.c */
void is_frame(is_ctx *c, const uint8_t *b, size_t start, size_t end, int64_t sec, int64_t nsec,
              uint64_t abs);
void is_finish(is_ctx *c);
void is_stream_free(is_stream *s);

/* inspect_scan.c: one SV frame */
typedef struct {
  uint32_t app_id, reserved1, vlan_tci;
  int vlan_present;
  int asdu_count;
  size_t svid_off[IS_MAX_ASDUS];
  uint32_t svid_len[IS_MAX_ASDUS];
  uint32_t smp_cnt[IS_MAX_ASDUS], confrev[IS_MAX_ASDUS], synch[IS_MAX_ASDUS];
} is_frame_scan;
int is_scan_frame(const uint8_t *b, size_t start, size_t end, is_frame_scan *s);

#endif
