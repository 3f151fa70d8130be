// Turns the results of bench/storm.sh into a markdown table (on stdout), one column per
// kind of client, for bench/storm-report.md.
// Usage: node bench/storm-table.mjs results.jsonl [meta.txt]
import { existsSync, readFileSync } from 'node:fs';

const [resultsFile, metaFile] = process.argv.slice(2);
const runs = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = metaFile && existsSync(metaFile)
  ? Object.fromEntries(readFileSync(metaFile, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  : {};

const num = (v, digits = 0) =>
  v === undefined || v === null || Number.isNaN(v)
    ? '–'
    : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const secs = (ms) => (ms === undefined || ms === null ? 'never' : `${num(ms / 1000, 1)} s`);
const told = (t) => `${num(t.once)} of ${num(t.expected)} once; ${num(t.missing)} missing, ${num(t.repeated)} repeated, ${num(t.unexpected)} unexpected`;
const map = (m) => Object.entries(m).map(([k, v]) => `${k} ${num(v)}`).join(', ') || 'none';
const peak = (r, key) => Math.max(...r.timeline.map((s) => s[key] ?? 0));

const rows = [
  ['clients (rooms of 4, 3 nodes)', (r) => `${num(r.clients)} in ${num(r.rooms)} rooms`],
  ['clients on the killed node / rooms hit', (r) => `${num(r.moved)} / ${num(r.rooms_hit)}`],
  ['**kill → every room whole**', (r) => `**${secs(r.whole_ms)}**`],
  ['per hit room, p50 / p99', (r) => `${secs(r.whole_p50_ms)} / ${secs(r.whole_p99_ms)}`],
  ['kill → every pair reaches each other (stale peers aside)', (r) => `${secs(r.reachable_ms)} (p50 ${secs(r.reachable_p50_ms)})`],
  ['kill → moved client back on a node, p50 / p99 / max', (r) => `${secs(r.back_p50_ms)} / ${secs(r.back_p99_ms)} / ${secs(r.back_max_ms)}`],
  ['first / last `user-disconnected` after the kill', (r) => `${secs(r.first_leave_ms)} / ${secs(r.last_leave_ms)}`],
  ['leaves heard', (r) => told(r.leaves)],
  ['joins heard', (r) => told(r.joins)],
  ['rooms lost / never whole / whole at the end', (r) => `${num(r.rooms_lost)} / ${num(r.rooms_not_whole)} / ${num(r.rooms_whole_at_end)} of ${num(r.rooms)}`],
  ['resumed / resumes refused', (r) => `${num(r.resumed)} / ${map(r.resume_refused)}`],
  ['refusals heard', (r) => map(r.refusals)],
  ['reconnect attempts failed; probes resent', (r) => `${num(r.reconnect_failures)}; ${num(r.probes_retried)}`],
  ['connections dropped from full accept queues (machine-wide)', (r) => num(r.listen_overflows)],
  ['final pings, one per pair: directions heard',  (r) => `${num(r.final_pairs_ok)} of ${num(r.final_pairs)} (${num(r.final_rooms_broken)} rooms short)`],
  ['survivors\' CPU, kill → whole (both nodes, share of one core)', (r) => `${num(r.survivors_cpu_secs, 2)} s (${num(r.survivors_cpu_share * 100)}%); peak second ${num(peak(r, 'survivors_cpu') * 100)}%`],
  ['Redis CPU, kill → whole', (r) => `${num(r.redis_cpu_secs, 2)} s; peak second ${num(peak(r, 'redis_cpu') * 100)}%`],
  ['Redis commands, kill → whole', (r) => `${num(r.redis_commands)} (${num(r.redis_commands_per_s)}/s); peak second ${num(peak(r, 'redis_ops'))}`],
  ['load generator: CPU over the watch (its own core); longest stall of its 50 ms checks', (r) => `${num(r.loadgen_cpu_share * 100)}%; ${num(r.loadgen_max_gap_ms)} ms`],
  ['Redis commands over the watch, top 4', (r) => r.redis_commandstats.slice(0, 4).map(([k, v]) => `${k} ${num(v)}`).join(', ')],
];

const kinds = runs.map((r) => r.kind);
console.log(`| | ${kinds.join(' | ')} |`);
console.log(`|---|${kinds.map(() => '---').join('|')}|`);
for (const [label, f] of rows) console.log(`| ${label} | ${runs.map(f).join(' | ')} |`);
console.log();
for (const r of runs) {
  console.log(`Timeline, ${r.kind} (each second after the kill: moved clients back, rooms whole, leaves heard, survivors' CPU, Redis CPU, Redis commands):`);
  console.log();
  console.log('| s | back | whole | leaves | survivors CPU | Redis CPU | Redis cmds |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of r.timeline) {
    console.log(`| ${num(s.t_ms / 1000, 1)} | ${num(s.back)} | ${num(s.rooms_whole)} | ${num(s.leaves)} | ${num((s.survivors_cpu ?? NaN) * 100)}% | ${num((s.redis_cpu ?? NaN) * 100)}% | ${num(s.redis_ops)} |`);
  }
  console.log();
}
if (meta.date) {
  console.log(`${meta.date}; ${meta.cpu}; meshchat at \`${meta.commit}\`; redis ${meta.redis}; nodes: \`${meta.node_env}\`.`);
}
