// How a command-line entry point (the service, db:reset) ends when its work fails: one sentence
// saying why, not a stack trace (the failures expected here are configuration and reachability),
// and exit code 1.

export function runMain(main: () => Promise<void>, report: (message: string) => void = (message) => console.error(message)) {
  main().catch((err: unknown) => {
    report(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
