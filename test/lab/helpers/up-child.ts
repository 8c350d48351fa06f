/**
 * Runs `labUp` in a process of its own, so a test can `kill -9` it midway:
 * `node --import tsx up-child.ts RUN_DIR PREFIX SWITCH [qemu]`.
 */
import { labUp } from '../../../src/lab/index.ts';

const [runDir, prefix, sw, vm] = process.argv.slice(2);
if (!runDir || !prefix || (sw !== 'ovs' && sw !== 'bridge')) throw new Error('usage: up-child.ts RUN_DIR PREFIX ovs|bridge [qemu]');
await labUp({ runDir, prefix, switch: sw, ...(vm === 'qemu' ? { vm: 'qemu' as const } : {}) });
process.stdout.write('up\n');
