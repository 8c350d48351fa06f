// Rendering of analyses: the report (HTML, SVG/PNG charts, Markdown, JSON), summaries, comparisons.
export { writeReport, renderReportHtml, reportCharts, worstTable, type ReportFiles, type Chart } from './report.ts';
export { renderSummaryText, renderSummaryMarkdown, segmentTable, verdictTable, streamTable, type Table } from './summary.ts';
export { compareAnalyses, writeComparison, renderComparisonText, renderComparisonMarkdown, describeChange, seedTable, type ComparisonResult, type ComparisonFigure, type ComparisonSegment } from './compare.ts';
export { escapeHtml, wireHtml, wireMarkdown, jsonForScript } from './escape.ts';
export { loadRecordExplanations as loadReportExplanations } from '../explain/files.ts';
export { analysisJson, explainSectionHtml, explainMarkdown, explainJsonSummary, causeTables, timelineSvg, type ReportExplanations } from './explain.ts';
export { histogramSpec, exceedanceSpec, perSecondSpec, renderSvg, svgToPng } from './charts.ts';
export { pathView, POINT_PLACES, type PathView, type PathSegment, type HopVerdict } from './path-view.ts';
export { firstScreenHtml, pathSvg, shareSvg, type RunView } from './first-screen.ts';
