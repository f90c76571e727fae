// Every flotctl command, in the order help lists them.
import type { CompletionSpec } from '../../src/ctl/completion.js';
import { GLOBAL_FLAGS } from '../../src/ctl/options.js';
import { announce } from './announce.js';
import { cat } from './cat.js';
import type { CtlCommand } from './common.js';
import { completeMachines, completeUnits } from './complete.js';
import { completionCommand } from './completion.js';
import { destroy } from './destroy.js';
import { drain, undrain } from './drain.js';
import { help } from './help.js';
import { journal } from './journal.js';
import { listMachines } from './list-machines.js';
import { listUnitFiles } from './list-unit-files.js';
import { listUnits } from './list-units.js';
import { load } from './load.js';
import { restart } from './restart.js';
import { services } from './services.js';
import { start } from './start.js';
import { status } from './status.js';
import { stop } from './stop.js';
import { submit } from './submit.js';
import { unload } from './unload.js';
import { version } from './version.js';

export const COMMANDS: readonly CtlCommand[] = [
  listMachines,
  listUnitFiles,
  listUnits,
  submit,
  load,
  start,
  stop,
  unload,
  restart,
  destroy,
  drain,
  undrain,
  cat,
  status,
  journal,
  announce,
  services,
  completionCommand(completionSpec),
  version,
  help,
  completeUnits,
  completeMachines,
];

export function completionSpec(): CompletionSpec {
  const visible = COMMANDS.filter((c) => !c.hidden);
  return {
    commands: visible.map((c) => ({ name: c.name, ...c.completion, flags: [...c.completion.flags, '--help'] })),
    globalFlags: GLOBAL_FLAGS.map((f) => f.flag).concat('help'),
    valueFlags: GLOBAL_FLAGS.filter((f) => f.type !== 'boolean').map((f) => f.flag),
    flagValues: Object.fromEntries(GLOBAL_FLAGS.filter((f) => f.choices).map((f) => [f.flag, f.choices!])),
    fileFlags: ['key-file', 'cert-file', 'ca-file'],
  };
}
