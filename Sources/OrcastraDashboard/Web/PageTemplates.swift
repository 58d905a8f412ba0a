/// The dashboard's Mustache templates (hummingbird-project/swift-mustache), as Swift strings so
/// the binary carries them: no resource folder to find at run time. `{{…}}` is HTML-escaped;
/// `{{{…}}}` is used only for markup this module built itself (the layout's body, the DAG's SVG,
/// sparklines), whose user data ``HTMLEscape`` escaped. No inline script or style anywhere (the
/// Content-Security-Policy forbids both).
enum PageTemplates {
    static let all: [String: String] = [
        "layout": layout, "login": login, "overview": overview, "tasks": tasks, "task": task, "step": step,
        "confirm": confirm, "templates": templates, "template": template, "schedules": schedules,
        "workers": workers, "error": error,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Orcastra</title>
        <link rel="stylesheet" href="/assets/dashboard.css">
        <script src="/assets/dashboard.js" defer></script>
        </head>
        <body{{#live}} data-live-task="{{live}}"{{/live}}>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
        <a class="brand" href="/">Orcastra</a>
        {{#session}}
        <nav aria-label="Main">
        <ul>
        <li><a href="/"{{#navOverview}} aria-current="page"{{/navOverview}}>Overview</a></li>
        <li><a href="/tasks"{{#navTasks}} aria-current="page"{{/navTasks}}>Tasks</a></li>
        <li><a href="/templates"{{#navTemplates}} aria-current="page"{{/navTemplates}}>Templates</a></li>
        <li><a href="/schedules"{{#navSchedules}} aria-current="page"{{/navSchedules}}>Schedules</a></li>
        <li><a href="/workers"{{#navWorkers}} aria-current="page"{{/navWorkers}}>Workers</a></li>
        </ul>
        </nav>
        <form class="signout" method="post" action="/logout">
        <span class="who">{{name}}{{^canWrite}} <span class="badge">read-only</span>{{/canWrite}}</span>
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit">Sign out</button>
        </form>
        {{/session}}
        </header>
        <main id="main" tabindex="-1">
        {{#notice}}<p class="notice" role="status" id="outcome">{{notice}}</p>{{/notice}}
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let login = """
        <h1>Sign in</h1>
        <p>Paste an API token (<code>orcastra token create --name NAME --scopes tasks:read</code>; add <code>tasks:write</code> to cancel, retry and resolve).</p>
        {{#error}}<p class="error" role="alert" id="login-error">{{error}}</p>{{/error}}
        <form method="post" action="/login" class="login">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="next" value="{{next}}">
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required autofocus spellcheck="false">
        <button type="submit">Sign in</button>
        </form>
        """

    static let overview = """
        <h1>Overview</h1>
        {{^namespaces}}<p>No live work and no worker in any namespace.</p>{{/namespaces}}
        {{#hasNamespaces}}
        <div class="table-wrap">
        <table class="data" id="namespaces">
        <caption>Live work per namespace (steps/s over the last 10 minutes, by minute)</caption>
        <thead><tr><th scope="col">Namespace</th><th scope="col">Enqueued</th><th scope="col">Running</th><th scope="col">Waiting for retry</th><th scope="col">Oldest waiting</th><th scope="col">Live workers</th><th scope="col">Steps/s</th></tr></thead>
        <tbody>
        {{#namespaces}}
        <tr><th scope="row">{{name}}</th><td>{{enqueued}}</td><td>{{running}}</td><td>{{retrying}}</td><td>{{oldest}}</td><td>{{workers}}{{#unserved}} <span class="warn">⚠ no live worker</span>{{/unserved}}</td><td>{{{sparkline}}} <span class="rate">{{rate}}</span></td></tr>
        {{/namespaces}}
        </tbody>
        </table>
        </div>
        {{/hasNamespaces}}
        <h2>Recent failures</h2>
        {{^failures}}<p>No step failed recently.</p>{{/failures}}
        {{#hasFailures}}
        <div class="table-wrap">
        <table class="data" id="failures">
        <thead><tr><th scope="col">When</th><th scope="col">Step</th><th scope="col">Task</th><th scope="col">State</th><th scope="col">Error</th></tr></thead>
        <tbody>
        {{#failures}}
        <tr><td>{{time}}</td><td><a href="/steps/{{stepID}}">{{stepName}}</a></td><td><a href="/tasks/{{taskID}}">{{taskShort}}</a></td><td>{{#state}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/state}}</td><td class="clip">{{reason}}</td></tr>
        {{/failures}}
        </tbody>
        </table>
        </div>
        {{/hasFailures}}
        """

    static let tasks = """
        <h1>Tasks</h1>
        <form method="get" action="/tasks" class="filters" role="search">
        <fieldset>
        <legend>Filter</legend>
        <label for="f-state">State</label>
        <select id="f-state" name="state">
        <option value="">any</option>
        {{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/states}}
        </select>
        <label for="f-namespace">Namespace</label>
        <input id="f-namespace" name="namespace" value="{{namespace}}">
        <label for="f-template">Template name</label>
        <input id="f-template" name="template" value="{{template}}">
        <label for="f-after">Created after</label>
        <input id="f-after" name="created_after" type="datetime-local" value="{{createdAfter}}">
        <label for="f-before">Created before</label>
        <input id="f-before" name="created_before" type="datetime-local" value="{{createdBefore}}">
        <button type="submit">Filter</button>
        </fieldset>
        </form>
        <form method="get" action="/tasks" class="find" role="search">
        <label for="find">Find a task by id or idempotency key</label>
        <input id="find" name="find" value="{{find}}">
        <button type="submit">Find</button>
        </form>
        {{#findError}}<p class="error" role="alert">{{findError}}</p>{{/findError}}
        {{#filterError}}<p class="error" role="alert">{{filterError}}</p>{{/filterError}}
        <div class="table-wrap">
        <table class="data" id="task-list">
        <thead><tr><th scope="col">Task</th><th scope="col">Template</th><th scope="col">State</th><th scope="col">Steps done</th><th scope="col">Created</th><th scope="col">Duration</th></tr></thead>
        <tbody>
        {{#rows}}
        <tr data-task-id="{{id}}"{{#live}} data-live="1"{{/live}}><td><a href="/tasks/{{id}}" class="mono">{{short}}</a></td><td>{{template}}</td><td>{{#state}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/state}}</td><td>{{finished}}/{{total}}</td><td>{{created}}</td><td>{{duration}}</td></tr>
        {{/rows}}
        {{^rows}}<tr><td colspan="6">No task matches.</td></tr>{{/rows}}
        </tbody>
        </table>
        </div>
        <nav class="pager" aria-label="Pages">{{#first}}<a href="{{first}}">First page</a>{{/first}} {{#next}}<a href="{{next}}" rel="next">Next page →</a>{{/next}}</nav>
        """

    static let task = """
        <h1>Task <span class="mono">{{id}}</span></h1>
        <dl class="facts">
        <dt>State</dt><dd id="task-state" data-state="{{state.state}}">{{#state}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/state}}</dd>
        <dt>Template</dt><dd><a href="{{templateLink}}">{{template}}</a></dd>
        <dt>Reason</dt><dd>{{reason}}</dd>
        {{#idempotencyKey}}<dt>Idempotency key</dt><dd class="mono">{{idempotencyKey}}</dd>{{/idempotencyKey}}
        <dt>Created</dt><dd>{{created}}</dd>
        <dt>Started</dt><dd>{{started}}</dd>
        <dt>Finished</dt><dd id="task-finished">{{finished}}</dd>
        <dt>Duration</dt><dd>{{duration}}</dd>
        {{#error}}<dt>Error</dt><dd class="error-text">{{error}}</dd>{{/error}}
        </dl>
        {{#canWrite}}
        <div class="actions">
        {{#canCancel}}<a class="button danger" href="/tasks/{{id}}/cancel">Cancel task…</a>{{/canCancel}}
        {{#hasFailed}}<a class="button" href="/tasks/{{id}}/retry">Retry all failed steps…</a>{{/hasFailed}}
        </div>
        {{/canWrite}}
        <h2 id="dag-heading">DAG</h2>
        <p class="hint">Parents above children. {{#collapsed}}Wide layers are drawn as one box per step name with a count per state; the table below lists every step. {{/collapsed}}<span class="js-only">Zoom: <button type="button" id="zoom-out" aria-label="Zoom out">−</button> <button type="button" id="zoom-reset">100 %</button> <button type="button" id="zoom-in" aria-label="Zoom in">+</button> <span id="live-status" role="status"></span></span></p>
        <div class="dag-wrap" id="dag-wrap" tabindex="0" aria-labelledby="dag-heading">{{{svg}}}</div>
        <h2 id="steps">Steps</h2>
        <div class="table-wrap">
        <table class="data" id="step-table">
        <thead><tr><th scope="col">Step</th><th scope="col">Namespace</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Last error</th></tr></thead>
        <tbody>
        {{#steps}}
        <tr data-step-row="{{id}}" data-group="{{group}}" data-state="{{state.state}}"><td><a href="/steps/{{id}}">{{name}}</a></td><td>{{namespace}}</td><td class="step-state">{{#state}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/state}}</td><td>{{attempts}}/{{maxAttempts}}</td><td>{{started}}</td><td>{{duration}}</td><td class="clip">{{lastError}}</td></tr>
        {{/steps}}
        </tbody>
        </table>
        </div>
        """

    static let step = """
        <h1>Step {{name}}</h1>
        <p>Of task <a href="/tasks/{{taskID}}" class="mono">{{taskID}}</a> ({{template}}).</p>
        <dl class="facts">
        <dt>State</dt><dd id="step-state">{{#state}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/state}}</dd>
        <dt>Reason</dt><dd>{{reason}}</dd>
        <dt>Namespace</dt><dd>{{namespace}}</dd>
        <dt>Attempts</dt><dd>{{attempts}} of {{maxAttempts}}</dd>
        <dt>Depends on</dt><dd>{{dependsOn}}</dd>
        <dt>Started</dt><dd>{{started}}</dd>
        <dt>Finished</dt><dd>{{finished}}</dd>
        <dt>Duration</dt><dd>{{duration}}</dd>
        </dl>
        {{#canWrite}}
        <div class="actions">
        {{#canRetry}}<a class="button" href="/steps/{{id}}/retry" id="retry-step">Retry step…</a>{{/canRetry}}
        {{#canResolve}}<a class="button" href="/steps/{{id}}/resolve" id="resolve-step">Resolve with a result…</a>{{/canResolve}}
        </div>
        {{/canWrite}}
        {{#lastError}}<h2>Last error</h2><pre class="error-text">{{lastError}}</pre>{{/lastError}}
        <h2>Input</h2>
        <p class="hint">The task's context and the results of the parent steps, as the handler receives them.</p>
        <pre>{{input}}</pre>
        <h2>Result</h2>
        <pre id="result">{{result}}</pre>
        <h2>Attempts</h2>
        <div class="table-wrap">
        <table class="data" id="attempts">
        <thead><tr><th scope="col">#</th><th scope="col">Worker</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Outcome</th><th scope="col">Error</th></tr></thead>
        <tbody>
        {{#attemptRows}}
        <tr><td>{{number}}</td><td>{{worker}}</td><td>{{started}}</td><td>{{duration}}</td><td>{{#outcome}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/outcome}}{{^outcome}}running{{/outcome}}</td><td>{{#error}}<pre class="tail">{{error}}</pre>{{/error}}</td></tr>
        {{/attemptRows}}
        {{^attemptRows}}<tr><td colspan="6">Not started yet.</td></tr>{{/attemptRows}}
        </tbody>
        </table>
        </div>
        <h2>Transitions</h2>
        <ol class="timeline" id="transitions">
        {{#transitions}}<li><time>{{time}}</time> {{from}} → {{#to}}<span class="state {{css}}">{{icon}} {{text}}</span>{{/to}} <span class="reason">{{reason}}</span></li>{{/transitions}}
        </ol>
        """

    static let confirm = """
        <h1>{{heading}}</h1>
        <p>{{question}}</p>
        {{#error}}<p class="error" role="alert" id="action-error">{{error}}</p>{{/error}}
        <form method="post" action="{{action}}" class="confirm">
        <input type="hidden" name="csrf" value="{{csrf}}">
        {{#resolve}}
        <label for="result">Result (JSON)</label>
        <textarea id="result" name="result" rows="6" spellcheck="false">{{resultText}}</textarea>
        {{/resolve}}
        <label for="reason">Reason (kept in the transition log)</label>
        <input id="reason" name="reason" value="{{reason}}">
        <button type="submit" class="{{buttonClass}}" id="confirm">{{button}}</button>
        <a href="{{back}}">Back without doing anything</a>
        </form>
        """

    static let templates = """
        <h1>Templates</h1>
        <div class="table-wrap">
        <table class="data" id="template-list">
        <thead><tr><th scope="col">Template</th><th scope="col">Version</th><th scope="col">Steps</th><th scope="col">Registered</th><th scope="col">Notes</th></tr></thead>
        <tbody>
        {{#rows}}<tr><td><a href="{{link}}">{{namespace}}/{{name}}</a></td><td>{{version}}</td><td>{{steps}}</td><td>{{registered}}</td><td>{{notes}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="5">No template registered (<code>orcastra template register FILE</code>).</td></tr>{{/rows}}
        </tbody>
        </table>
        </div>
        """

    static let template = """
        <h1>{{reference}}</h1>
        {{#description}}<p>{{description}}</p>{{/description}}
        <p>Other versions: {{#versions}}<a href="{{link}}">{{version}}</a> {{/versions}}</p>
        <dl class="facts"><dt>Registered</dt><dd>{{registered}}</dd><dt>Content hash</dt><dd class="mono">{{hash}}</dd><dt>Notes</dt><dd>{{notes}}</dd></dl>
        <h2 id="dag-heading">DAG</h2>
        <div class="dag-wrap" tabindex="0" aria-labelledby="dag-heading">{{{svg}}}</div>
        <h2>Source</h2>
        <pre class="source">{{source}}</pre>
        """

    static let schedules = """
        <h1>Schedules</h1>
        <div class="table-wrap">
        <table class="data" id="schedule-list">
        <thead><tr><th scope="col">Schedule</th><th scope="col">Template</th><th scope="col">Cron</th><th scope="col">Next</th><th scope="col">Last</th><th scope="col">Fired</th><th scope="col">State</th></tr></thead>
        <tbody>
        {{#rows}}<tr><td>{{namespace}}/{{name}}</td><td>{{template}}</td><td class="mono">{{cron}} ({{timezone}})</td><td>{{next}}</td><td>{{#lastTask}}<a href="/tasks/{{lastTask}}">{{last}}</a>{{/lastTask}}{{^lastTask}}{{last}}{{/lastTask}}</td><td>{{fired}}</td><td>{{status}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="7">No schedule (<code>orcastra schedule apply FILE</code>).</td></tr>{{/rows}}
        </tbody>
        </table>
        </div>
        """

    static let workers = """
        <h1>Workers</h1>
        <div class="table-wrap">
        <table class="data" id="worker-list">
        <thead><tr><th scope="col">Worker</th><th scope="col">Namespace</th><th scope="col">Host / pid</th><th scope="col">Running</th><th scope="col">Started</th><th scope="col">Last seen</th></tr></thead>
        <tbody>
        {{#rows}}<tr><td class="mono">{{id}}</td><td>{{namespace}}</td><td>{{host}} / {{pid}}</td><td>{{running}}/{{concurrency}}</td><td>{{started}}</td><td>{{seen}}{{#stale}} <span class="warn">⚠ stale</span>{{/stale}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="6">No live worker (<code>orcastra-worker --namespace NAME</code>).</td></tr>{{/rows}}
        </tbody>
        </table>
        </div>
        {{#hasUnserved}}<h2>Namespaces with work and no live worker</h2><ul>{{#unserved}}<li>{{namespace}}: {{steps}} steps enqueued — start <code>{{command}}</code></li>{{/unserved}}</ul>{{/hasUnserved}}
        """

    static let error = """
        <h1>{{heading}}</h1>
        <p class="error" role="alert">{{message}}</p>
        <p><a href="{{back}}">{{backText}}</a></p>
        """
}
