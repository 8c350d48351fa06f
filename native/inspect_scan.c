/*
 * inspect_scan.c: capture blocks for the native inspect engine
 * (see inspect_scan.h). The reader follows src/pcap/parser.ts unit by unit
 * (classic pcap in µs or ns, the "modified" variant, pcapng) and gives up
 * (`fallback`) wherever that reader would throw. Every read is bounded by
 * the bytes present and the lengths the container declares.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect_scan.h"

enum { ST_DETECT, ST_PCAP_HEADER, ST_PCAP, ST_PCAPNG };

#define BLOCK_SHB 0x0a0d0d0au
#define BLOCK_IDB 1u
#define BLOCK_OPB 2u
#define BLOCK_SPB 3u
#define BLOCK_EPB 6u
#define TWO_POW_53 9007199254740992LL

static uint32_t rd16(const uint8_t *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | p[1];
}
static uint32_t rd32(const uint8_t *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int give_up(is_ctx *c, const char *why) {
  if (!c->fallback) c->fallback = why;
  return 0;
}

void is_init(is_ctx *c, int64_t wrap_at) {
  memset(c, 0, sizeof *c);
  c->wrap_at = wrap_at;
  c->stage = ST_DETECT;
  c->le = 1;
  c->record_header = 16;
  c->frac_to_ns = 1000;
  c->section = -1;
}

void is_free(is_ctx *c) {
  for (size_t i = 0; i < c->nstreams; i++) is_stream_free(c->streams[i]);
  free(c->streams);
  free(c->table);
  free(c->ifaces);
  c->streams = NULL;
  c->table = NULL;
  c->ifaces = NULL;
  c->nstreams = 0;
}

static int detect(is_ctx *c, const uint8_t *b) {
  uint32_t m = rd32(b, 0);
  int le;
  const char *f;
  switch (m) {
  case 0xa1b2c3d4u: f = "pcap", le = 0; break;
  case 0xd4c3b2a1u: f = "pcap", le = 1; break;
  case 0xa1b23c4du: f = "pcap-ns", le = 0; break;
  case 0x4d3cb2a1u: f = "pcap-ns", le = 1; break;
  case 0xa1b2cd34u: f = "pcap-modified", le = 0; break;
  case 0x34cdb2a1u: f = "pcap-modified", le = 1; break;
  case BLOCK_SHB: f = "pcapng", le = 1; break;
  default: return give_up(c, "unknown magic");
  }
  c->format = f;
  c->le = le;
  if (m == BLOCK_SHB) {
    c->stage = ST_PCAPNG;
    return 1;
  }
  c->frac_to_ns = !strcmp(f, "pcap-ns") ? 1 : 1000;
  c->record_header = !strcmp(f, "pcap-modified") ? 24 : 16;
  c->stage = ST_PCAP_HEADER;
  return 1;
}

/* Byte order of the pcapng block at b (12 bytes present): 1 little, 0 big, -1 given up. */
static int block_le(is_ctx *c, const uint8_t *b) {
  if (rd32(b, 1) != BLOCK_SHB) return c->le;
  uint32_t bom = rd32(b + 8, 1);
  if (bom == 0x1a2b3c4du) return 1;
  if (bom == 0x4d3c2b1au) return 0;
  give_up(c, "bad byte-order magic");
  return -1;
}

/* Length of the unit at b, -(bytes needed to know it), or 0 when given up. */
static int64_t unit_length(is_ctx *c, const uint8_t *b, size_t avail) {
  if (c->stage == ST_DETECT) {
    if (avail < 4) return -4;
    if (!detect(c, b)) return 0;
  }
  if (c->stage == ST_PCAP_HEADER) return 24;
  if (c->stage == ST_PCAP) {
    if (avail < (size_t)c->record_header) return -c->record_header;
    uint32_t cap = rd32(b + 8, c->le);
    if (cap > IS_MAX_RECORD) return give_up(c, "record too large");
    return (int64_t)c->record_header + cap;
  }
  if (avail < 12) return -12;
  int ble = block_le(c, b);
  if (ble < 0) return 0;
  uint32_t len = rd32(b + 4, ble);
  if (len < 12 || len % 4 || len > IS_MAX_RECORD) return give_up(c, "bad block length");
  return len;
}

static void packet(is_ctx *c, const uint8_t *b, size_t at, uint32_t cap, int64_t sec, int64_t nsec,
                   uint64_t abs) {
  c->packets++;
  is_frame(c, b, at, at + cap, sec, nsec, abs);
}

static void classic_record(is_ctx *c, const uint8_t *b, size_t pos, uint32_t cap, uint64_t abs) {
  int64_t sec = rd32(b + pos, c->le);
  int64_t ns = (int64_t)rd32(b + pos + 4, c->le) * c->frac_to_ns;
  if (ns >= 1000000000) {
    int64_t carry = ns / 1000000000;
    sec += carry;
    ns -= carry * 1000000000;
  }
  size_t at = pos + (size_t)c->record_header;
  packet(c, b, at, cap, sec, ns, abs + (at - pos));
}

static void interface_description(is_ctx *c, const uint8_t *b, uint32_t len) {
  if (len < 20) {
    give_up(c, "short IDB");
    return;
  }
  is_iface f = {.snap_len = rd32(b + 12, c->le), .units_per_sec = 1000000, .ns_per_unit = 1000};
  size_t p = 16, end = len - 4;
  while (p + 4 <= end) {
    uint32_t code = rd16(b + p, c->le), olen = rd16(b + p + 2, c->le);
    if (code == 0) break;
    size_t v = p + 4;
    if (v + olen > end) {
      give_up(c, "IDB option overruns");
      return;
    }
    if (code == 9 && olen >= 1) {
      uint8_t r = b[v];
      if (r & 0x80 || r > 9) {
        give_up(c, "timestamp resolution other than 10^-0..10^-9 s");
        return;
      }
      int64_t ups = 1;
      for (int i = 0; i < r; i++) ups *= 10;
      f.units_per_sec = ups;
      f.ns_per_unit = 1000000000 / ups;
    } else if (code == 14 && olen >= 8) {
      uint64_t lo = rd32(b + v + (c->le ? 0 : 4), c->le), hi = rd32(b + v + (c->le ? 4 : 0), c->le);
      int64_t off = (int64_t)(hi << 32 | lo);
      if (off >= TWO_POW_53 || off <= -TWO_POW_53) {
        give_up(c, "if_tsoffset beyond 2^53");
        return;
      }
      f.offset_sec = off;
    }
    p = v + ((olen + 3) & ~3u);
  }
  if (c->nifaces == c->capifaces) {
    size_t cap = c->capifaces ? c->capifaces * 2 : 4;
    is_iface *g = realloc(c->ifaces, cap * sizeof *g);
    if (!g) {
      c->error = "out of memory";
      give_up(c, "out of memory");
      return;
    }
    c->ifaces = g;
    c->capifaces = cap;
  }
  c->ifaces[c->nifaces++] = f;
}

static void timed_packet(is_ctx *c, const uint8_t *b, size_t pos, uint32_t len, uint32_t id,
                         uint64_t abs) {
  const uint32_t hdr = 28;
  if (id >= c->nifaces) {
    give_up(c, "unknown interface");
    return;
  }
  const is_iface *f = &c->ifaces[id];
  uint32_t cap = rd32(b + pos + hdr - 8, c->le);
  if (cap > len - hdr - 4) {
    give_up(c, "packet longer than its block");
    return;
  }
  uint64_t units = (uint64_t)rd32(b + pos + hdr - 16, c->le) << 32 | rd32(b + pos + hdr - 12, c->le);
  uint64_t sec = units / (uint64_t)f->units_per_sec;
  int64_t nsec = (int64_t)(units % (uint64_t)f->units_per_sec) * f->ns_per_unit;
  if (sec >= (uint64_t)TWO_POW_53) {
    give_up(c, "timestamp beyond 2^53 s");
    return;
  }
  int64_t s = (int64_t)sec + f->offset_sec;
  if (s >= TWO_POW_53 || s <= -TWO_POW_53) {
    give_up(c, "timestamp beyond 2^53 s");
    return;
  }
  packet(c, b, pos + hdr, cap, s, nsec, abs + hdr);
}

static void block(is_ctx *c, const uint8_t *b, size_t pos, uint32_t len, uint64_t abs) {
  const uint8_t *p = b + pos;
  int ble = block_le(c, p);
  if (ble < 0) return;
  if (rd32(p + len - 4, ble) != len) {
    give_up(c, "trailing length differs");
    return;
  }
  uint32_t type = rd32(p, ble);
  if (type == BLOCK_SHB) {
    if (len < 28) {
      give_up(c, "short SHB");
      return;
    }
    c->le = ble;
    if (rd16(p + 12, c->le) != 1) {
      give_up(c, "pcapng version");
      return;
    }
    c->section++;
    c->nifaces = 0;
  } else if (c->section < 0) {
    give_up(c, "block before SHB");
  } else if (type == BLOCK_EPB) {
    if (len < 32) give_up(c, "short EPB");
    else timed_packet(c, b, pos, len, rd32(p + 8, c->le), abs);
  } else if (type == BLOCK_SPB) {
    if (len < 16 || c->nifaces == 0) {
      give_up(c, "bad SPB");
      return;
    }
    uint32_t orig = rd32(p + 8, c->le), snap_len = c->ifaces[0].snap_len;
    uint32_t snap = snap_len == 0 ? orig : (orig < snap_len ? orig : snap_len);
    uint32_t cap = snap < len - 16 ? snap : len - 16;
    packet(c, b, pos + 12, cap, 0, 0, abs + 12);
  } else if (type == BLOCK_IDB) {
    interface_description(c, p, len);
  } else if (type == BLOCK_OPB) {
    if (len < 32) give_up(c, "short OPB");
    else timed_packet(c, b, pos, len, rd16(p + 8, c->le), abs);
  }
}

static void unit(is_ctx *c, const uint8_t *b, size_t pos, uint32_t len, uint64_t abs) {
  if (c->stage == ST_PCAP) {
    classic_record(c, b, pos, len - (uint32_t)c->record_header, abs);
  } else if (c->stage == ST_PCAPNG) {
    block(c, b, pos, len, abs);
  } else {
    if (rd16(b + pos + 4, c->le) != 2) {
      give_up(c, "pcap version");
      return;
    }
    c->section = 0;
    c->stage = ST_PCAP;
  }
}

size_t is_push(is_ctx *c, const uint8_t *b, size_t n, uint64_t abs) {
  size_t pos = 0;
  c->input_bytes = abs + n;
  while (!c->fallback) {
    if (c->stage == ST_PCAP) {
      /* the hot loop for classic pcap */
      const size_t hdr = (size_t)c->record_header;
      while (n - pos >= hdr && !c->fallback) {
        uint32_t cap = rd32(b + pos + 8, c->le);
        if (cap > IS_MAX_RECORD) {
          give_up(c, "record too large");
          return pos;
        }
        size_t next = pos + hdr + cap;
        if (next > n) return pos;
        __builtin_prefetch(b + pos + 2048); /* a hint only: never dereferenced */
        classic_record(c, b, pos, cap, abs + pos);
        pos = next;
      }
      return pos;
    }
    int64_t u = unit_length(c, b + pos, n - pos);
    if (u <= 0 || (uint64_t)u > n - pos) return pos;
    unit(c, b, pos, (uint32_t)u, abs + pos);
    pos += (size_t)u;
  }
  return pos;
}

void is_end(is_ctx *c, const uint8_t *tail, size_t n, uint64_t abs) {
  if (c->fallback) return;
  if (!c->format) {
    give_up(c, "no capture header");
    return;
  }
  if (n > 0) {
    int64_t u = unit_length(c, tail, n);
    if (u == 0) return;
    c->truncated = 1;
    c->trunc_offset = abs;
    c->trunc_expected = (uint64_t)(u < 0 ? -u : u);
    c->trunc_available = n;
  }
  is_finish(c);
}

void is_scan_buffer(is_ctx *c, const uint8_t *b, size_t n) {
  size_t used = is_push(c, b, n, 0);
  is_end(c, b + used, n - used, used);
}

void is_scan_fd(is_ctx *c, int fd) {
  size_t cap = 16 << 20, fill = 0;
  uint64_t abs = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    c->error = "out of memory";
    give_up(c, "out of memory");
    return;
  }
  while (!c->fallback) {
    if (fill == cap) {
      /* a unit larger than the buffer (bounded by IS_MAX_RECORD through unit_length) */
      uint8_t *g = realloc(buf, cap * 2);
      if (!g) {
        c->error = "out of memory";
        give_up(c, "out of memory");
        break;
      }
      buf = g;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + fill, cap - fill);
    if (r < 0) {
      if (errno == EINTR) continue;
      give_up(c, "read failed");
      break;
    }
    if (r == 0) {
      is_end(c, buf, fill, abs);
      break;
    }
    fill += (size_t)r;
    size_t used = is_push(c, buf, fill, abs);
    memmove(buf, buf + used, fill - used);
    fill -= used;
    abs += used;
  }
  free(buf);
}
