// The latency chart of the report: empirical distribution functions (share of runs at or below a time),
// ours against the official SDK, one panel per measurement. Plain SVG, no dependencies.

export interface Series {
  label: string;
  color: string;
  values: number[];
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const PANEL_WIDTH = 440;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 52, right: 16, top: 36, bottom: 44 };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round step for about five ticks. */
function tickStep(range: number): number {
  const raw = range / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const normalised = raw / magnitude;
  return (normalised < 1.5 ? 1 : normalised < 3.5 ? 2 : normalised < 7.5 ? 5 : 10) * magnitude;
}

function panelSvg(panel: Panel, offsetX: number): string {
  const all = panel.series.flatMap((series) => series.values);
  const plotWidth = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const step = tickStep(Math.max(1, Math.max(...all)));
  const xMax = Math.ceil(Math.max(...all) / step) * step;
  const x = (value: number): number => offsetX + MARGIN.left + (value / xMax) * plotWidth;
  const y = (share: number): number => MARGIN.top + (1 - share) * plotHeight;
  const parts: string[] = [
    `<text x="${offsetX + PANEL_WIDTH / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`,
    `<rect x="${offsetX + MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
  ];
  for (let tick = 0; tick <= xMax + 1e-9; tick += step) {
    parts.push(
      `<line x1="${x(tick)}" y1="${y(0)}" x2="${x(tick)}" y2="${y(1)}" stroke="#eee"/>`,
      `<text x="${x(tick)}" y="${y(0) + 16}" text-anchor="middle" font-size="11">${Number(tick.toPrecision(6))}</text>`,
    );
  }
  for (const share of [0, 0.25, 0.5, 0.75, 0.95, 1]) {
    parts.push(
      `<line x1="${x(0)}" y1="${y(share)}" x2="${x(xMax)}" y2="${y(share)}" stroke="${share === 0.5 || share === 0.95 ? '#ccc' : '#eee'}"/>`,
      `<text x="${x(0) - 6}" y="${y(share) + 4}" text-anchor="end" font-size="11">${Math.round(share * 100)}%</text>`,
    );
  }
  parts.push(
    `<text x="${offsetX + MARGIN.left + plotWidth / 2}" y="${PANEL_HEIGHT - 8}" text-anchor="middle" font-size="12">${escapeXml(panel.unit)}</text>`,
  );
  panel.series.forEach((series, index) => {
    const sorted = [...series.values].sort((a, b) => a - b);
    let path = `M ${x(0).toFixed(1)} ${y(0).toFixed(1)}`;
    sorted.forEach((value, rank) => {
      path += ` H ${x(value).toFixed(1)} V ${y((rank + 1) / sorted.length).toFixed(1)}`;
    });
    parts.push(`<path d="${path}" fill="none" stroke="${series.color}" stroke-width="2"/>`);
    const legendY = MARGIN.top + 16 + index * 16;
    const legendX = offsetX + MARGIN.left + plotWidth - 170;
    parts.push(
      `<line x1="${legendX}" y1="${legendY - 4}" x2="${legendX + 18}" y2="${legendY - 4}" stroke="${series.color}" stroke-width="2"/>`,
      `<text x="${legendX + 24}" y="${legendY}" font-size="11">${escapeXml(series.label)} (n=${sorted.length})</text>`,
    );
  });
  return parts.join('\n');
}

/** Panels side by side; an empty panel list gives an empty chart. */
export function distributionChartSvg(panels: Panel[], caption: string): string {
  const usable = panels.filter((panel) => panel.series.some((series) => series.values.length > 0));
  const width = Math.max(1, usable.length) * PANEL_WIDTH;
  const height = PANEL_HEIGHT + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...usable.map((panel, index) => panelSvg(panel, index * PANEL_WIDTH)),
    `<text x="${width / 2}" y="${height - 4}" text-anchor="middle" font-size="11" fill="#555">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
