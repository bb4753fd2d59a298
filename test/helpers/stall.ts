// Whether the processes a test worker started can still say anything by themselves: the evidence that lets a
// quiet wait fail sooner than its deadline (WaitOptions.stalled in watch.ts). Linux only, x86_64 and arm64,
// read from /proc; anywhere else `look()` says "can't tell" and only the deadline counts.
//
// A process is stalled until a moment D when it sleeps in a call that waits for ever (a read, a wait for a
// child, epoll with no timer) or until after D (epoll whose timer, counted from the earliest moment it can
// have been entered, is due after D: V8's own housekeeping sets one 8 s ahead), and has not run since the last
// look: neither its CPU time nor any thread's context switches moved, and none of its threads is runnable.
// Anything else (running, runnable, a timer due before D, a sleep, a call whose timeout cannot be read here)
// is a process that may still print or send.
import fs from 'node:fs';

/** One process as seen at one look. */
interface Seen {
  /** CPU ticks (user + system, every thread) and the main thread's context switches: "has it run?". */
  ran: string;
  /** The call it sleeps in waits this long from when it was entered (Infinity: for ever; 0: may end any time). */
  waitMs: number;
  /** The earliest moment (s since boot) it can have entered that call: the look before it last ran, or its start. */
  enteredAfter: number;
}

/** A snapshot of every process below this one: pid → what it was doing, at `at` (s since boot). */
export interface Look {
  at: number;
  seen: Map<number, Seen>;
}

/** The last look, kept to date when each process last ran (see `enteredAfter`). */
let last: Look | undefined;
const TICKS_PER_S = 100; // USER_HZ, 100 on every Linux this runs on (/proc/PID/stat counts in it)

// Syscall numbers by architecture: the calls that block until something arrives, and where their timeout is.
// 'none': blocks until input (read, accept, wait4); 'ms': an int of milliseconds (-1: for ever) in that
// argument; 'ptr': a pointer to a timespec in that argument (NULL: for ever; otherwise unknown here).
type Timeout = { kind: 'none' } | { kind: 'ms' | 'ptr'; arg: number };
const none: Timeout = { kind: 'none' };
const calls: Record<string, Record<number, Timeout>> = {
  x64: {
    0: none, // read
    7: { kind: 'ms', arg: 2 }, // poll
    23: { kind: 'ptr', arg: 4 }, // select
    43: none, // accept
    45: none, // recvfrom (no SO_RCVTIMEO: python's blocking socket uses poll when it has a timeout)
    61: none, // wait4
    202: { kind: 'ptr', arg: 3 }, // futex
    232: { kind: 'ms', arg: 3 }, // epoll_wait
    247: none, // waitid
    270: { kind: 'ptr', arg: 4 }, // pselect6
    271: { kind: 'ptr', arg: 2 }, // ppoll
    281: { kind: 'ms', arg: 3 }, // epoll_pwait
    288: none, // accept4
    441: { kind: 'ptr', arg: 3 }, // epoll_pwait2
  },
  arm64: {
    22: { kind: 'ms', arg: 3 }, // epoll_pwait
    63: none, // read
    72: { kind: 'ptr', arg: 4 }, // pselect6
    73: { kind: 'ptr', arg: 2 }, // ppoll
    95: none, // waitid
    98: { kind: 'ptr', arg: 3 }, // futex
    202: none, // accept
    207: none, // recvfrom
    242: none, // accept4
    260: none, // wait4
    441: { kind: 'ptr', arg: 3 }, // epoll_pwait2
  },
};
const table = process.platform === 'linux' ? calls[process.arch] : undefined;

/** A look can tell here: Linux on x86_64 or arm64, with /proc. */
export const canLook = table !== undefined && fs.existsSync('/proc/self/task');

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Each thread of `pid`: its state (R, S, D…) and its context switches. */
function threadsOf(pid: number): { state: string; switches: string }[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.map((tid) => {
    const status = read(`/proc/${pid}/task/${tid}/status`) ?? '';
    return {
      state: /^State:\s*(\S)/m.exec(status)?.[1] ?? '?',
      switches: [...status.matchAll(/ctxt_switches:\s*(\d+)/g)].map((m) => m[1]).join(':'),
    };
  });
}

/** Every process below `pid` (children of any of its threads, and theirs). */
function descendants(pid: number, into: number[] = []): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return into;
  }
  for (const task of tasks) {
    const children = read(`/proc/${pid}/task/${task}/children`);
    for (const child of children?.trim().split(/\s+/).filter(Boolean) ?? []) {
      into.push(Number(child));
      descendants(Number(child), into);
    }
  }
  return into;
}

/** How long the blocking call in /proc/PID/syscall waits (Infinity: for ever; 0: unknown, may end any time). */
function waitMs(syscall: string): number {
  const fields = syscall.trim().split(/\s+/);
  const timeout = table?.[Number(fields[0])];
  if (!timeout) return 0; // running, not in a call ("running", "-1 ..."), or a call not known to block
  if (timeout.kind === 'none') return Number.POSITIVE_INFINITY;
  const raw = fields[1 + timeout.arg];
  if (raw === undefined) return 0;
  const value = BigInt(raw);
  if (timeout.kind === 'ptr') return value === 0n ? Number.POSITIVE_INFINITY : 0; // NULL: no timeout
  const ms = Number(BigInt.asIntN(32, value)); // -1 (for ever) reads as 0xffffffff or, sign-extended, 64 bits of 1
  return ms < 0 ? Number.POSITIVE_INFINITY : ms;
}

/** A look at every process below this one; undefined when this machine cannot tell (not Linux, no /proc). */
export function look(): Look | undefined {
  if (!canLook) return undefined;
  const uptime = read('/proc/uptime');
  if (!uptime) return undefined;
  const at = Number.parseFloat(uptime);
  const seen = new Map<number, Seen>();
  const previous = last;
  for (const pid of descendants(process.pid)) {
    const stat = read(`/proc/${pid}/stat`);
    if (!stat) continue; // gone since it was listed
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = after[0];
    if (state === 'Z' || state === 'X') continue; // exited: it will say nothing more
    const threads = threadsOf(pid);
    // A main thread asleep for ever can be waiting for another thread (an exiting node joins its own): one
    // runnable or in an uninterruptible call (R, D) may still let it print, however starved it is.
    const busy = threads.some((t) => t.state === 'R' || t.state === 'D');
    const syscall = state === 'S' && !busy ? read(`/proc/${pid}/syscall`) : undefined;
    // utime, stime (fields 14 and 15 of stat), and every thread's context switches.
    const ran = `${after[11]}/${after[12]}/${threads.map((t) => t.switches).join('/')}`;
    const before = previous?.seen.get(pid);
    seen.set(pid, {
      ran,
      waitMs: syscall === undefined ? 0 : waitMs(syscall),
      // Unchanged since the last look: entered when it was; ran since: after the last look; new: after its start.
      enteredAfter: !before
        ? Number(after[19]) / TICKS_PER_S // starttime (field 22)
        : before.ran === ran
          ? before.enteredAfter
          : (previous as Look).at,
    });
  }
  last = { at, seen };
  return last;
}

/**
 * A look that only dates the processes (see `enteredAfter`), skipped when the last one is under 50 ms old: taken
 * while a process is still starting, so that the first verdict after its start-up knows it fell asleep after the
 * last of these looks, not at any time since it started (a lab that took 4.7 s to start on a loaded machine was
 * first seen asleep, and V8's timer, set 8 s after its start, was taken as due within the quiet deadline).
 */
export function date(): void {
  const uptime = read('/proc/uptime');
  if (last && uptime && Number.parseFloat(uptime) - last.at < 0.05) return;
  look();
}

/**
 * Between the looks `before` and `now`, no process below this one ran, and none can print or send anything by
 * itself for `forMs` more: each one seen now was seen before too (none is starting), has not run since, and
 * sleeps in a call that lasts past then. With no process at all it cannot tell (what the test waits for may be
 * in this process): false.
 */
export function stalledBetween(before: Look, now: Look, forMs: number): boolean {
  if (now.seen.size === 0) return false;
  const until = now.at + forMs / 1000;
  for (const [pid, seen] of now.seen) {
    const earlier = before.seen.get(pid);
    if (!earlier || earlier.ran !== seen.ran) return false;
    if (seen.enteredAfter + seen.waitMs / 1000 <= until) return false;
  }
  return true;
}
