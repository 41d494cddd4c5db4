// Mocha reporter: the spec reporter's output, plus the counts written to $DCP_RESULTS_FILE for hack/summary.mjs.
const fs = require('node:fs');
const Mocha = require('mocha');

class CountingReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const file = process.env.DCP_RESULTS_FILE;
      if (!file) return;
      const { passes, failures, pending } = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      fs.writeFileSync(file, JSON.stringify({ passed: passes, failed: failures, skipped: pending }));
    });
  }
}
module.exports = CountingReporter;
