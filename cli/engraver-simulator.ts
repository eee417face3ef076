// A simulated engraver: the embosser simulator speaking the same mqtt-json profile
// (status, cmd, event topics; accepted, in_progress, completed or failed), taking `engrave`
// commands instead of `emboss`. Tests drive it as a library; `floorflow simulate engraver`
// runs one.
import { EmbosserSimulator, type EmbosserSimulatorOptions } from './embosser-simulator';

export type EngraverSimulatorOptions = Omit<EmbosserSimulatorOptions, 'commandType'>;

export class EngraverSimulator extends EmbosserSimulator {
  constructor(options: EngraverSimulatorOptions) {
    super({ ...options, commandType: 'engrave' });
  }
}
