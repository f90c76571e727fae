// flotctl's integration tests again, with --driver api: the same commands
// and the same expected output, through an API server on the test's prefix
// instead of etcd (test/integration/flotctl/harness.ts reads the driver).
process.env['FLOTCTL_TEST_DRIVER'] = 'api';
await import('./flotctl/units.test.js');
await import('./flotctl/lifecycle.test.js');
await import('./flotctl/checks.test.js');

const { DRIVER } = await import('./flotctl/harness.js');
const { it, expect } = await import('vitest');
it('ran them with the api driver', () => expect(DRIVER).toBe('api'));
