/**
 * systemd-style specifiers in [X-Fleet] values, so one template can say
 * `Conflicts=%p@*.service` or `MachineOf=db@%i.service` for all its instances.
 *
 *   %n  full name           web@3.service
 *   %N  name without type   web@3
 *   %p  prefix              web   (before `@`, or the name without its type)
 *   %i  instance            3     (empty for templates and plain units)
 *   %%  a literal %
 *
 * One left-to-right pass, so an expansion is never expanded again (fleet
 * replaced one specifier after the other, which mangled `%%n`). Any other
 * `%x`, and a trailing `%`, stay as written, as fleet left them.
 */
export function expandSpecifiers(value: string, unitName: string): string {
  if (!value.includes('%')) return value;
  const parts = nameParts(unitName);
  return value.replace(/%([nNpi%])/g, (_m, spec: string) => {
    switch (spec) {
      case 'n':
        return unitName;
      case 'N':
        return parts.stem;
      case 'p':
        return parts.prefix;
      case 'i':
        return parts.instance;
      default:
        return '%';
    }
  });
}

/** Splits without validating: specifiers must not be the place a bad name is refused. */
function nameParts(unitName: string): { stem: string; prefix: string; instance: string } {
  const dot = unitName.lastIndexOf('.');
  const stem = dot < 0 ? unitName : unitName.slice(0, dot);
  const at = stem.indexOf('@');
  if (at < 0) return { stem, prefix: stem, instance: '' };
  return { stem, prefix: stem.slice(0, at), instance: stem.slice(at + 1) };
}
