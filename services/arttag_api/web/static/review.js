// The review desk's enhancements: keyboard shortcuts, focus after an action, and the tag
// autocomplete (an ARIA combobox). Every action is a plain form without this file.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function suggestions() {
    return Array.prototype.slice.call(document.querySelectorAll("li.suggestion"));
  }

  function current() {
    var active = document.activeElement;
    var row = active && active.closest ? active.closest("li.suggestion") : null;
    if (row) return row;
    var rows = suggestions();
    for (var i = 0; i < rows.length; i++) {
      if (!rows[i].classList.contains("decided")) return rows[i];
    }
    return rows[0] || null;
  }

  function move(step) {
    var rows = suggestions();
    if (!rows.length) return;
    var active = document.activeElement;
    var inside = active && active.closest ? active.closest("li.suggestion") : null;
    // from outside the list, the first move lands on the first undecided suggestion
    var next = inside ? rows[Math.min(rows.length - 1, Math.max(0, rows.indexOf(inside) + step))] : current();
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }

  function press(action) {
    var row = current();
    var button = row && row.querySelector('button[data-action="' + action + '"]');
    if (button) button.click();
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) link.click();
  }

  // After an action the server sends us back with the next suggestion's id as the fragment.
  if (/^#[so]\d+$/.test(location.hash)) {
    var target = document.getElementById(location.hash.slice(1));
    if (target) target.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": press("accepted"); break;
      case "r": press("rejected"); break;
      case "n": follow("next-artwork"); break;
      case "p": follow("previous-artwork"); break;
      case "u": { var undo = document.getElementById("undo"); if (undo) undo.click(); break; }
      case "/": { var add = document.getElementById("add-tag"); if (add) add.focus(); break; }
      case "?": { var help = document.getElementById("shortcuts"); if (help) { help.focus(); help.scrollIntoView(); } break; }
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  // -- the add field: a combobox over the vocabulary ----------------------------------------
  var input = document.getElementById("add-tag");
  var list = document.getElementById("add-tag-options");
  var hidden = document.getElementById("add-tag-id");
  if (!input || !list || !hidden) return;
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", "add-tag-options");
  var options = [];
  var active = -1;
  var pending = 0;

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    active = index;
    options.forEach(function (li, i) { li.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function choose(li) {
    input.value = li.dataset.label;
    hidden.value = li.dataset.id;
    close();
  }

  function show(tags) {
    list.textContent = "";
    options = tags.map(function (tag, i) {
      var li = document.createElement("li");
      li.id = "add-tag-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.id = tag.id;
      li.dataset.label = tag.label;
      li.appendChild(document.createTextNode(tag.label + " "));
      var group = document.createElement("span");
      group.className = "group";
      group.textContent = "(" + (tag.group || "no group") + ")";
      li.appendChild(group);
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(li); });
      list.appendChild(li);
      return li;
    });
    if (options.length) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      highlight(-1);
    } else {
      close();
    }
  }

  input.addEventListener("input", function () {
    hidden.value = "";
    var q = input.value.trim();
    if (!q) { close(); return; }
    var ticket = ++pending;
    fetch("/review/tags?limit=10&q=" + encodeURIComponent(q), {
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin"
    }).then(function (r) { return r.ok ? r.json() : { tags: [] }; })
      .then(function (body) { if (ticket === pending) show(body.tags || []); })
      .catch(function () { close(); });
  });

  input.addEventListener("keydown", function (event) {
    var open = !list.hidden && options.length;
    if (event.key === "ArrowDown" && open) {
      highlight(Math.min(options.length - 1, active + 1)); event.preventDefault();
    } else if (event.key === "ArrowUp" && open) {
      highlight(Math.max(0, active - 1)); event.preventDefault();
    } else if (event.key === "Enter" && open && active >= 0) {
      choose(options[active]); event.preventDefault();
    } else if (event.key === "Escape" && open) {
      close(); event.preventDefault();
    }
  });

  input.addEventListener("blur", function () { setTimeout(close, 100); });
})();
