import { VERSION } from '../../src/version.js';
import { defineCommand } from './common.js';

export const version = defineCommand<object>({
  command: 'version',
  describe: 'Print the version of flotctl',
  completion: { flags: [], args: 'none' },
  run: async (ctx) => ctx.out(`flotctl version ${VERSION}\n`),
});
