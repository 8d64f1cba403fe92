import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

// The CPU time a process tree has used, from Linux's /proc: what the service spends per order,
// read from outside so that measuring it costs the service nothing. The service is a supervisor
// and its cluster workers; the workers do the order work, the supervisor hands out connections.
// Where /proc is missing (macOS, some containers) every reading is null and the report says n/a.

/** Ticks a process's CPU time is counted in (utime, stime): sysconf(_SC_CLK_TCK), 100 on Linux. */
let clockTicks: number | undefined;
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      clockTicks = NaN;
    }
    // Linux has used 100 (USER_HZ) everywhere for decades; getconf only confirms it.
    if (!Number.isInteger(clockTicks) || clockTicks <= 0) clockTicks = 100;
  }
  return clockTicks;
}

export interface ProcStat { pid: number; ppid: number; utimeTicks: number; stimeTicks: number }

/**
 * One line of /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields are counted from the last `)`: state is field 3, ppid 4,
 * utime 14, stime 15 (proc(5)).
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state): field n is rest[n - 3].
  const ppid = Number(rest[1]);
  const utimeTicks = Number(rest[11]);
  const stimeTicks = Number(rest[12]);
  if (![pid, ppid, utimeTicks, stimeTicks].every(Number.isInteger)) return null;
  return { pid, ppid, utimeTicks, stimeTicks };
}

function readStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null; // gone meanwhile
  }
}

/** The children of a process: /proc/<pid>/task/<tid>/children where the kernel has it, else every process's ppid. */
export function childrenOf(pid: number): number[] {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    if (tasks.length && existsSync(`/proc/${pid}/task/${tasks[0]}/children`)) {
      return tasks.flatMap((tid) => {
        try {
          return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
        } catch {
          return []; // a thread that ended meanwhile
        }
      });
    }
  } catch {
    return [];
  }
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => readStat(p)?.ppid === pid);
}

export interface CpuSample { supervisorTicks: number; workers: Map<number, number> }

/** utime + stime of the supervisor and of each of its children, in ticks; null without /proc or once it has gone. */
export function sampleServiceCpu(supervisorPid: number): CpuSample | null {
  const own = readStat(supervisorPid);
  if (!own) return null;
  const workers = new Map<number, number>();
  for (const pid of childrenOf(supervisorPid)) {
    const s = readStat(pid);
    if (s) workers.set(pid, s.utimeTicks + s.stimeTicks);
  }
  return { supervisorTicks: own.utimeTicks + own.stimeTicks, workers };
}

export interface CpuUsed { supervisorMs: number; workersMs: number; totalMs: number }

/**
 * CPU used between two samples, in ms. A worker started in between (a restart) counts whole: all
 * of its time falls in between. A worker that died in between is lost with its /proc entry: a
 * crash under load shows elsewhere (failed requests), so the undercount is not hidden.
 */
export function cpuBetween(before: CpuSample, after: CpuSample, ticks = ticksPerSecond()): CpuUsed {
  let workerTicks = 0;
  for (const [pid, t] of after.workers) workerTicks += t - (before.workers.get(pid) ?? 0);
  const toMs = (n: number) => (n * 1000) / ticks;
  const supervisorMs = toMs(after.supervisorTicks - before.supervisorTicks);
  const workersMs = toMs(workerTicks);
  return { supervisorMs, workersMs, totalMs: supervisorMs + workersMs };
}
