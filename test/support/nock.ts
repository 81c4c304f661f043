import nock from 'nock';
import { expect } from 'vitest';

/**
 * For `afterEach`: fails the test when a gateway call it set up with nock was never made (the code
 * under test skipped a call it should have made), after clearing every interceptor so the next test
 * starts clean either way.
 */
export function expectEveryMockUsed(): void {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
}
