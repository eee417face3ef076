// The small plant `floorflow demo` loads through the import: a shift's print jobs on
// impositions and runlists, plate pairs for the embossers, products, engraving items and USB
// orders. Ids carry the shift's stamp, so every wave is new work and a re-run adds a shift
// instead of finding the last one done; the catalogue (products, items) is the same each time.
import type { EngravingItemRecord, JobRecord, OrderRecord, PlateRecord, ProductRecord } from '../core/import';
import type { SimulatedWriterFault } from '../core/processing';

export interface DemoWave {
  /** Digits only: it is part of job ids, whose pattern is `<digits>_<digits>`. */
  stamp: string;
  jobs: JobRecord[];
  /** Impositions in print order, each with its runlist. */
  impositions: Array<{ impositionId: string; runlistId: string }>;
  plates: PlateRecord[];
  orders: OrderRecord[];
}

export const DEMO_PRODUCTS: ProductRecord[] = [
  { product_code: 'LBL-ROLL-100', name: 'Label roll 100 mm', description: 'White gloss, 1,000 labels' },
  { product_code: 'LBL-ROLL-050', name: 'Label roll 50 mm', description: 'White matt, 2,000 labels' },
  { product_code: 'TAG-KISS-A5', name: 'Kiss-cut tag sheet A5' },
  { product_code: 'STK-ROUND-30', name: 'Round sticker 30 mm' },
  { product_code: 'STK-SQ-50', name: 'Square sticker 50 mm' },
  { product_code: 'PLT-REG-EU', name: 'Registration plate (EU)' },
  { product_code: 'PLT-REG-UK', name: 'Registration plate (UK)' },
  { product_code: 'TRP-CUP-S', name: 'Engraved cup, small', state: 'OFF' },
];

export const DEMO_ITEMS: EngravingItemRecord[] = [
  { id: 'CUP-S-SILVER', name: 'Silver cup (small)', stock_available: 40, max_lines: 3 },
  { id: 'PLQ-A5-OAK', name: 'Oak plaque A5', stock_available: 25, max_lines: 5 },
  { id: 'MEDAL-50-GOLD', name: 'Gold medal 50 mm', stock_available: 60, max_lines: 2 },
  { id: 'TROPHY-XL', name: 'Trophy XL', stock_available: 8, max_lines: 4 },
];

const CUSTOMERS = ['Hansen & Co', 'Bakery Lund', 'Nordic Signs', 'Aarhus FC', 'City Library', 'Vik Hotel'];
const PLATE_LETTERS = ['AB', 'CD', 'EF', 'GH', 'KL', 'MN', 'PR', 'ST', 'VW', 'XY'];

/**
 * What the jobs of a runlist need after printing. A runlist scan marks every job on it, so
 * all jobs of one runlist share their operations: odd runlists are kiss-cut too.
 */
export function demoOperations(runlistId: string): string[] {
  return Number(runlistId.split('-').pop()) % 2 === 1
    ? ['print', 'coating', 'kiss_cut']
    : ['print', 'coating'];
}

/** "2612021405" for 2026-12-02 14:05 UTC: a shift's stamp. */
export function shiftStamp(at: Date, suffix = 0): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${p(at.getUTCFullYear() % 100)}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}` +
    `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${suffix > 0 ? p(suffix) : ''}`
  );
}

/**
 * The demo's simulated USB writer profile (set on its copy of the processing flow): the first
 * write of every fourth order of a wave (numbers ending in 04, 08, 12, ...) fails.
 */
export const DEMO_WRITER_FAULTS: SimulatedWriterFault[] = [
  { orders: '-([02468][048]|[13579][26])$', fault: 'fail', attempts: 1 },
];

/**
 * One wave of work: `impositionCount` impositions of two or three jobs each, runlists of two
 * impositions, a plate pair per imposition and an order per imposition. The simulated USB
 * writer fails the first write of every fourth order (DEMO_WRITER_FAULTS), so retries are seen too.
 */
export function demoWave(stamp: string, impositionCount: number): DemoWave {
  const jobs: JobRecord[] = [];
  const impositions: DemoWave['impositions'] = [];
  const plates: PlateRecord[] = [];
  const orders: OrderRecord[] = [];
  let jobNo = 0;
  for (let i = 1; i <= impositionCount; i++) {
    const impositionId = `IMP-${stamp}-${i}`;
    const runlistId = `RL-${stamp}-${Math.ceil(i / 2)}`;
    impositions.push({ impositionId, runlistId });
    const jobsHere = i % 3 === 0 ? 3 : 2;
    for (let j = 0; j < jobsHere; j++) {
      jobNo++;
      const jobId = `${stamp}_${jobNo}`;
      jobs.push({
        job_id: jobId,
        version_tag: '1',
        operations: demoOperations(runlistId),
        files: [{ file_id: `FILE_1_Labex_${jobId}_1`, imposition_id: impositionId, runlist_id: runlistId }],
      });
    }
    const number = `${PLATE_LETTERS[i % PLATE_LETTERS.length]}${String(10 + ((Number(stamp.slice(-4)) + i) % 90))} ${stamp.slice(-3)}`;
    for (const position of ['front', 'rear'] as const)
      plates.push({
        plate_number: number,
        batch_code: `B-${stamp}`,
        position,
        status: 'ready_for_embossing',
      });
    orders.push({
      order_number: `ORD-${stamp}-${String(i).padStart(2, '0')}`,
      details: {
        customer: CUSTOMERS[i % CUSTOMERS.length],
        content: ['welcome.mp4', `catalogue-${i}.pdf`],
      },
    });
  }
  return { stamp, jobs, impositions, plates, orders };
}
