/**
 * Many end-to-end tests run the command with spawnSync, one test after another. Between tests vitest continues on
 * microtasks, which never reach the event loop's poll phase, so the reply to the worker's own progress message
 * can wait there until its 60 s timer fires ("Timeout calling onTaskUpdate") on a loaded machine. Two turns of
 * setImmediate after each test pass through the poll phase and read it.
 */
import { afterEach } from "vitest";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(async () => {
  await turn();
  await turn();
});
