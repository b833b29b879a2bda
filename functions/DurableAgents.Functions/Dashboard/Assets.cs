namespace DurableAgents.Functions.Dashboard;

/// <summary>The dashboard's stylesheet and script, shipped in the app (no JavaScript build).</summary>
internal static class Assets
{
    public const string Css = """
        :root { --fg: #1b1f24; --muted: #4a5360; --bg: #ffffff; --panel: #f4f6f8; --line: #c9d1d9; --accent: #0b57d0; --ok: #0a6b2f; --bad: #a3161b; --warn: #7a4b00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--accent); }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible, [tabindex]:focus-visible { outline: 3px solid #f2a900; outline-offset: 2px; }
        .skip { position: absolute; left: -9999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 10; }
        header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .75rem 1rem; background: #0f2a4a; color: #fff; }
        header .brand { font-weight: 700; }
        header ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
        header a { color: #fff; text-decoration: none; padding: .25rem .1rem; } header a[aria-current="page"] { border-bottom: 3px solid #8ab4f8; }
        main { padding: 1rem; max-width: 1200px; margin: 0 auto; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; word-break: break-all; } h2 { font-size: 1.2rem; margin-top: 2rem; }
        table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: var(--panel); } .scroll { overflow-x: auto; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .85rem; border: 1px solid currentColor; }
        .s-completed { color: var(--ok); } .s-failed, .s-terminated { color: var(--bad); } .s-running, .s-pending { color: var(--accent); } .s-suspended { color: var(--warn); }
        .counts { display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; list-style: none; }
        .counts a { display: inline-block; padding: .25rem .75rem; background: var(--panel); border: 1px solid var(--line); border-radius: .5rem; text-decoration: none; color: var(--fg); }
        form.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; margin-bottom: 1rem; }
        form.filters div, form.stack div { display: flex; flex-direction: column; }
        label { font-weight: 600; font-size: .9rem; }
        input, select, textarea, button { font: inherit; padding: .35rem .5rem; border: 1px solid #6b7785; border-radius: .3rem; color: var(--fg); background: #fff; }
        button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; } button.danger { background: var(--bad); border-color: var(--bad); } button.secondary { background: #fff; color: var(--accent); }
        a.button { display: inline-block; padding: .35rem .75rem; background: var(--accent); color: #fff; border-radius: .3rem; text-decoration: none; } a.button.danger { background: var(--bad); }
        .actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; } .actions form { margin: 0; }
        pre { background: var(--panel); padding: .75rem; overflow-x: auto; border-radius: .3rem; white-space: pre-wrap; word-break: break-word; }
        dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; } dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; word-break: break-all; }
        .flash { padding: .5rem .75rem; border-radius: .3rem; } .flash.ok { background: #e6f4ea; color: var(--ok); } .flash.error { background: #fce8e6; color: var(--bad); }
        details { border: 1px solid var(--line); border-radius: .3rem; padding: .25rem .75rem; margin: .5rem 0; } details > summary { cursor: pointer; padding: .25rem 0; }
        details details { margin-left: 1rem; }
        .muted { color: var(--muted); }
        svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
        #live { min-height: 2rem; }
        @media (max-width: 600px) { main { padding: .5rem; } dl.summary { grid-template-columns: 1fr; } th, td { padding: .3rem; font-size: .9rem; } }
        """;

    public const string Js = """
        (function () {
          var live = document.getElementById('live');
          if (live && window.EventSource) {
            var out = document.getElementById('live-text');
            var source = new EventSource(live.getAttribute('data-stream'));
            source.onmessage = function (e) {
              try {
                var ev = JSON.parse(e.data);
                if (ev.type === 'TEXT_MESSAGE_CONTENT') { out.textContent += ev.delta; }
                else if (ev.type === 'TEXT_MESSAGE_END') { out.textContent += '\n'; }
                else if (ev.type === 'RUN_FINISHED' || ev.type === 'RUN_ERROR') { source.close(); }
              } catch (err) { }
            };
          }
        })();
        """;
}
