// Tables as fleetctl printed them: Go's text/tabwriter with minimum width 0,
// tab width 8, padding 1 and tabs as the padding character. Each column is
// as wide as its widest cell plus one, rounded up to a multiple of eight, and
// filled with tab characters; the last column is not padded. Output is thus
// byte-for-byte what fleetctl wrote for the same cells.
const TAB_WIDTH = 8;
const PADDING = 1;

/** Width of a cell as Go's tabwriter counts it: in code points. */
function textWidth(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Formats rows (header first, if any) into aligned lines, each ending in a newline. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  // A cell must not contain a tab or a newline: either would break the columns.
  const clean = rows.map((r) => r.map((c) => c.replace(/[\t\n\r]/g, ' ')));
  const columns = Math.max(...clean.map((r) => r.length));
  const widths: number[] = [];
  for (let j = 0; j < columns - 1; j++) {
    let w = 0;
    for (const r of clean) if (j < r.length - 1) w = Math.max(w, textWidth(r[j]!) + PADDING);
    widths.push(Math.ceil(w / TAB_WIDTH) * TAB_WIDTH);
  }
  let out = '';
  for (const r of clean) {
    r.forEach((cell, j) => {
      out += cell;
      if (j < r.length - 1) out += '\t'.repeat(Math.ceil((widths[j]! - textWidth(cell)) / TAB_WIDTH));
    });
    out += '\n';
  }
  return out;
}
