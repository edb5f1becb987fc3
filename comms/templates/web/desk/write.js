// The desk's writing pages: while the editor types, ask the desk (debounced) what
// `comms check` says about the text, and show each problem beside its field or line.
// Without this script the same problems are shown when the page loads and after saving.
"use strict";
(function () {
  const form = document.querySelector("form[data-check]");
  if (!form) {
    return;
  }
  const WAIT = 600;
  let timer = 0;
  let asked = 0;

  function show(answer) {
    document.querySelectorAll("[data-problems]").forEach(function (list) {
      list.replaceChildren();
    });
    answer.problems.forEach(function (problem) {
      const list = document.getElementById(problem.list) || document.getElementById("problems-text");
      if (!list) {
        return;
      }
      const item = document.createElement("li");
      item.className = problem.warning ? "warning" : "error";
      item.textContent = problem.text;
      if (problem.line) {
        item.dataset.line = String(problem.line);
      }
      list.appendChild(item);
    });
    linkLines();
    const count = document.getElementById("problem-count");
    if (count) {
      count.textContent = answer.summary;
    }
  }

  // A problem at a line of the text is a button that selects that line in the editor.
  const editor = document.getElementById("body") || document.getElementById("text");

  function select(line) {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line - 1).reduce(function (sum, text) {
      return sum + text.length + 1;
    }, 0);
    const end = start + (lines[line - 1] || "").length;
    editor.focus();
    editor.setSelectionRange(start, end);
    // Scroll the line into view: its share of the text's height.
    editor.scrollTop = Math.max(0, (editor.scrollHeight * (line - 1)) / lines.length - 40);
  }

  function linkLines() {
    if (!editor) {
      return;
    }
    document.querySelectorAll("#problems-text li[data-line]").forEach(function (item) {
      if (item.querySelector("button")) {
        return;
      }
      const button = document.createElement("button");
      button.type = "button";
      button.className = "line";
      button.textContent = item.textContent;
      button.addEventListener("click", function () {
        select(Number(item.dataset.line));
      });
      item.replaceChildren(button);
    });
  }

  linkLines();

  function check() {
    const mine = ++asked;
    fetch(form.dataset.check, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (answer && mine === asked) {
          show(answer);
        }
      })
      .catch(function () {
        // Offline or logged out: the problems are shown again on saving.
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, WAIT);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);

  // A small Markdown toolbar: wrap the selection, or start the current line.
  const body = document.getElementById("body");
  const toolbar = document.querySelector(".toolbar");
  if (body && toolbar) {
    toolbar.hidden = false;
    toolbar.addEventListener("click", function (event) {
      const button = event.target.closest("button");
      if (!button) {
        return;
      }
      const start = body.selectionStart;
      const end = body.selectionEnd;
      const text = body.value;
      const chosen = text.slice(start, end);
      let added = "";
      let at = start;
      if (button.dataset.wrap) {
        added = button.dataset.wrap + chosen + button.dataset.wrap;
        body.setRangeText(added, start, end, "end");
      } else if (button.dataset.link !== undefined) {
        added = "[" + (chosen || "Text") + "](https://)";
        body.setRangeText(added, start, end, "end");
      } else if (button.dataset.line) {
        at = text.lastIndexOf("\n", start - 1) + 1;
        body.setRangeText(button.dataset.line, at, at, "end");
      }
      body.focus();
      later();
    });
  }
})();
