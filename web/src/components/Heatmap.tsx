import { heatmapCells, num, type Heatmap as H } from "../api";

const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

// HeatmapGrid draws activity by local weekday (Monday first) and hour. It
// takes the API's document as it comes: missing rows or cells read as 0.
export function HeatmapGrid({ data }: { data: H }) {
  const cells = heatmapCells(data);
  const max = num(data.max) || Math.max(0, ...cells.flat()) || 1;
  const total = cells.flat().reduce((a, b) => a + b, 0);
  const metric = data.metric || "activity";
  const tz = data.timezone || "UTC";
  const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  return (
    <div className="overflow-x-auto">
      <table className="border-separate border-spacing-0.5 text-xs" aria-label={`Activity by weekday and hour (${metric}, ${tz})`} data-testid="heatmap">
        <thead>
          <tr>
            <th />
            {Array.from({ length: 24 }, (_, h) => <th key={h} scope="col" className="w-5 font-normal muted">{h % 3 === 0 ? h : ""}</th>)}
          </tr>
        </thead>
        <tbody>
          {cells.map((row, d) => (
            <tr key={d}>
              <th scope="row" className="pr-2 text-right font-normal muted">{days[d]}</th>
              {row.map((v, h) => (
                <td
                  key={h}
                  data-value={v}
                  title={`${days[d]} ${h}:00 — ${fmt(v)}`}
                  className="h-5 w-5 rounded-sm"
                  style={{ background: v ? `rgba(99,102,241,${0.12 + 0.88 * Math.min(1, v / max)})` : "rgba(148,163,184,0.15)" }}
                >
                  <span className="sr-only">{`${days[d]} ${h}:00: ${fmt(v)}`}</span>
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <p className="mt-2 text-xs muted">
        {total === 0 ? `No ${metric} in this window` : `Peak ${fmt(max)} ${metric} in an hour`} · time zone {tz} · darker is more
      </p>
    </div>
  );
}
