// Everything a grading run starts ends with it: vitest, its workers, the labs the tests start, and whatever a
// student's file starts in turn, `detached: true` children and double forks included. Three nets, widest first:
//  1. Linux with a writable cgroup v2 (root, or a delegated cgroup): the run gets a cgroup of its own, entered
//     before vitest starts; no process can leave it, and `cgroup.kill` ends every member at once.
//  2. Linux: every process of the run inherits WORKBOOK_GRADE_RUN=<uuid>; afterwards /proc/*/environ is swept
//     for it. A process that replaces its whole environment escapes this net (not the cgroup).
//  3. Everywhere: vitest is started as a process group leader and the group is killed; a child that starts its
//     own session (setsid, `detached: true`) escapes this net. On macOS and Windows that is all there is.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const runMarker = 'WORKBOOK_GRADE_RUN';

export interface Confinement {
  /** The marker, for the child's environment. */
  env: Record<string, string>;
  /** The command that starts `file args…` inside the confinement. */
  command(file: string, args: readonly string[]): { file: string; args: string[] };
  /** The child's pid (its process group). */
  adopt(pid: number | undefined): void;
  /** How the run is confined, for --help and the tests: 'cgroup', 'environ', 'group'. */
  readonly nets: readonly string[];
  /** Kills every process the run left, and says how many there were (the child itself not counted). */
  end(): Promise<number>;
}

/** The cgroup v2 mount point and this process's cgroup in it, or undefined. */
function ownCgroup(): string | undefined {
  try {
    const mount = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];
    const own = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))
      ?.slice(3);
    return mount && own !== undefined ? path.join(mount, own) : undefined;
  } catch {
    return undefined;
  }
}

/** Empty cgroups of runs whose grader was killed outright (SIGKILL: no chance to remove them), a minute on. */
function removeStale(base: string): void {
  try {
    for (const name of fs.readdirSync(base)) {
      if (!name.startsWith('workbook-grade-')) continue;
      const dir = path.join(base, name);
      try {
        if (Date.now() - fs.statSync(dir).mtimeMs > 60_000) fs.rmdirSync(dir); // fails while populated
      } catch {
        // in use
      }
    }
  } catch {
    // not ours to list
  }
}

function makeCgroup(id: string): string | undefined {
  const base = ownCgroup();
  if (!base || process.platform !== 'linux') return undefined;
  removeStale(base);
  const dir = path.join(base, `workbook-grade-${id}`);
  try {
    fs.mkdirSync(dir);
    if (!fs.existsSync(path.join(dir, 'cgroup.kill'))) {
      fs.rmdirSync(dir); // before Linux 5.14: no cgroup.kill, the other nets do the work
      return undefined;
    }
    return dir;
  } catch {
    return undefined;
  }
}

const pidsIn = (cgroup: string) =>
  fs.readFileSync(path.join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);

/** Processes (other than this one) whose environment carries the marker. */
export function markedProcesses(id: string): number[] {
  if (process.platform !== 'linux') return [];
  const needle = `${runMarker}=${id}\0`;
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle)) found.push(Number(entry));
    } catch {
      // gone already, or not ours to read
    }
  }
  return found;
}

const kill = (pid: number) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
};

/** A zombie (exited, not yet reaped) counts as gone. */
const alive = (pid: number) => {
  try {
    return !/^\S+ \(.*\) Z/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

export function confine(): Confinement {
  const id = randomUUID();
  const cgroup = makeCgroup(id);
  let leader: number | undefined;
  const nets = [...(cgroup ? ['cgroup'] : []), ...(process.platform === 'linux' ? ['environ'] : []), 'group'];
  return {
    env: { [runMarker]: id },
    nets,
    command(file, args) {
      if (!cgroup) return { file, args: [...args] };
      // The shell joins the cgroup, then becomes the command: nothing runs outside it, not even for a moment.
      // (Should joining fail, the run still runs, with the other two nets.)
      return {
        file: '/bin/sh',
        args: [
          '-c',
          'echo $$ 2>/dev/null > "$0"; exec "$@"',
          path.join(cgroup, 'cgroup.procs'),
          file,
          ...args,
        ],
      };
    },
    adopt(pid) {
      leader = pid;
    },
    async end() {
      const left = new Set<number>();
      if (cgroup) {
        try {
          for (const pid of pidsIn(cgroup)) if (pid !== leader) left.add(pid);
          fs.writeFileSync(path.join(cgroup, 'cgroup.kill'), '1');
        } catch {
          // the cgroup went away: the other nets still run
        }
      }
      if (leader !== undefined) {
        try {
          process.kill(-leader, 'SIGKILL');
        } catch {
          // the group is empty
        }
      }
      // Killing is not instant, and a process being killed may still fork: sweep until nothing carries the mark.
      for (let round = 0; round < 50; round++) {
        const marked = markedProcesses(id).filter(alive);
        if (marked.length === 0) break;
        for (const pid of marked) {
          if (pid !== leader) left.add(pid);
          kill(pid);
        }
      }
      if (cgroup) {
        // rmdir succeeds once the last member is gone (reaped); a few ms after cgroup.kill, 2 s at most.
        const until = Date.now() + 2000;
        while (Date.now() < until) {
          try {
            fs.rmdirSync(cgroup);
            break;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
      }
      return [...left].filter((pid) => pid !== leader).length;
    },
  };
}
