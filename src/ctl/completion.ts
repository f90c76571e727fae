// Shell completion scripts. Commands and flags are written into the script;
// unit names and machine IDs are asked of flotctl itself, through hidden
// commands, when completing, with the FLOTCTL_* environment of the shell.
export interface CompletionCommand {
  name: string;
  flags: readonly string[];
  /** What positional arguments are: registry units, units or local files, machines, a fixed list, or nothing. */
  args: 'units' | 'units-or-files' | 'machines' | 'none' | readonly string[];
}

export interface CompletionSpec {
  commands: readonly CompletionCommand[];
  globalFlags: readonly string[];
  /** Global flags that take a value (not completed from the list of commands). */
  valueFlags: readonly string[];
  /** Values of flags with a fixed set of them. */
  flagValues: Readonly<Record<string, readonly string[]>>;
  /** Flags whose value is a file. */
  fileFlags: readonly string[];
}

const shellWords = (words: readonly string[]): string => words.join(' ');

export function bashCompletion(spec: CompletionSpec): string {
  const cmdCases = spec.commands
    .map((c) => {
      const args = typeof c.args === 'string' ? c.args : `words:${c.args.join(' ')}`;
      return `    ${c.name}) flags="${shellWords(c.flags)}"; kind="${args}" ;;`;
    })
    .join('\n');
  const valueCases = Object.entries(spec.flagValues)
    .map(([flag, values]) => `    --${flag}) COMPREPLY=($(compgen -W "${shellWords(values)}" -- "$cur")); return ;;`)
    .join('\n');
  const fileFlags = spec.fileFlags.map((f) => `--${f}`).join('|');
  const valueFlags = spec.valueFlags.map((f) => `--${f}`).join('|');
  return `# bash completion for flotctl; load with: source <(flotctl completion bash)
_flotctl() {
  local cur prev cmd="" i flags="" kind="none" self="\${COMP_WORDS[0]}"
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local commands="${shellWords(spec.commands.map((c) => c.name))}"
  local globals="${shellWords(spec.globalFlags.map((f) => `--${f}`))}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      ${valueFlags}) ((i++)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  case "$prev" in
${valueCases}
    ${fileFlags}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    ${valueFlags}) return ;;
  esac
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "$globals" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi
  case "$cmd" in
${cmdCases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags $globals" -- "$cur"))
    return
  fi
  case "$kind" in
    units) COMPREPLY=($(compgen -W "$("$self" __complete-units 2>/dev/null)" -- "$cur")) ;;
    units-or-files) COMPREPLY=($(compgen -W "$("$self" __complete-units 2>/dev/null)" -- "$cur") $(compgen -f -- "$cur")) ;;
    machines) COMPREPLY=($(compgen -W "$("$self" __complete-machines 2>/dev/null)" -- "$cur")) ;;
    words:*) COMPREPLY=($(compgen -W "\${kind#words:}" -- "$cur")) ;;
  esac
}
complete -o filenames -F _flotctl flotctl
`;
}

/** zsh runs the bash function through bashcompinit. */
export function zshCompletion(spec: CompletionSpec): string {
  return `#compdef flotctl
# zsh completion for flotctl; load with: source <(flotctl completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(spec).replace(/^# bash completion.*\n/, '')}`;
}
