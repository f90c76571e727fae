// Where tests keep their temporary state, so that a later run can find and
// remove what a crashed run left behind.
import os from 'node:os';
import path from 'node:path';

export const TEST_ROOT = path.join(os.tmpdir(), 'flotilla-test');
export const ETCD_TEST_ROOT = path.join(TEST_ROOT, 'etcd');
