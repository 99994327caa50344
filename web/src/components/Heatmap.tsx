import type { Heatmap as H } from "../api";

const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

export function HeatmapGrid({ data }: { data: H }) {
  const max = data.max || 1;
  return (
    <div className="overflow-x-auto">
      <table className="border-separate border-spacing-0.5 text-xs" aria-label={`Activity by weekday and hour (${data.metric}, ${data.timezone})`}>
        <thead>
          <tr>
            <th />
            {Array.from({ length: 24 }, (_, h) => <th key={h} scope="col" className="w-5 font-normal muted">{h % 3 === 0 ? h : ""}</th>)}
          </tr>
        </thead>
        <tbody>
          {data.cells.map((row, d) => (
            <tr key={d}>
              <th scope="row" className="pr-2 text-right font-normal muted">{days[d]}</th>
              {row.map((v, h) => (
                <td key={h} title={`${days[d]} ${h}:00 — ${v}`} className="h-5 w-5 rounded-sm" style={{ background: v ? `rgba(99,102,241,${0.12 + 0.88 * (v / max)})` : "rgba(148,163,184,0.15)" }}>
                  <span className="sr-only">{`${days[d]} ${h}:00: ${v}`}</span>
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <p className="mt-2 text-xs muted">Time zone {data.timezone} · darker is more {data.metric}</p>
    </div>
  );
}
