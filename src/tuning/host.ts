/**
 * Reading a host's /proc and /sys under a root directory ('/' on the real
 * machine, a temp dir holding a fake tree in tests). Every read is
 * best-effort: a file that is absent or unreadable gives null, never an
 * exception, so each check can say "unknown" and why.
 */
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export interface HostRoot {
  root: string;
}

/** `p` (absolute, as on the host) under the root. */
export const at = (h: HostRoot, p: string): string => join(h.root, p);

/** The file's text without its trailing newline, or null when it cannot be read. */
export function readText(h: HostRoot, p: string): string | null {
  try {
    return readFileSync(at(h, p), 'utf8').replace(/\n$/, '');
  } catch {
    return null;
  }
}

/** Entries of a directory, sorted; [] when it cannot be read. */
export function listDir(h: HostRoot, p: string): string[] {
  try {
    return readdirSync(at(h, p)).sort();
  } catch {
    return [];
  }
}

/** A path with its symlinks resolved, as a host path (under the root), or null. */
export function resolveLink(h: HostRoot, p: string): string | null {
  try {
    const real = realpathSync(at(h, p));
    const rootReal = realpathSync(h.root);
    const rel = relative(rootReal, real);
    if (rel.startsWith('..')) return null;
    return '/' + rel.split(sep).join('/');
  } catch {
    return null;
  }
}

/** "0-3,8,10-11" → [0, 1, 2, 3, 8, 10, 11]; null when the text is not a CPU list. An empty text is []. */
export function parseCpuList(text: string | null): number[] | null {
  if (text === null) return null;
  const t = text.trim();
  if (t === '') return [];
  const out = new Set<number>();
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::\d+\/\d+)?$/.exec(part.trim());
    if (!m) return null;
    const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 65_536) return null;
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** [0, 1, 2, 3, 8] → "0-3,8". */
export function formatCpuList(cpus: readonly number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The value of `key=` in a kernel command line (the last one wins, as in the kernel), or null. */
export function cmdlineArg(cmdline: string, key: string): string | null {
  let value: string | null = null;
  for (const word of cmdline.split(/\s+/)) {
    if (word === '--') break; // the rest goes to init
    if (word === key) value = '';
    else if (word.startsWith(`${key}=`)) value = word.slice(key.length + 1);
  }
  return value;
}

/** The CPU list of an `isolcpus=` value: flags (domain, managed_irq, nohz) come first and are skipped. */
export function isolcpusList(value: string): number[] | null {
  const parts = value.split(',');
  let i = 0;
  while (i < parts.length && /^[a-z_]+$/.test(parts[i]!)) i++;
  return parseCpuList(parts.slice(i).join(','));
}
