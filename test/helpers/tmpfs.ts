/** A small tmpfs to fill for real (needs root to mount), unmounted and removed whatever happens. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk { dir: string; remove(): void }

/** A tmpfs of `size` (e.g. "1m") under a new temp dir, or the reason it cannot be made here. */
export function smallDisk(size = '1m'): SmallDisk | string {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a small tmpfs to fill';
  const root = mkdtempSync(join(tmpdir(), 'svtrace-full-'));
  const dir = join(root, 'small');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    return `mount -t tmpfs failed here: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
  return {
    dir,
    remove() {
      try { execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); } finally { rmSync(root, { recursive: true, force: true }); }
    },
  };
}
