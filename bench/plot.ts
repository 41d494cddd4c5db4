// Draws the bench-scale plot: RSS and time to synced against Pod count, one line per program (Vega to SVG, resvg to PNG; no native build).
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';

export interface PlotPoint {
  readonly program: string;
  readonly pods: number;
  readonly rssMb: number;
  readonly syncS: number;
}

function panel(field: 'rssMb' | 'syncS', title: string, x: number): vega.GroupMark {
  return {
    type: 'group',
    encode: { enter: { x: { value: x }, width: { signal: 'panelWidth' }, height: { signal: 'height' } } },
    title: { text: title, fontSize: 13, offset: 8 },
    scales: [
      { name: 'x', type: 'linear', domain: { data: 'points', field: 'pods' }, range: [0, { signal: 'panelWidth' }], nice: true, zero: true },
      { name: 'y', type: 'linear', domain: { data: 'points', field }, range: 'height', nice: true, zero: true },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'Pods', format: '~s', grid: true },
      { orient: 'left', scale: 'y', title: field === 'rssMb' ? 'RSS after sync (MB)' : 'time to synced (s)', grid: true },
    ],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'series', data: 'points', groupby: 'program' } },
        marks: [
          {
            type: 'line',
            from: { data: 'series' },
            sort: { field: 'datum.pods' },
            encode: { enter: { x: { scale: 'x', field: 'pods' }, y: { scale: 'y', field }, stroke: { scale: 'color', field: 'program' }, strokeWidth: { value: 2 } } },
          },
          {
            type: 'symbol',
            from: { data: 'series' },
            encode: { enter: { x: { scale: 'x', field: 'pods' }, y: { scale: 'y', field }, fill: { scale: 'color', field: 'program' }, size: { value: 40 } } },
          },
        ],
      },
    ],
  };
}

/** The Vega spec of the two panels side by side, with one legend. */
export function plotSpec(points: readonly PlotPoint[], subtitle: string): vega.Spec {
  const panelWidth = 380;
  return {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: panelWidth * 2 + 90,
    height: 300,
    padding: { left: 16, right: 16, top: 24, bottom: 16 },
    background: 'white',
    title: { text: 'dcp-operator vs baselines: memory and start-up by cluster size', subtitle, fontSize: 16 },
    signals: [{ name: 'panelWidth', value: panelWidth }],
    data: [{ name: 'points', values: points.map((p) => ({ ...p })) }],
    scales: [{ name: 'color', type: 'ordinal', domain: { data: 'points', field: 'program' }, range: 'category' }],
    legends: [{ fill: 'color', orient: 'bottom', direction: 'horizontal', title: 'program' }],
    marks: [panel('rssMb', 'RSS after sync', 0), panel('syncS', 'Time to synced', panelWidth + 90)],
  };
}

/** Renders the plot to PNG bytes. */
export async function renderPlot(points: readonly PlotPoint[], subtitle: string): Promise<Buffer> {
  const view = new vega.View(vega.parse(plotSpec(points, subtitle)), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  return Buffer.from(png);
}
