// One SVG per trace: request rate, replicas per policy over time, and each policy's SLO breaches.
import type { SimResult } from "./simulate.ts";
import type { Trace } from "./traces.ts";

const COLORS = [
  "#d62728",
  "#1f77b4",
  "#2ca02c",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

export function chart(trace: Trace, runs: { name: string; result: SimResult }[]): string {
  const W = 900;
  const H = 360;
  const left = 50;
  const right = 170;
  const top = 30;
  const plotH = 220;
  const plotW = W - left - right;
  const minutes = trace.minutes.length;
  const maxRate = Math.max(1, ...trace.minutes.map((m) => m.rate));
  const maxReplicas = Math.max(1, ...runs.flatMap((r) => r.result.minutes.map((m) => m.replicas)));
  const x = (m: number) => left + (m / Math.max(1, minutes - 1)) * plotW;
  const yRep = (v: number) => top + plotH - (v / maxReplicas) * plotH;
  const yRate = (v: number) => top + plotH - (v / maxRate) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="13">${esc(trace.name)}: replicas per policy (lines), request rate (grey area), SLO-breach minutes (ticks)</text>`,
  ];
  const area = trace.minutes.map((m, i) => `${x(i).toFixed(1)},${yRate(m.rate).toFixed(1)}`).join(" ");
  out.push(
    `<polygon fill="#eee" points="${x(0)},${yRate(0)} ${area} ${x(minutes - 1)},${yRate(0)}"/>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end">${maxReplicas}</text>`,
    `<text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>`,
    `<text x="${left + plotW}" y="${top + plotH + 14}" text-anchor="end">${minutes} min</text>`,
    `<text x="${left + plotW - 2}" y="${top + 12}" text-anchor="end" fill="#999">rate peak ${maxRate} req/s</text>`,
  );
  runs.forEach((run, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = run.result.minutes
      .map((m) => `${x(m.minute).toFixed(1)},${yRep(m.replicas).toFixed(1)}`)
      .join(" ");
    const width = run.name === "SpecOps" ? 2.5 : 1.2;
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="${width}" points="${pts}"/>`);
    const rowY = top + plotH + 22 + i * 9;
    for (const m of run.result.minutes)
      if (!m.met)
        out.push(
          `<rect x="${x(m.minute).toFixed(1)}" y="${rowY - 6}" width="2" height="6" fill="${color}"/>`,
        );
    out.push(
      `<rect x="${left + plotW + 10}" y="${top + i * 16}" width="10" height="10" fill="${color}"/>`,
      `<text x="${left + plotW + 24}" y="${top + i * 16 + 9}">${esc(run.name)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
