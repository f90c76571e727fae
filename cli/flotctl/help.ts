import { defineCommand } from './common.js';

// `help [command]` is answered by the runner (as `[command] --help`); this
// module gives it its place in the list of commands and in completion.
export const help = defineCommand<object>({
  command: 'help [command]',
  describe: 'Show help for flotctl or for one command',
  completion: { flags: [], args: 'none' },
  run: async () => undefined,
});
