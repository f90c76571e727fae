import { bashCompletion, zshCompletion, type CompletionSpec } from '../../src/ctl/completion.js';
import { defineCommand, type CtlCommand } from './common.js';

export function completionCommand(spec: () => CompletionSpec): CtlCommand {
  return defineCommand<{ shell: string }>({
    command: 'completion <shell>',
    describe: 'Print a shell completion script (bash or zsh); e.g. source <(flotctl completion bash)',
    builder: (y) => y.positional('shell', { type: 'string', choices: ['bash', 'zsh'], describe: 'shell' }),
    completion: { flags: [], args: ['bash', 'zsh'] },
    run: async (ctx, argv) => ctx.out(argv.shell === 'zsh' ? zshCompletion(spec()) : bashCompletion(spec())),
  });
}
