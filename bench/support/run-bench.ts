// How every bench script ends: run its main, then stop the embedded PostgreSQL a run without
// FLOORFLOW_TEST_DATABASE_URL started (it would keep the process alive), also after a failure.
import { stopTestServer } from '../../tests/support/db';

export function runBench(main: () => Promise<void>): void {
  main()
    .then(() => stopTestServer())
    .catch((err: unknown) => {
      console.error(err);
      void stopTestServer().finally(() => process.exit(1));
    });
}
