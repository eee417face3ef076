// The processing flow with a fault profile on its simulated USB writer, as a plant would set it
// in the editor for a trial: tests make writes fail or hang this way, never through an order.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SimulatedWriterFault } from '../../core/processing';
import type { FlowNode } from '../../core/flow-files';
import { PROJECT_ROOT } from './flow-kit';

const WRITER_ID = 'processing-usb-writer';

function withFaults(flowsDir: string, faults: SimulatedWriterFault[]): void {
  const file = path.join(flowsDir, 'processing.json');
  const nodes = JSON.parse(fs.readFileSync(file, 'utf8')) as FlowNode[];
  const writer = nodes.find((n) => n.id === WRITER_ID);
  if (!writer) throw new Error(`${file}: no node ${WRITER_ID}`);
  writer.faults = faults;
  fs.writeFileSync(file, JSON.stringify(nodes, null, 2) + '\n');
}

/** A copy of flows/processing.json whose simulated USB writer has `faults`; its path, for the flow kit. */
export function processingFlowWithWriterFaults(faults: SimulatedWriterFault[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floorflow-processing-flow-'));
  fs.copyFileSync(path.join(PROJECT_ROOT, 'flows', 'processing.json'), path.join(dir, 'processing.json'));
  withFaults(dir, faults);
  return path.join(dir, 'processing.json');
}

/**
 * The runtime's copy of the shipped flows in `dataDir` (where the runtime test support runs
 * them from), with `faults` on the simulated USB writer.
 */
export function runtimeFlowsWithWriterFaults(dataDir: string, faults: SimulatedWriterFault[]): void {
  const flowsDir = path.join(dataDir, 'flows-copy');
  fs.cpSync(path.join(PROJECT_ROOT, 'flows'), flowsDir, { recursive: true });
  withFaults(flowsDir, faults);
}
