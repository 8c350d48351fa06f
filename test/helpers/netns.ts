/** Two network namespaces joined by a veth pair, removed again whatever happens. */
import { execFileSync } from 'node:child_process';

export interface VethPair { nsA: string; ifA: string; nsB: string; ifB: string; remove(): void }

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function makeVethPair(tag: string): VethPair {
  const id = `${tag}${process.pid % 100000}`;
  const nsA = `svt-${id}-a`, nsB = `svt-${id}-b`, ifA = `${id}a`.slice(0, 15), ifB = `${id}b`.slice(0, 15);
  const remove = () => {
    for (const ns of [nsA, nsB]) { try { ip('netns', 'del', ns); } catch { /* already gone */ } }
    try { ip('link', 'del', ifA); } catch { /* gone with its namespace */ }
  };
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB);
    ip('link', 'set', ifA, 'netns', nsA);
    ip('link', 'set', ifB, 'netns', nsB);
    for (const [ns, ifn] of [[nsA, ifA], [nsB, ifB]] as const) {
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${ifn}.disable_ipv6=1`], { stdio: 'ignore' });
      ip('-n', ns, 'link', 'set', ifn, 'up');
    }
  } catch (e) {
    remove();
    throw e;
  }
  return { nsA, ifA, nsB, ifB, remove };
}
