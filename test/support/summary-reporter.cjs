// Prints one plain closing line, `tests: N passed, N failed`, after jest's own summary, so that
// any CI that reads closing lines sees how many tests ran.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    process.stdout.write(`tests: ${results.numPassedTests} passed, ${results.numFailedTests + results.numRuntimeErrorTestSuites} failed\n`);
  }
}
module.exports = SummaryReporter;
