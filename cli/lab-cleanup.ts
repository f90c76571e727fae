// lab-cleanup [STATE_ROOT]: removes the lab nodes (processes, overlay mounts,
// folders) that a crashed run left under STATE_ROOT, by default the test
// state root. Run folders whose owning process still runs are left alone.
import { cleanup, NODE_TEST_ROOT } from '../src/lab/nodes.js';

const root = process.argv[2] ?? NODE_TEST_ROOT;
const report = await cleanup(root);
console.log(
  `lab-cleanup ${root}: killed ${report.killed.length} process(es), unmounted ${report.unmounted.length}, ` +
    `removed ${report.removed.length} folder(s), kept ${report.kept.length} live run(s)`,
);
for (const dir of report.kept) console.log(`  kept (owner still running): ${dir}`);
