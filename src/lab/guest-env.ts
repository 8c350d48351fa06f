/**
 * What a command run inside the lab's QEMU guest (by `lab exec`) learns from
 * its environment: the accelerator (the guest agent sets SVTRACE_VM_ACCEL)
 * and the guest↔host clock offset measured as the command started. Kept in
 * the manifest of every record written in the guest, so the report can put
 * the guest's points on the host's clock.
 */
/** Inside the lab's QEMU guest (its agent sets SVTRACE_VM_ACCEL): which accelerator, since TCG timings are an emulator's. */
export function guestOfLab(): { vm?: { accel: string; note: string; clock?: Record<string, string> } } {
  const env = process.env;
  const accel = env.SVTRACE_VM_ACCEL;
  if (accel !== 'tcg' && accel !== 'kvm') return {};
  const note = accel === 'tcg' ? 'QEMU TCG emulation (no KVM): timings are an emulator\'s, not a real VM\'s' : 'QEMU with KVM';
  const ns = (v: string | undefined) => (v !== undefined && /^-?\d{1,19}$/.test(v) ? v : undefined);
  const offset = ns(env.SVTRACE_CLOCK_OFFSET_NS);
  const clock = offset === undefined ? undefined : {
    method: 'guest − host CLOCK_REALTIME, NTP-style over the lab control channel, min-RTT exchange, measured when the command started',
    offsetNs: offset, uncertaintyNs: ns(env.SVTRACE_CLOCK_UNCERTAINTY_NS) ?? '', measuredAtNs: ns(env.SVTRACE_CLOCK_MEASURED_AT_NS) ?? '',
  };
  return { vm: { accel, note, ...(clock ? { clock } : {}) } };
}
