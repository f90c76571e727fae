// systemd's D-Bus object paths for units: /org/freedesktop/systemd1/unit/
// followed by the name escaped as sd_bus_path_encode does (every byte but
// [A-Za-z0-9], and a leading digit, as _xx in lower-case hex), so
// `web@1.service` is `web_401_2eservice`. Computed here so that signals can
// be mapped to names without a GetUnit call (which would not even work for
// units not loaded).
export const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit';

export function unitObjectPath(name: string): string {
  return `${UNIT_PATH_PREFIX}/${escapeLabel(name)}`;
}

/** The unit name of a unit object path; undefined for other paths. */
export function unitNameOfPath(objectPath: string): string | undefined {
  if (!objectPath.startsWith(`${UNIT_PATH_PREFIX}/`)) return undefined;
  const label = objectPath.slice(UNIT_PATH_PREFIX.length + 1);
  return label.includes('/') ? undefined : unescapeLabel(label);
}

export function escapeLabel(text: string): string {
  if (text === '') return '_';
  let out = '';
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    const alpha = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    const digit = b >= 0x30 && b <= 0x39;
    out += alpha || (digit && i > 0) ? String.fromCharCode(b) : `_${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export function unescapeLabel(label: string): string {
  if (label === '_') return '';
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    if (label[i] === '_' && /^[0-9a-fA-F]{2}$/.test(label.slice(i + 1, i + 3))) {
      bytes.push(parseInt(label.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(label.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
