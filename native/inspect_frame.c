/*
 * inspect_frame.c: one SV frame for the native inspect engine (see
 * inspect_scan.h), src/sv/scan.ts check by check: the same status codes in
 * the same order. Every read is bounded by the frame, the APPID Length and
 * the length of each enclosing TLV.
 */
#include "inspect_scan.h"

typedef struct {
  uint32_t tag, len, len_bytes;
  size_t value;
} tlv_t;

static int read_tlv(const uint8_t *b, size_t p, size_t limit, tlv_t *t) {
  if (p >= limit) return 1;
  uint32_t tag = b[p];
  size_t q = p + 1;
  if ((tag & 0x1f) == 0x1f) {
    int n = 0;
    for (;;) {
      if (q >= limit) return 1;
      uint8_t x = b[q++];
      if (++n > 4) return 4;
      if (!(x & 0x80)) break;
    }
    tag = 0x1f00 | (tag & 0xe0);
  }
  if (q >= limit) return 1;
  uint32_t len = b[q++], lb = 0;
  if (len & 0x80) {
    lb = len & 0x7f;
    if (lb == 0 || lb > 3) return 3;
    if (q + lb > limit) return 1;
    len = 0;
    for (uint32_t i = 0; i < lb; i++) len = len * 256 + b[q++];
  }
  if (q + len > limit) return 3;
  t->tag = tag;
  t->value = q;
  t->len = len;
  t->len_bytes = lb;
  return 0;
}

static uint32_t read_uint(const uint8_t *b, size_t p, uint32_t n) {
  uint32_t v = 0;
  for (uint32_t i = 0; i < n; i++) v = v * 256 + b[p + i];
  return v;
}

/* Field sizes as FIXED_SIZE in scan.ts: positive exact, negative at most. */
static const int8_t FIXED_SIZE[10] = {0, 0, -2, -4, 8, -1, -2, 0, -2, 8};
#define REQUIRED_MASK ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 5) | (1u << 7))

static int scan_asdu(const uint8_t *b, size_t p, size_t end, int i, is_frame_scan *s) {
  size_t off[10];
  uint32_t len[10];
  uint32_t seen = 0;
  while (p < end) {
    uint32_t tag, l;
    size_t value;
    if (p + 2 <= end && (b[p] & 0x1f) != 0x1f && b[p + 1] < 0x80) {
      tag = b[p];
      l = b[p + 1];
      value = p + 2;
      if (value + l > end) return 3;
    } else {
      tlv_t t;
      int st = read_tlv(b, p, end, &t);
      if (st) return st;
      tag = t.tag;
      value = t.value;
      l = t.len;
    }
    if (tag >= 0x80 && tag < 0x80 + 10) {
      int f = (int)tag - 0x80, size = FIXED_SIZE[f];
      if ((size > 0 && l != (uint32_t)size) || (size < 0 && (l < 1 || l > (uint32_t)-size))) return 8;
      off[f] = value;
      len[f] = l;
      seen |= 1u << f;
    }
    p = value + l;
  }
  if ((seen & REQUIRED_MASK) != REQUIRED_MASK) return 7;
  s->svid_off[i] = off[0];
  s->svid_len[i] = len[0];
  s->smp_cnt[i] = read_uint(b, off[2], len[2]);
  s->confrev[i] = read_uint(b, off[3], len[3]);
  s->synch[i] = read_uint(b, off[5], len[5]);
  return 0;
}

int is_scan_frame(const uint8_t *b, size_t start, size_t end, is_frame_scan *s) {
  s->asdu_count = 0;
  if (end - start < 14) return 1;
  size_t p = start + 12;
  uint32_t et = (uint32_t)b[p] << 8 | b[p + 1];
  s->vlan_present = 0;
  s->vlan_tci = 0;
  if (et == 0x8100) {
    if (end - start < 18) return 1;
    s->vlan_present = 1;
    s->vlan_tci = (uint32_t)b[p + 2] << 8 | b[p + 3];
    p += 4;
    et = (uint32_t)b[p] << 8 | b[p + 1];
  }
  if (et != 0x88ba) return 2;
  p += 2;
  if (p + 8 > end) return 1;
  s->app_id = (uint32_t)b[p] << 8 | b[p + 1];
  uint32_t length = (uint32_t)b[p + 2] << 8 | b[p + 3];
  s->reserved1 = (uint32_t)b[p + 4] << 8 | b[p + 5];
  if (length < 8) return 3;
  size_t limit = p + length;
  if (limit > end) return 3;
  p += 8;
  tlv_t t;
  int st = read_tlv(b, p, limit, &t);
  if (st) return st;
  if (t.tag != 0x60) return 4;
  size_t pdu_end = t.value + t.len;
  p = t.value;
  int64_t no_asdu = -1;
  size_t seq_start = 0, seq_end = 0;
  int have_seq = 0;
  while (p < pdu_end) {
    st = read_tlv(b, p, pdu_end, &t);
    if (st) return st;
    if (t.tag == 0x80) {
      if (t.len < 1 || t.len > 2) return 8;
      no_asdu = read_uint(b, t.value, t.len);
    } else if (t.tag == 0xa2) {
      have_seq = 1;
      seq_start = t.value;
      seq_end = t.value + t.len;
    }
    p = t.value + t.len;
  }
  if (no_asdu < 0) return 7;
  if (no_asdu == 0) return 5;
  if (!have_seq) return 7;
  p = seq_start;
  int n = 0;
  while (p < seq_end) {
    st = read_tlv(b, p, seq_end, &t);
    if (st) return st;
    if (t.tag != 0x30) return 4;
    if (n >= IS_MAX_ASDUS) return 9;
    size_t asdu_end = t.value + t.len;
    st = scan_asdu(b, t.value, asdu_end, n, s);
    if (st) return st;
    n++;
    p = asdu_end;
  }
  if (n == 0) return 5;
  if (n != no_asdu) return 6;
  s->asdu_count = n;
  return 0;
}
