// The dashboard's only script: the live view of an instance (no build step; DOM built with textContent, never HTML).
// It reads the instance's AG-UI event stream from its first event, so a reload draws everything again exactly once;
// when the connection drops, EventSource reconnects with Last-Event-ID (to whichever host answers) and the stream goes on.
(function () {
  'use strict';
  var live = document.getElementById('live');
  if (!live || !window.EventSource) { return; }
  var log = document.getElementById('live-log');
  var state = document.getElementById('live-state');
  var lastId = 0;
  var opens = 0;            // connections made (a reconnect after a drop is the second)
  var turn = null;          // the current turn's section
  var messages = {};        // messageId -> the <pre> its text goes into
  var tools = {};           // toolCallId -> { box, args, result }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function into() { return turn || log; }
  function note(text, cls) { into().appendChild(el('p', 'note' + (cls ? ' ' + cls : ''), text)); }
  function say(text) { state.textContent = text; }
  function ended() {
    live.setAttribute('data-finished', 'true');
    // Nothing left to steer or interrupt: the forms stay visible but cannot be sent.
    live.querySelectorAll('.live-controls textarea, .live-controls input, .live-controls button').forEach(function (c) { c.disabled = true; });
  }
  function said(value) { return value ? (value.message || value.Message || '') : ''; }

  function message(id, who, cls) {
    var box = el('div', 'msg ' + cls);
    box.setAttribute('data-message-id', id);
    box.appendChild(el('div', 'who', who));
    var pre = el('pre', 'text', '');
    box.appendChild(pre);
    into().appendChild(box);
    messages[id] = pre;
    return pre;
  }

  function handle(ev) {
    switch (ev.type) {
      case 'RUN_STARTED': say('Running'); break;
      case 'STEP_STARTED':
        turn = el('section', 'live-turn');
        turn.setAttribute('data-step', ev.stepName);
        turn.appendChild(el('h3', null, ev.stepName));
        log.appendChild(turn);
        break;
      case 'STEP_FINISHED': if (turn) { turn.classList.add('finished'); } turn = null; break;
      case 'TEXT_MESSAGE_START': message(ev.messageId, ev.role === 'user' ? 'person' : 'agent', ev.role === 'user' ? 'user' : 'assistant'); break;
      case 'TEXT_MESSAGE_CONTENT': (messages[ev.messageId] || message(ev.messageId, 'agent', 'assistant')).textContent += ev.delta; break;
      case 'TEXT_MESSAGE_END': if (messages[ev.messageId]) { messages[ev.messageId].parentNode.classList.add('ended'); } break;
      case 'REASONING_MESSAGE_START': message(ev.messageId, 'reasoning', 'reasoning'); break;
      case 'REASONING_MESSAGE_CONTENT': (messages[ev.messageId] || message(ev.messageId, 'reasoning', 'reasoning')).textContent += ev.delta; break;
      case 'TOOL_CALL_START': {
        var box = el('div', 'tool');
        box.setAttribute('data-tool-call-id', ev.toolCallId);
        box.appendChild(el('div', 'who', 'tool ' + ev.toolCallName));
        var args = el('pre', 'args', '');
        box.appendChild(args);
        var status = el('div', 'status note', 'asked for');
        box.appendChild(status);
        into().appendChild(box);
        tools[ev.toolCallId] = { box: box, args: args, status: status };
        break;
      }
      case 'TOOL_CALL_ARGS': if (tools[ev.toolCallId]) { tools[ev.toolCallId].args.textContent += ev.delta; } break;
      case 'TOOL_CALL_END': if (tools[ev.toolCallId]) { tools[ev.toolCallId].status.textContent = 'running'; } break;
      case 'TOOL_CALL_RESULT': {
        var t = tools[ev.toolCallId];
        if (t) {
          t.status.textContent = 'done';
          t.box.classList.add('done');
          t.box.appendChild(el('pre', 'result', ev.content));
        }
        break;
      }
      case 'CUSTOM':
        if (ev.name === 'durableagents.usage' && ev.value) { note('usage: ' + ev.value.inputTokens + ' in / ' + ev.value.outputTokens + ' out tokens', 'usage'); }
        else if (ev.name === 'durableagents.steer') { note('steer received: ' + said(ev.value), 'steer'); }
        else if (ev.name === 'durableagents.interrupt') { note('interrupt received' + (said(ev.value) ? ': ' + said(ev.value) : ''), 'interrupt'); }
        else if (ev.name === 'durableagents.call-interrupted') { note('model call cut off', 'interrupt'); }
        else if (ev.name === 'durableagents.missed') {
          note(ev.value && ev.value.missed !== null ? ev.value.missed + ' earlier events are no longer kept' : 'earlier events are no longer kept', 'missed');
        }
        break;
      case 'RUN_FINISHED':
        say('Finished' + (ev.outcome ? ' (' + (ev.outcome.type || ev.outcome) + ')' : '') + ': reload the page for the recorded result');
        ended();
        break;
      case 'RUN_ERROR':
        say('Failed: ' + ev.message);
        ended();
        break;
    }
  }

  var source = null;
  function connect() {
    source = new EventSource(live.getAttribute('data-stream'));
    source.onopen = function () {
      opens += 1;
      live.setAttribute('data-opens', String(opens));
      live.setAttribute('data-connected', 'true');
      say(opens === 1 ? 'Connected' : 'Reconnected');
    };
    source.onerror = function () {
      live.setAttribute('data-connected', 'false');
      if (live.getAttribute('data-finished') === 'true') { source.close(); return; }
      say('Reconnecting…');
    };
    source.onmessage = function (e) {
      var ev;
      try { ev = JSON.parse(e.data); } catch (err) { return; }
      // The missed-events notice has no id (EventSource then repeats the previous one); every other event has its own.
      if (!(ev.type === 'CUSTOM' && ev.name === 'durableagents.missed')) {
        var id = parseInt(e.lastEventId, 10);
        if (!isNaN(id)) {
          if (id <= lastId) { return; } // already drawn
          lastId = id;
          live.setAttribute('data-last-id', String(id));
        }
      }
      handle(ev);
      if (ev.type === 'RUN_FINISHED' || ev.type === 'RUN_ERROR') { source.close(); live.setAttribute('data-connected', 'false'); }
    };
  }

  // Connect once the page has loaded: a stream opened during the load must never hold the page's load event.
  if (document.readyState === 'complete') { connect(); } else { window.addEventListener('load', connect); }
})();
