import type { ServiceSettings } from '../service-process.ts';

// What the service prints that matters under a fault: a worker its supervisor saw die (which a
// restart would otherwise hide), the service's own exit when nobody asked for it, and error lines
// with the top of their stack trace (where a crash was thrown).

export interface ServiceLog {
  /** Lines in which the supervisor reported a worker dying. */
  workerExits: string[];
  /** The main process exiting without being asked to. */
  serviceDeaths: string[];
  /** Error lines and their first stack frames, the first few. */
  serviceErrors: string[];
}

const NOTABLE = /error|exception|unexpected|fatal|uncaught|failed/i;
const MAX_LINES = 30;

export function watchService(note: (line: string) => void): { log: ServiceLog } & Required<Pick<ServiceSettings, 'onLine' | 'onExit'>> {
  const log: ServiceLog = { workerExits: [], serviceDeaths: [], serviceErrors: [] };
  let keep = 0;
  return {
    log,
    onLine(line) {
      if (line.includes('exited unexpectedly')) {
        log.workerExits.push(line);
        note(`service: ${line}`);
      }
      // The error line and up to three stack frames after it.
      if (NOTABLE.test(line)) keep = 4;
      else if (!/^\s+at /.test(line)) keep = 0;
      if (keep-- > 0 && log.serviceErrors.length < MAX_LINES) log.serviceErrors.push(line);
    },
    onExit({ code, signal, requested }) {
      if (requested) return;
      log.serviceDeaths.push(`exited by itself (code ${code}, signal ${signal})`);
      note(`the service exited by itself (code ${code}, signal ${signal})`);
    },
  };
}
