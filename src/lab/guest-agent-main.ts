/**
 * Entry of the guest agent's own small bundle (dist/guest-agent.js): the
 * guest's /init starts it with the host's node. Loading the whole CLI under
 * TCG emulation takes ~10 s; this takes well under one.
 */
import { runGuestAgent } from './guest-agent.ts';

runGuestAgent();
