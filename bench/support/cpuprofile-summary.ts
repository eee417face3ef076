// Summarises a V8 .cpuprofile (node --cpu-prof) by self time: by area (floorflow's files under
// dist/, each node_modules package, Node's internals, GC) and by function. Only the samples of
// the traffic window count: from the first to the last sample whose stack holds a marker function
// (by default the inbox writer's write), so start-up and shutdown do not dilute the figures.
// Self time of a system call is wall time: a write that wakes the peer on a busy 2-core machine
// often loses the core to it, so compare with the process's user and system CPU (/proc), not as CPU.
// Usage: node dist/bench/support/cpuprofile-summary.js <file.cpuprofile> [--marker write@inbox-writer]
//        [--second-half] [--top N]
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

/** Where a function lives: ours:<file>, nm:<package>, node:<module>, or a V8 pseudo-frame. */
function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const packages = [...url.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
  if (packages.length > 0) return `nm:${packages[packages.length - 1][1]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const ours = url.match(/\/dist\/(.*)$/);
  return ours ? `ours:${ours[1]}` : url;
}

function main(): void {
  const file = process.argv[2];
  if (!file)
    throw new Error(
      'usage: cpuprofile-summary <file.cpuprofile> [--marker fn@file] [--second-half] [--top N]',
    );
  const [markerName, markerFile] = (option('--marker') ?? 'write@inbox-writer').split('@');
  const top = Number(option('--top') ?? 40);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const marked = new Map<number, boolean>();
  const hasMarker = (id: number): boolean => {
    const known = marked.get(id);
    if (known !== undefined) return known;
    const { functionName, url } = byId.get(id)!.callFrame;
    const up = parent.get(id);
    const result =
      (functionName === markerName && url.includes(markerFile ?? '')) || (up !== undefined && hasMarker(up));
    marked.set(id, result);
    return result;
  };

  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) times.push((t += delta));
  let first = profile.samples.findIndex(hasMarker);
  let last = -1;
  profile.samples.forEach((id, i) => {
    if (hasMarker(id)) last = i;
  });
  if (first < 0) throw new Error(`no sample holds ${markerName}@${markerFile}`);
  if (process.argv.includes('--second-half')) {
    const middle = (times[first] + times[last]) / 2;
    while (times[first] < middle) first += 1;
  }

  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = first; i < last; i += 1) {
    const { functionName, url, lineNumber } = byId.get(profile.samples[i])!.callFrame;
    const micros = times[i + 1] - times[i];
    if (functionName === '(idle)') {
      idle += micros;
      continue;
    }
    busy += micros;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + micros);
    const key = `${functionName || '(anonymous)'} ${area}:${lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + micros);
  }
  const print = (title: string, rows: Map<string, number>): void => {
    console.log(title);
    for (const [key, micros] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(
        `${((100 * micros) / busy).toFixed(1).padStart(5)} %  ${(micros / 1000).toFixed(0).padStart(6)} ms  ${key}`,
      );
  };
  console.log(
    `window ${((times[last] - times[first]) / 1e6).toFixed(2)} s: busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`,
  );
  print('by area (self time)', areas);
  print('by function (self time)', functions);
}

main();
