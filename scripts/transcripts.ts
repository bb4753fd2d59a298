// Every program output a page shows, as the command a reader types and the peers the session needs.
// `npm run record [NN]` runs them on Node 24 and writes docs/transcripts/NN-slug/NAME.txt;
// test/transcripts.test.ts runs them again and compares. A page imports the file; nobody pastes output.
import type { Mask, Transcript } from './lib/transcript.ts';

const demo = (lab: string, extra: Partial<Transcript> = {}): Transcript => ({
  lab,
  name: 'demo',
  show: `npm run lab ${lab}`,
  ...extra,
});

/** A number after `before` (and before `after`) varies: measured times, counts the kernel decides. */
const n = (before: string, after = ''): Mask => [new RegExp(`(${before})[\\d.]+(${after})`, 'g'), '$1N$2'];

export const transcripts: readonly Transcript[] = [
  demo('01'),
  demo('02', { masks: [n('waited ', ' ms')] }),
  demo('03'),
  demo('04'),
  // How many 'data' events 3.75 MiB takes is the kernel's choice: identical masked lines count once.
  demo('05', { masks: [n("'data' #"), n(': ', ' bytes$'), n(' in ', " 'data' event")], collapse: true }),
  demo('06', { masks: [n('returned false ', ' time'), n('fired ', ' time')] }),
  demo('07', {
    masks: [n('after ', ' ms idle'), [/timer:\([^)]*\)/g, 'timer:(…)'], n('next probe in ', ' m?s')],
  }),
  demo('08'),
  demo('09', {
    masks: [n('alice sent ', ' lines'), n('spoke ', ' times'), n('dropped: ', ' bytes')],
    // How many times alice and bob speak before frank's idle limit is the scheduler's call.
    drop: /still here \d+$|me too \d+$/,
  }),
  demo('10', {
    masks: [n('"PING \\d+ ', '"'), n('rtt ', ' ms'), [/rtt min\/avg\/max = \S+/, 'rtt min/avg/max = N']],
  }),
  demo('11'),
  demo('12'),
];
