/// dashboard.css. Colours meet WCAG AA (4.5:1) for text: state fills are light with near-black
/// text, links and buttons dark blue on white. Focus is a thick outline on everything focusable.
/// Narrow screens (phones) get one column and tables that scroll sideways.
enum DashboardStyle {
    static let css = """
        :root { --ink: #111; --muted: #444; --line: #bbb; --link: #0b4f9c; --bg: #fff; --panel: #f4f5f7; --danger: #a4161a; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
        a { color: var(--link); }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible,
        .dag-wrap:focus-visible, main:focus-visible { outline: 3px solid #e3a008; outline-offset: 2px; }
        .dag a:focus-visible rect.node { stroke: #e3a008; stroke-width: 5; }
        .skip { position: absolute; left: -999px; top: 0; background: #fff; padding: 6px; }
        .skip:focus { left: 6px; z-index: 10; }
        header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 24px; padding: 10px 20px; background: #14213d; color: #fff; }
        header.top a { color: #fff; }
        .brand { font-weight: 700; text-decoration: none; font-size: 18px; }
        nav ul { display: flex; flex-wrap: wrap; gap: 6px 16px; list-style: none; margin: 0; padding: 0; }
        nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
        .signout { margin-left: auto; display: flex; align-items: center; gap: 10px; }
        .badge { background: #fde68a; color: #111; border-radius: 4px; padding: 0 6px; font-size: 13px; }
        main { padding: 16px 20px 40px; max-width: 1400px; }
        h1 { font-size: 24px; margin: 8px 0 12px; word-break: break-all; }
        h2 { font-size: 19px; margin: 24px 0 8px; }
        .mono, code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
        pre { background: var(--panel); padding: 10px; overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-word; }
        pre.tail { max-height: 160px; margin: 0; }
        .table-wrap { overflow-x: auto; }
        table.data { border-collapse: collapse; width: 100%; }
        table.data th, table.data td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        table.data thead th { background: var(--panel); }
        caption { text-align: left; color: var(--muted); padding: 4px 0; }
        td.clip { max-width: 420px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
        .facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
        .facts dt { font-weight: 600; }
        .facts dd { margin: 0; word-break: break-word; }
        .state { display: inline-block; padding: 0 6px; border-radius: 4px; border: 1px solid #666; white-space: nowrap; }
        .st-pending { background: #eceff3; } .st-enqueued { background: #dbe7f6; } .st-in_progress { background: #fff1b8; }
        .st-waiting_for_retry { background: #ffd8a8; } .st-complete { background: #c8ecd0; } .st-error { background: #f8c9c9; }
        .st-cancelled { background: #d9d9d9; } .st-resolved_manually { background: #d5e8f0; } .st-skipped { background: #f1f1f1; }
        svg.dag { display: block; max-width: none; }
        .dag-wrap { overflow: auto; max-height: 75vh; border: 1px solid var(--line); background: #fcfcfd; }
        .dag rect.node { stroke: #333; stroke-width: 1.5; }
        .dag rect.group { fill: #eef0f4; stroke-dasharray: 5 3; }
        .dag rect.st-pending { fill: #eceff3; } .dag rect.st-enqueued { fill: #dbe7f6; } .dag rect.st-in_progress { fill: #fff1b8; stroke-width: 3; }
        .dag rect.st-waiting_for_retry { fill: #ffd8a8; } .dag rect.st-complete { fill: #c8ecd0; } .dag rect.st-error { fill: #f8c9c9; stroke: #a4161a; stroke-width: 3; }
        .dag rect.st-cancelled { fill: #d9d9d9; } .dag rect.st-resolved_manually { fill: #d5e8f0; } .dag rect.st-skipped { fill: #f7f7f7; stroke-dasharray: 3 3; }
        .dag text { font-size: 13px; fill: #111; }
        .dag text.node-name { font-weight: 600; }
        .dag path.edge { fill: none; stroke: #555; stroke-width: 1.4; }
        .dag .arrowhead { fill: #555; }
        .actions { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
        .button, button { display: inline-block; font: inherit; padding: 6px 14px; border-radius: 5px; border: 1px solid #0b4f9c; background: #0b4f9c; color: #fff; text-decoration: none; cursor: pointer; }
        .button.danger, button.danger { background: var(--danger); border-color: var(--danger); }
        header.top button { background: transparent; border-color: #fff; }
        .notice { background: #d1f0d9; border-left: 5px solid #1a7f37; padding: 8px 12px; }
        .error { background: #fde2e2; border-left: 5px solid var(--danger); padding: 8px 12px; }
        .error-text { color: #7a0d10; }
        .warn { color: #7a4a00; font-weight: 600; }
        .hint { color: var(--muted); }
        .js-only { display: none; }
        .js .js-only { display: inline; }
        form.filters fieldset { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; border: 1px solid var(--line); }
        form.find { margin: 12px 0; display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
        form.find input { min-width: 320px; }
        form.login, form.confirm { display: grid; gap: 8px; max-width: 560px; }
        input, select, textarea { font: inherit; padding: 4px 6px; border: 1px solid #666; border-radius: 4px; max-width: 100%; }
        .pager { margin: 12px 0; display: flex; gap: 16px; }
        ol.timeline { padding-left: 20px; } ol.timeline li { margin: 4px 0; }
        .reason { color: var(--muted); }
        .spark polyline { fill: none; stroke: #0b4f9c; stroke-width: 1.5; }
        .rate { color: var(--muted); font-size: 13px; }
        @media (max-width: 700px) {
          main { padding: 10px; }
          .signout { margin-left: 0; }
          .facts { grid-template-columns: 1fr; }
          form.find input { min-width: 0; width: 100%; }
          td.clip { max-width: 180px; }
        }
        """
}
