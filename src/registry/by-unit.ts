// Records keyed by unit and then machine (decisions, states), as the API's
// cache and flotctl's watched view both keep them.
export type ByUnit<T> = Map<string, Map<string, T>>;

export function setByUnit<T>(map: ByUnit<T>, unit: string, machine: string, value: T): void {
  let m = map.get(unit);
  if (!m) map.set(unit, (m = new Map()));
  m.set(machine, value);
}

export function deleteByUnit<T>(map: ByUnit<T>, unit: string, machine: string): void {
  const m = map.get(unit);
  if (!m) return;
  m.delete(machine);
  if (m.size === 0) map.delete(unit);
}
