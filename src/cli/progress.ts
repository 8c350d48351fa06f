/**
 * Progress on stderr: one line rewritten in place on a terminal; on a pipe or
 * a log file, a plain line every `everyS` seconds. Results never go here.
 */
export function progressLine(everyS = 10): { update(text: string): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  let shown = false;
  return {
    update(text: string) {
      if (tty) {
        process.stderr.write(`\r\x1b[K${text}`);
        shown = true;
      } else if (Date.now() - last >= everyS * 1000) {
        last = Date.now();
        process.stderr.write(text + '\n');
      }
    },
    done() {
      if (tty && shown) process.stderr.write('\n');
    },
  };
}

/** An AbortSignal that fires on the first SIGINT/SIGTERM; a second one exits at once. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`\nsvtrace: ${sig}: stopping cleanly (again to force)\n`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
