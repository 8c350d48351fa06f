/**
 * The one-machine lab: publisher namespace → veth → OVS (userspace datapath)
 * or Linux bridge in the root namespace → veth → "VM" namespace.
 */
export {
  resolveLabConfig, namesForPrefix, validateIfName, validateNetnsName, DEFAULT_RUN_DIR, DEFAULT_PREFIX, DEFAULT_MTU,
  type LabConfig, type LabConfigInput, type LabNames, type SwitchKind,
} from './config.ts';
export {
  validateImpairment, netemArgs, parseQdiscJson, describeImpairment, isHop, HOPS,
  type Hop, type Impairment, type QdiscInfo,
} from './impair-spec.ts';
export { applyImpairment, clearImpairment, hopTarget, type HopTarget } from './impair.ts';
export { labUp, type LabUpOptions, type LabUpResult } from './up.ts';
export { labDown, type LabDownResult, type TeardownStep, type Progress } from './down.ts';
export { labStatus, type LabStatus, type StatusItem, type LinkStatus } from './status.ts';
export { readLabState, loadState, statePath, type LabTopology, type LabState, type LabResource } from './state.ts';
